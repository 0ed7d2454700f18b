import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { isJobId } from '../jobs/job-id.js';
import { ANONYMOUS_TENANT, JobStatus, type JobRecord } from '../jobs/job.js';
import type { JobStore, ListPage, ListQuery } from '../store/job-store.js';
import { encodeCursor, toListQuery } from './jobs.js';
import { commaList } from './schemas.js';

const timestamp = z.iso.datetime({ offset: true });

/** What an operator can search jobs by: the query of GET /admin/jobs and the `filter` of POST /admin/bulk. */
export const adminSearchFilter = z
  .object({
    id: z.string().min(1).max(64).optional().describe('Exactly this job'),
    status: z.union([commaList(JobStatus), z.array(JobStatus)]).optional().describe('Comma-separated statuses (a bulk filter also takes an array)'),
    type: z.string().min(1).optional().describe('A job type'),
    tenant: z.string().min(1).max(64).optional().describe('`-` is the anonymous tenant of an open API'),
    created_after: timestamp.optional().describe('RFC 3339'),
    created_before: timestamp.optional().describe('RFC 3339'),
    finished_after: timestamp.optional().describe('RFC 3339'),
    finished_before: timestamp.optional().describe('RFC 3339'),
    error: z.string().min(1).max(200).optional().describe("An error code, or a substring of the error's message (case-insensitive)"),
    min_attempts: z.coerce.number().int().min(1).optional().describe('Jobs that started at least this many attempts'),
    worker: z.string().min(1).max(200).optional().describe('Jobs whose latest attempt ran on this worker id'),
    idempotency_key: z.string().min(1).max(255).optional().describe('The job a create with this key made (with `tenant`, else the anonymous tenant)'),
    stuck: z.enum(['true', 'false']).optional().describe('true: only running jobs whose lease has lapsed'),
    metadata: z.record(z.string(), z.string()).optional().describe('Jobs whose metadata has all these key/value pairs'),
  })
  .strict();
export type AdminSearchFilter = z.infer<typeof adminSearchFilter>;

/**
 * GET /admin/jobs: paging, and the search filters as plain strings, described as in adminSearchFilter (the
 * handler parses them with it, after filterFromQuery turned `metadata.<key>` parameters into `metadata`).
 */
export const adminJobsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).optional().describe('`next_cursor` of the previous page'),
    order: z.enum(['desc', 'asc']).default('desc').describe('By creation time; newest first by default'),
    ...Object.fromEntries(
      Object.entries(adminSearchFilter.shape)
        .filter(([name]) => name !== 'metadata')
        .map(([name, schema]) => [name, z.string().optional().describe(schema.description!)]),
    ),
  })
  .catchall(z.string().describe('`metadata.<key>=<value>`: jobs whose metadata has that pair'));

export interface SearchPage {
  limit: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
  order: 'asc' | 'desc';
  /** Jobs looked at per call when a filter no index holds is given (see ListQuery.scanLimit). */
  scanLimit?: number;
}

/**
 * Finds jobs for operators. Status, type, tenant and creation time use the store's indexes; the other filters
 * are checked job by job over at most `scanLimit` jobs per call, so a call stays fast at a million jobs and a
 * sparse filter pages on (a short or empty page with a `next_cursor` means: not all looked at yet).
 */
export async function searchJobs(store: JobStore, filter: AdminSearchFilter, page: SearchPage): Promise<ListPage> {
  if (filter.id !== undefined) {
    const job = isJobId(filter.id) ? await store.get(filter.id) : undefined;
    return { jobs: job && matches(filter)(job) ? [job] : [], nextAfter: null };
  }
  if (filter.idempotency_key !== undefined) {
    const job = await store.findByIdempotencyKey(filter.tenant ?? ANONYMOUS_TENANT, filter.idempotency_key);
    return { jobs: job && matches(filter)(job) ? [job] : [], nextAfter: null };
  }
  const { status, type, created_after, created_before } = filter;
  const query: ListQuery = { ...toListQuery({ status, type, created_after, created_before, ...page }), tenant: filter.tenant };
  if (filter.stuck === 'true') query.stuckAt = Date.now();
  if (needsScan(filter)) {
    query.match = matches(filter);
    query.scanLimit = page.scanLimit ?? 5000;
  }
  return store.list(query);
}

/** Every id matching a filter, up to `max` (a bulk action's snapshot); `truncated` when more matched. */
export async function matchingIds(store: JobStore, filter: AdminSearchFilter, max: number): Promise<{ ids: string[]; truncated: boolean }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await searchJobs(store, filter, { limit: 100, cursor, order: 'asc', scanLimit: 20_000 });
    for (const job of page.jobs) {
      if (ids.length === max) return { ids, truncated: true };
      ids.push(job.id);
    }
    if (page.nextAfter === null) return { ids, truncated: false };
    cursor = encodeCursor('asc', page.nextAfter);
  }
}

const needsScan = (filter: AdminSearchFilter): boolean =>
  filter.finished_after !== undefined ||
  filter.finished_before !== undefined ||
  filter.error !== undefined ||
  filter.min_attempts !== undefined ||
  filter.worker !== undefined ||
  (filter.metadata !== undefined && Object.keys(filter.metadata).length > 0);

/** The whole filter as one test (used as is for exact lookups, and for the fields no index holds). */
function matches(filter: AdminSearchFilter): (job: JobRecord) => boolean {
  const finishedAfter = filter.finished_after !== undefined ? Date.parse(filter.finished_after) : undefined;
  const finishedBefore = filter.finished_before !== undefined ? Date.parse(filter.finished_before) : undefined;
  const createdAfter = filter.created_after !== undefined ? Date.parse(filter.created_after) : undefined;
  const createdBefore = filter.created_before !== undefined ? Date.parse(filter.created_before) : undefined;
  const errorText = filter.error?.toLowerCase();
  const metadata = Object.entries(filter.metadata ?? {});
  return (job) =>
    (filter.status === undefined || filter.status.includes(job.status)) &&
    (filter.type === undefined || job.type === filter.type) &&
    (filter.tenant === undefined || job.tenant === filter.tenant) &&
    (createdAfter === undefined || job.createdAt > createdAfter) &&
    (createdBefore === undefined || job.createdAt < createdBefore) &&
    (finishedAfter === undefined || (job.completedAt !== null && job.completedAt > finishedAfter)) &&
    (finishedBefore === undefined || (job.completedAt !== null && job.completedAt < finishedBefore)) &&
    (errorText === undefined || (job.error !== null && (job.error.code === filter.error || job.error.message.toLowerCase().includes(errorText)))) &&
    (filter.min_attempts === undefined || job.attempt >= filter.min_attempts) &&
    (filter.worker === undefined || job.workerId === filter.worker) &&
    metadata.every(([key, value]) => job.metadata[key] === value);
}

/**
 * The filter from a query string: `metadata.<key>=<value>` parameters become `metadata`; any other name the
 * filter does not know is refused, naming it.
 */
export function filterFromQuery(query: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (name.startsWith('metadata.') && name.length > 'metadata.'.length && typeof value === 'string') metadata[name.slice('metadata.'.length)] = value;
    else if (known.includes(name)) filter[name] = value;
    else {
      throw new HttpProblem('bad-request', `Unknown query parameter: ${name}.`, { errors: [{ pointer: name, detail: 'not a search filter' }] });
    }
  }
  if (Object.keys(metadata).length > 0) filter.metadata = metadata;
  return filter;
}
