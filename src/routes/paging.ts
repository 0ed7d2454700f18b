import type { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { isJobId } from '../jobs/job-id.js';
import type { JobRecord } from '../jobs/job.js';
import type { ListQuery } from '../store/job-store.js';
import type { JobResource } from './job-view.js';
import type { jobListSchema, listJobsQuery } from './schemas.js';

/**
 * How the API pages job listings (GET /v1/jobs, GET /admin/jobs): the opaque cursor,
 * `base64url("v1:<order>:<last job id>")`, that carries a listing on from the previous page, and a page as
 * the API answers it. The paging query parameters themselves (pagingQuery) are zod, in schemas.ts.
 */

export type ListOrder = 'asc' | 'desc';

export function encodeCursor(order: ListOrder, afterId: string): string {
  return Buffer.from(`v1:${order}:${afterId}`).toString('base64url');
}

/** The id a cursor goes on after; a 400 problem for a cursor this API did not give for this order. */
export function decodeCursor(cursor: string, order: ListOrder): string {
  const [version, cursorOrder, id] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  if (version !== 'v1' || cursorOrder !== order || id === undefined || !isJobId(id)) {
    throw new HttpProblem(
      'bad-request',
      'Invalid query parameter: cursor (use next_cursor of a page listed with the same order).',
      {
        errors: [{ pointer: 'cursor', detail: 'not a cursor of this listing' }],
      },
    );
  }
  return id;
}

/** The store's listing query for the filters and paging of GET /v1/jobs. */
export function toListQuery(query: Omit<z.infer<typeof listJobsQuery>, 'idempotency_key'>): ListQuery {
  return {
    statuses: query.status,
    type: query.type,
    createdAfter: query.created_after !== undefined ? Date.parse(query.created_after) : undefined,
    createdBefore: query.created_before !== undefined ? Date.parse(query.created_before) : undefined,
    limit: query.limit,
    after: query.cursor !== undefined ? decodeCursor(query.cursor, query.order) : undefined,
    order: query.order,
  };
}

/** A listing page as the API answers it: the jobs, rendered (all at once), and the cursor of the next page (null on the last). */
export async function renderPage(
  page: { jobs: JobRecord[]; nextAfter: string | null },
  order: ListOrder,
  render: (jobs: JobRecord[]) => Promise<JobResource[]>,
): Promise<z.infer<typeof jobListSchema>> {
  return { data: await render(page.jobs), next_cursor: nextCursor(page.nextAfter, order) };
}

/** The cursor of the page after the one that ended at `nextAfter`, or null on the last page. */
export const nextCursor = (nextAfter: string | null, order: ListOrder): string | null =>
  nextAfter === null ? null : encodeCursor(order, nextAfter);
