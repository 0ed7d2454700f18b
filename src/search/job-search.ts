import { z } from 'zod';
import { commaList, timestamp } from '../http/value-schemas.js';
import { isJobId } from '../jobs/job-id.js';
import { ANONYMOUS_TENANT, JobStatus, type JobRecord } from '../jobs/job.js';
import type { JobStore, ListPage, ListQuery } from '../store/job-store.js';

/**
 * Operators' search over jobs, through the store contract: the filter (the query of GET /admin/jobs, the
 * `filter` of POST /admin/bulk, the flags of `npm run jobs -- export`) and the search itself. Pages go on
 * from a job id; turning that id into a client's cursor is the routes' business (src/routes/paging.ts).
 */

/** Jobs one search call looks at, at most, when a filter no index holds is given (GET /admin/jobs). */
export const SEARCH_SCAN_LIMIT = 5000;
/** Walking every match (a bulk snapshot, an export): jobs per page, and jobs looked at per page at most. */
const WALK_PAGE_SIZE = 100;
const WALK_SCAN_LIMIT = 20_000;

/** What an operator can search jobs by. */
export const adminSearchFilter = z
  .object({
    id: z.string().min(1).max(64).optional().describe('Exactly this job'),
    status: z
      .union([commaList(JobStatus), z.array(JobStatus)])
      .optional()
      .describe('Comma-separated statuses (a bulk filter also takes an array)'),
    type: z.string().min(1).optional().describe('A job type'),
    tenant: z.string().min(1).max(64).optional().describe('`-` is the anonymous tenant of an open API'),
    created_after: timestamp.optional().describe('RFC 3339'),
    created_before: timestamp.optional().describe('RFC 3339'),
    finished_after: timestamp.optional().describe('RFC 3339'),
    finished_before: timestamp.optional().describe('RFC 3339'),
    error: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("An error code, or a substring of the error's message (case-insensitive)"),
    min_attempts: z.coerce.number().int().min(1).optional().describe('Jobs that started at least this many attempts'),
    worker: z.string().min(1).max(200).optional().describe('Jobs whose latest attempt ran on this worker id'),
    idempotency_key: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe('The job a create with this key made (with `tenant`, else the anonymous tenant)'),
    concurrency_key: z.string().min(1).max(128).optional().describe('Jobs submitted with exactly this concurrency_key'),
    schedule_id: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe(
        "Jobs made by the recurring schedule with exactly this id (ids are per tenant: add `tenant` for one tenant's)",
      ),
    stuck: z.enum(['true', 'false']).optional().describe('true: only running jobs whose lease has lapsed'),
    metadata: z.record(z.string(), z.string()).optional().describe('Jobs whose metadata has all these key/value pairs'),
  })
  .strict();
export type AdminSearchFilter = z.infer<typeof adminSearchFilter>;

export interface SearchPage {
  limit: number;
  /** The id of the last job of the previous page. */
  after?: string;
  order: 'asc' | 'desc';
  /** Jobs looked at per call when a filter no index holds is given (see ListQuery.scanLimit). */
  scanLimit?: number;
}

/** A filter that names one job (by id, or by the Idempotency-Key that made it): one answer, never a next page. */
export const namesOneJob = (filter: AdminSearchFilter): boolean =>
  filter.id !== undefined || filter.idempotency_key !== undefined;

/**
 * Finds jobs for operators. Status, type, tenant and creation time use the store's indexes; the other filters
 * are checked job by job over at most `scanLimit` jobs per call, so a call stays fast at a million jobs and a
 * sparse filter pages on (a short or empty page with a `nextAfter` means: not all looked at yet).
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
  const query: ListQuery = {
    statuses: filter.status,
    type: filter.type,
    createdAfter: filter.created_after !== undefined ? Date.parse(filter.created_after) : undefined,
    createdBefore: filter.created_before !== undefined ? Date.parse(filter.created_before) : undefined,
    limit: page.limit,
    after: page.after,
    order: page.order,
    tenant: filter.tenant,
  };
  if (filter.stuck === 'true') query.stuckAt = Date.now();
  if (needsScan(filter)) {
    query.match = matches(filter);
    query.scanLimit = page.scanLimit ?? SEARCH_SCAN_LIMIT;
  }
  return store.list(query);
}

/** Every page of matches, oldest job first, until every job was looked at. */
export async function* searchPages(store: JobStore, filter: AdminSearchFilter): AsyncGenerator<ListPage> {
  let after: string | undefined;
  for (;;) {
    const page = await searchJobs(store, filter, {
      limit: WALK_PAGE_SIZE,
      after,
      order: 'asc',
      scanLimit: WALK_SCAN_LIMIT,
    });
    yield page;
    if (page.nextAfter === null) return;
    after = page.nextAfter;
  }
}

/** Every id matching a filter, up to `max` (a bulk action's snapshot); `truncated` when more matched. */
export async function matchingIds(
  store: JobStore,
  filter: AdminSearchFilter,
  max: number,
): Promise<{ ids: string[]; truncated: boolean }> {
  const ids: string[] = [];
  for await (const page of searchPages(store, filter)) {
    for (const job of page.jobs) {
      if (ids.length === max) return { ids, truncated: true };
      ids.push(job.id);
    }
  }
  return { ids, truncated: false };
}

const needsScan = (filter: AdminSearchFilter): boolean =>
  filter.finished_after !== undefined ||
  filter.finished_before !== undefined ||
  filter.error !== undefined ||
  filter.min_attempts !== undefined ||
  filter.worker !== undefined ||
  filter.concurrency_key !== undefined ||
  filter.schedule_id !== undefined ||
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
    (errorText === undefined ||
      (job.error !== null &&
        (job.error.code === filter.error || job.error.message.toLowerCase().includes(errorText)))) &&
    (filter.min_attempts === undefined || job.attempt >= filter.min_attempts) &&
    (filter.worker === undefined || job.workerId === filter.worker) &&
    (filter.concurrency_key === undefined || job.concurrencyKey === filter.concurrency_key) &&
    (filter.schedule_id === undefined || job.scheduleId === filter.schedule_id) &&
    metadata.every(([key, value]) => job.metadata[key] === value);
}
