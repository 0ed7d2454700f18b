import { z } from 'zod';
import { ADMIN_ROLES } from '../config.js';
import { jobStatuses, type JobStatus } from '../jobs/job.js';

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
