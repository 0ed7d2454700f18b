import { z } from 'zod';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import { JobStatus, WebhookEvent } from '../jobs/job.js';
import type { ScheduleRecord } from '../schedules/schedule.js';
import type { JobStore } from '../store/job-store.js';
import { storedJson } from './schemas.js';

/** The HTTP rendering of a recurring schedule: the Schedule resource (/v1/schedules; the admin routes reuse it). */

const nullableTimestamp = timestamp.nullable();

/** The status a schedule's last job shows once the job is no longer there (deleted, or expired after JOB_TTL_S). */
export const GONE = 'gone';

export const scheduleSchema = z
  .object({
    id: z.string(),
    cron: z.string().nullable().describe('The cron expression, or null for an every_s schedule'),
    every_s: z.number().int().nullable().describe('The interval in seconds, or null for a cron schedule'),
    timezone: z.string().describe('IANA timezone the cron expression is read in'),
    type: z.string(),
    input: storedJson.describe("Each job's input"),
    metadata: z.record(z.string(), z.string()),
    priority: z.number().int(),
    max_attempts: z.number().int().nullable().describe("null: the type's default when each job is made"),
    timeout_s: z.number().nullable().describe("null: the type's default"),
    concurrency_key: z.string().nullable(),
    webhook: z.object({ url: z.string(), events: z.array(WebhookEvent) }).nullable(),
    overlap: z.enum(['allow', 'skip']),
    catch_up: z.enum(['none', 'latest', 'all']),
    start_at: nullableTimestamp,
    end_at: nullableTimestamp,
    paused: z.boolean(),
    next_run_at: nullableTimestamp.describe('The next fire time; null while paused, or once no fire time is left'),
    last_run_at: nullableTimestamp.describe('The fire time of the latest job made (or when it was last triggered)'),
    last_job: z
      .object({
        id: z.string(),
        status: z
          .union([JobStatus, z.literal(GONE)])
          .describe("The job's status now; `gone` once it was deleted or expired (JOB_TTL_S)"),
      })
      .nullable()
      .describe('The latest job the schedule made; null before the first'),
    fires: z
      .object({
        created: z.number().int().describe('Fire times that made a job'),
        skipped: z
          .number()
          .int()
          .describe('Fire times that made none: overlap `skip`, or the type could no longer be submitted'),
        missed: z.number().int().describe('Fire times missed while no instance was firing, left out by catch_up'),
      })
      .describe('What the fire times so far came to (triggers not counted)'),
    created_at: timestamp,
    updated_at: timestamp,
    version: z.number().int().describe('Goes up by one on every change, the scheduler advancing it included'),
  })
  .meta({ id: 'Schedule' });

export type ScheduleResource = z.infer<typeof scheduleSchema>;
export type LastJobStatus = NonNullable<ScheduleResource['last_job']>['status'];

export const scheduleListSchema = z
  .object({
    data: z.array(scheduleSchema),
    next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  })
  .meta({ id: 'ScheduleList' });

export const schedulePath = (id: string): string => `/v1/schedules/${encodeURIComponent(id)}`;

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : rfc3339(ms));

/**
 * The status of each schedule's last job, in their order (undefined for a schedule that made none): one store read
 * per job.
 */
export async function lastJobStatuses(
  store: JobStore,
  schedules: readonly ScheduleRecord[],
): Promise<(LastJobStatus | undefined)[]> {
  return Promise.all(
    schedules.map(async ({ lastJobId }) =>
      lastJobId === null ? undefined : ((await store.get(lastJobId))?.status ?? GONE),
    ),
  );
}

/** The Schedule resource: one shape for create, get, list and every change. */
export function renderSchedule(schedule: ScheduleRecord, lastJobStatus: LastJobStatus | undefined): ScheduleResource {
  return {
    id: schedule.id,
    cron: schedule.cron,
    every_s: schedule.everyS,
    timezone: schedule.timezone,
    type: schedule.type,
    input: schedule.input,
    metadata: schedule.metadata,
    priority: schedule.priority,
    max_attempts: schedule.maxAttempts,
    timeout_s: schedule.timeoutS,
    concurrency_key: schedule.concurrencyKey,
    webhook: schedule.webhook && { url: schedule.webhook.url, events: schedule.webhook.events },
    overlap: schedule.overlap,
    catch_up: schedule.catchUp,
    start_at: isoOrNull(schedule.startAt),
    end_at: isoOrNull(schedule.endAt),
    paused: schedule.paused,
    next_run_at: isoOrNull(schedule.nextRunAt),
    last_run_at: isoOrNull(schedule.lastRunAt),
    last_job: schedule.lastJobId === null ? null : { id: schedule.lastJobId, status: lastJobStatus ?? GONE },
    fires: { ...schedule.fires },
    created_at: rfc3339(schedule.createdAt),
    updated_at: rfc3339(schedule.updatedAt),
    version: schedule.version,
  };
}

/** Schedules as the API shows them, their last jobs' statuses read once each. */
export async function renderSchedules(
  store: JobStore,
  schedules: readonly ScheduleRecord[],
): Promise<ScheduleResource[]> {
  const statuses = await lastJobStatuses(store, schedules);
  return schedules.map((schedule, i) => renderSchedule(schedule, statuses[i]));
}
