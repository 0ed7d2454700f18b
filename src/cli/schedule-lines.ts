import { z } from 'zod';
import { WebhookEvent } from '../jobs/job.js';
import { cronProblem, isKnownTimezone, type ScheduleRecord } from '../schedules/schedule.js';
import type { ScheduleStore } from '../schedules/schedule-store.js';

/**
 * Schedules in an export (`npm run jobs -- export | import`): one `{"format":"ajs-schedule/1","schedule":…}`
 * line per schedule, the ScheduleRecord as the store keeps it (version, next and last runs, fire counts), after
 * the jobs, so an import has a schedule's last job before the schedule (overlap `skip` reads it).
 */

export const SCHEDULE_FORMAT = 'ajs-schedule/1';

const millis = z.number().int().nonnegative();
const count = z.number().int().nonnegative();

/** A ScheduleRecord, checked field by field: the scheduler fires what is imported without reading it again. */
const scheduleRecord = z
  .object({
    id: z.string().min(1).max(200),
    tenant: z.string().min(1).max(64),
    cron: z.string().min(1).nullable(),
    everyS: z.number().positive().nullable(),
    timezone: z.string().refine(isKnownTimezone, 'not a known IANA timezone'),
    type: z.string().min(1),
    input: z.unknown(),
    metadata: z.record(z.string(), z.string()),
    priority: z.number().int(),
    maxAttempts: z.number().int().positive().nullable(),
    timeoutS: z.number().positive().nullable(),
    concurrencyKey: z.string().min(1).nullable(),
    webhook: z.object({ url: z.string().min(1), events: z.array(WebhookEvent) }).nullable(),
    overlap: z.enum(['allow', 'skip']),
    catchUp: z.enum(['none', 'latest', 'all']),
    startAt: millis.nullable(),
    endAt: millis.nullable(),
    paused: z.boolean(),
    nextRunAt: millis.nullable(),
    lastRunAt: millis.nullable(),
    lastJobId: z.string().min(1).nullable(),
    fires: z.object({ created: count, skipped: count, missed: count }),
    createdAt: millis,
    updatedAt: millis,
    version: z.number().int().positive(),
  })
  // Fields a newer service added are kept as they are.
  .loose()
  .superRefine((record, context) => {
    if ((record.cron === null) === (record.everyS === null))
      context.addIssue({ code: 'custom', path: ['cron'], message: 'exactly one of cron and everyS is set' });
    const problem = record.cron === null ? null : cronProblem(record.cron, record.timezone);
    if (problem !== null) context.addIssue({ code: 'custom', path: ['cron'], message: problem });
  });

export const scheduleLine = z.object({ format: z.literal(SCHEDULE_FORMAT), schedule: scheduleRecord });

/** Schedules read per page of an export. */
const EXPORT_PAGE = 100;

/** Every schedule of every tenant (or of `tenant`, of `type`), in the admin listing's order. */
export async function* allSchedules(
  store: ScheduleStore,
  filter: { tenant?: string; type?: string },
): AsyncGenerator<ScheduleRecord> {
  let after: string | undefined;
  for (;;) {
    const page = await store.list({ ...filter, limit: EXPORT_PAGE, after });
    yield* page.schedules;
    if (page.nextAfter === null) return;
    after = page.nextAfter;
  }
}

/** Stores an exported schedule unless the target has one of that id for its tenant (kept as it is). */
export async function importSchedule(store: ScheduleStore, record: ScheduleRecord): Promise<'imported' | 'exists'> {
  return (await store.save(record, 0)) === 'saved' ? 'imported' : 'exists';
}
