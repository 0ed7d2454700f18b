import { HttpProblem } from '../errors.js';
import { isJobId } from '../jobs/job-id.js';
import type { JobRecord } from '../jobs/job.js';
import { rfc3339 } from '../http/value-schemas.js';
import type { JobStore, ListPage } from '../store/job-store.js';

/**
 * Finding the job a request names, and the answer when it is not there: 410 for a job that went (deleted,
 * purged, expired), so pollers stop; 404 for an id that never existed. Ids that are not ULIDs cannot exist,
 * so they are 404 too.
 */

/**
 * The job record; else a 410 or 404 problem. With a `tenant` only that tenant's jobs are found (another
 * tenant's answers as if unknown); without (operators), any tenant's.
 */
export async function findJob(store: JobStore, id: string, tenant?: string): Promise<JobRecord> {
  const job = isJobId(id) ? await store.get(id) : undefined;
  if (job && (tenant === undefined || job.tenant === tenant)) return job;
  if (job) throw new HttpProblem('job-not-found', `No job with id ${id}.`); // another tenant's: as if unknown
  return jobNotFound(store, id, tenant);
}

/** Throws the problem for a job that is not there: 410 when it went (while the store remembers), else 404. */
export async function jobNotFound(store: JobStore, id: string, tenant: string | undefined): Promise<never> {
  const goneAt = isJobId(id) ? await store.goneAt(id, tenant) : null;
  if (goneAt !== null) {
    throw new HttpProblem('job-gone', `Job ${id} was deleted or expired at ${rfc3339(goneAt)}.`, {
      extensions: { gone_at: rfc3339(goneAt) },
    });
  }
  throw new HttpProblem('job-not-found', `No job with id ${id}.`);
}

/** The job whose create answer was lost, found by the Idempotency-Key the create carried (if it fits the filters). */
export async function findByIdempotencyKey(
  store: JobStore,
  tenant: string,
  key: string,
  filters: { status?: string[]; type?: string; schedule_id?: string },
): Promise<ListPage> {
  const job = await store.findByIdempotencyKey(tenant, key);
  const matches =
    job !== undefined &&
    (filters.status === undefined || filters.status.includes(job.status)) &&
    (filters.type === undefined || filters.type === job.type) &&
    (filters.schedule_id === undefined || filters.schedule_id === job.scheduleId);
  return { jobs: matches ? [job] : [], nextAfter: null };
}
