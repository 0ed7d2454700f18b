import { z } from 'zod';
import { ADMIN_ROLES } from '../config.js';
import { jobStatuses, type JobStatus } from '../jobs/job.js';
import { STATS_TOP_TENANTS } from '../store/job-store.js';

/**
 * Shapes the admin route files share. (The RFC 3339 `timestamp` is everyone's: src/http/value-schemas.ts;
 * the problem entries are in schemas.ts.)
 */

/** An admin key's role: viewer reads; operator also acts on jobs and workers; admin also purges and pauses types. */
export const adminRole = z.enum(ADMIN_ROLES);

/** How many jobs are in each status (every status present). */
export const statusCounts = z.object(
  Object.fromEntries(jobStatuses.map((status) => [status, z.number().int()])) as Record<JobStatus, z.ZodNumber>,
);

/** GET /admin/stats `tenants`: who the backlog belongs to. */
export const topTenants = z
  .array(
    z.object({
      tenant: z.string().describe("The API key's tenant; `-` is the anonymous tenant of an open API"),
      queued: z.number().int().describe('Its queued jobs, delayed ones included'),
      running: z.number().int().describe('Its running jobs'),
    }),
  )
  .describe(`The tenants with the most queued jobs (then the most running), at most ${STATS_TOP_TENANTS}, most first`);

/** GET /admin/stats `keys_at_cap`. */
export const keysAtCap = z
  .record(z.string(), z.number().int())
  .describe(
    "Per job type with `key_concurrency`: how many concurrency keys have ready jobs held back because the key's cap is reached. Types with none are left out",
  );
