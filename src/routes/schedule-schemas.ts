import { z } from 'zod';
import { timestamp } from '../http/value-schemas.js';
import { createJobBody, jsonValue } from './schemas.js';

/**
 * The requests of /v1/schedules: their bodies, path and query. A schedule's job fields (type, input, metadata,
 * priority, max_attempts, timeout_s, concurrency_key, webhook) are POST /v1/jobs's own schemas, so a schedule
 * takes exactly what a submit takes. What zod cannot check alone (cron or every_s, the cron expression in its
 * timezone, end after start, the input against the type) is checked on the whole definition, in
 * schedule-definition.ts.
 */

/** A schedule id: the client's (unique per tenant), or `sch_` and random characters when the service makes one. */
export const scheduleIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const idRule = 'must be 1 to 128 of A-Z a-z 0-9 _ . - starting with a letter or digit';

/** Longest interval of `every_s`: a year (a longer one is a cron expression's job). */
const MAX_EVERY_S = 31_622_400;

const job = createJobBody.shape;
const cron = z
  .string()
  .min(1)
  .max(256)
  .describe(
    'A cron expression: 5 fields (minute hour day month weekday) or 6 with seconds first, read in `timezone`; e.g. `0 3 * * *`. Give cron or every_s',
  );
const everyS = z
  .number()
  .int()
  .min(1)
  .max(MAX_EVERY_S)
  .describe('Fire every this many seconds, counted from start_at (else from the creation). Give cron or every_s');
const timezone = z
  .string()
  .min(1)
  .max(64)
  .describe('IANA timezone the cron expression is read in, e.g. `Europe/Berlin`');
const overlap = z
  .enum(['allow', 'skip'])
  .describe("`skip`: a fire time makes no job while the schedule's previous job is still queued or running");
const catchUp = z
  .enum(['none', 'latest', 'all'])
  .describe(
    'Fire times missed while no instance was firing (down): `none` makes no job for them, `latest` one for the latest (unless an on-time one runs), `all` one each (the latest 100)',
  );
const startAt = timestamp.describe('No fire time before this');
const endAt = timestamp.describe('No fire time after this (must be after start_at)');
const paused = z.boolean().describe('A paused schedule makes no jobs until resumed');

/** Every field of a definition, as POST and PUT take them (defaults filled in). */
const definitionFields = {
  cron: cron.optional(),
  every_s: everyS.optional(),
  timezone: timezone.default('UTC'),
  type: job.type,
  input: job.input,
  metadata: job.metadata,
  priority: job.priority,
  max_attempts: job.max_attempts,
  timeout_s: job.timeout_s,
  concurrency_key: job.concurrency_key,
  webhook: job.webhook,
  overlap: overlap.default('allow'),
  catch_up: catchUp.default('latest'),
  start_at: startAt.optional(),
  end_at: endAt.optional(),
  paused: paused.optional().describe('Create paused (default false); PUT: when left out, the schedule stays as it is'),
};

export const createScheduleBody = z
  .object({
    id: z
      .string()
      .regex(scheduleIdPattern, idRule)
      .optional()
      .describe(
        'Your id for the schedule (unique among yours): a repeat with the same definition answers the existing schedule (200), another definition 409. Made by the service when left out',
      ),
    ...definitionFields,
  })
  .strict()
  .meta({ id: 'CreateSchedule' });

export const replaceScheduleBody = z.object(definitionFields).strict().meta({ id: 'ReplaceSchedule' });

/** PATCH: only the fields given change; `null` clears a field that may be empty. */
export const updateScheduleBody = z
  .object({
    cron: cron.nullable().optional().describe('Setting cron clears every_s (unless every_s is given too: 422)'),
    every_s: everyS.nullable().optional().describe('Setting every_s clears cron (unless cron is given too: 422)'),
    timezone: timezone.optional(),
    type: job.type.optional(),
    input: jsonValue.optional().describe("The handler's input, checked against the type's schema"),
    metadata: job.metadata,
    priority: job.priority.unwrap().optional(),
    max_attempts: job.max_attempts.unwrap().nullable().optional().describe("null: the type's default"),
    timeout_s: job.timeout_s.unwrap().nullable().optional().describe("null: the type's default"),
    concurrency_key: job.concurrency_key.unwrap().nullable().optional(),
    webhook: job.webhook.unwrap().nullable().optional(),
    overlap: overlap.optional(),
    catch_up: catchUp.optional(),
    start_at: startAt.nullable().optional(),
    end_at: endAt.nullable().optional(),
    paused: paused.optional(),
  })
  .strict()
  .meta({ id: 'UpdateSchedule' });

export type CreateScheduleBody = z.infer<typeof createScheduleBody>;
export type ReplaceScheduleBody = z.infer<typeof replaceScheduleBody>;
export type UpdateScheduleBody = z.infer<typeof updateScheduleBody>;

/** Any id finds (404 when there is no such schedule); PUT checks that a new one fits scheduleIdPattern. */
export const scheduleIdParams = z.object({ id: z.string().min(1).max(256) });

export const listSchedulesQuery = z
  .object({
    type: z.string().min(1).optional().describe('Only schedules of this job type'),
    paused: z
      .enum(['true', 'false'])
      .transform((value) => value === 'true')
      .optional()
      .describe('`true`: only paused schedules; `false`: only running ones'),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).optional().describe('`next_cursor` of the previous page'),
  })
  .strict();
