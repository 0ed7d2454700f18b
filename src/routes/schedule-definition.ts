import { HttpProblem, type FieldError } from '../errors.js';
import { canonicalJson } from '../jobs/canonical-json.js';
import { cronProblem, isKnownTimezone, type ScheduleRecord, type ScheduleSpec } from '../schedules/schedule.js';
import type { SchedulerOptions } from '../schedules/scheduler.js';
import { submittedJob, type CreateJobBody, type SubmitSettings } from './job-submit.js';
import type { ReplaceScheduleBody, UpdateScheduleBody } from './schedule-schemas.js';
import type { JsonValue } from './schemas.js';

/**
 * A schedule's definition (ScheduleSpec) from a request, checked as a whole, and the job each fire time makes
 * from it. A definition is checked by building its job as POST /v1/jobs would, so a schedule is accepted exactly
 * when a submit of the same fields would be, and every fire makes the job that submit would have made.
 */

const definitionKeys = [
  'cron',
  'everyS',
  'timezone',
  'type',
  'input',
  'metadata',
  'priority',
  'maxAttempts',
  'timeoutS',
  'concurrencyKey',
  'webhook',
  'overlap',
  'catchUp',
  'startAt',
  'endAt',
] as const satisfies readonly (keyof ScheduleSpec)[];

const msOrNull = (time: string | null | undefined): number | null => (time == null ? null : Date.parse(time));

/** The definition a POST or PUT body gives (`paused` and `id` are not part of it). */
export function specFromBody(body: Omit<ReplaceScheduleBody, 'paused'>): ScheduleSpec {
  return {
    cron: body.cron ?? null,
    everyS: body.every_s ?? null,
    timezone: body.timezone,
    type: body.type,
    input: body.input,
    metadata: body.metadata ?? {},
    priority: body.priority,
    maxAttempts: body.max_attempts ?? null,
    timeoutS: body.timeout_s ?? null,
    concurrencyKey: body.concurrency_key ?? null,
    webhook: body.webhook ? { url: body.webhook.url, events: body.webhook.events ?? [] } : null,
    overlap: body.overlap,
    catchUp: body.catch_up,
    startAt: msOrNull(body.start_at),
    endAt: msOrNull(body.end_at),
  };
}

/**
 * `current` with a PATCH's fields applied: a field left out stays, `null` clears it. Giving cron alone clears
 * every_s and the other way round, so a PATCH can switch a schedule from one to the other.
 */
export function patchedSpec(current: ScheduleSpec, patch: UpdateScheduleBody): ScheduleSpec {
  const given = <K extends keyof UpdateScheduleBody>(key: K): boolean => patch[key] !== undefined;
  const spec: ScheduleSpec = { ...specOf(current) };
  if (given('cron')) spec.cron = patch.cron!;
  if (given('every_s')) spec.everyS = patch.every_s!;
  if (patch.cron != null && !given('every_s')) spec.everyS = null;
  if (patch.every_s != null && !given('cron')) spec.cron = null;
  if (given('timezone')) spec.timezone = patch.timezone!;
  if (given('type')) spec.type = patch.type!;
  if (given('input')) spec.input = patch.input;
  if (given('metadata')) spec.metadata = patch.metadata!;
  if (given('priority')) spec.priority = patch.priority!;
  if (given('max_attempts')) spec.maxAttempts = patch.max_attempts!;
  if (given('timeout_s')) spec.timeoutS = patch.timeout_s!;
  if (given('concurrency_key')) spec.concurrencyKey = patch.concurrency_key!;
  if (given('webhook'))
    spec.webhook = patch.webhook ? { url: patch.webhook.url, events: patch.webhook.events ?? [] } : null;
  if (given('overlap')) spec.overlap = patch.overlap!;
  if (given('catch_up')) spec.catchUp = patch.catch_up!;
  if (given('start_at')) spec.startAt = msOrNull(patch.start_at);
  if (given('end_at')) spec.endAt = msOrNull(patch.end_at);
  return spec;
}

/** The definition part of a schedule (a record carries its state too). */
export function specOf(schedule: ScheduleSpec): ScheduleSpec {
  return Object.fromEntries(definitionKeys.map((key) => [key, schedule[key]])) as unknown as ScheduleSpec;
}

/** Whether two definitions are the same: a repeated create or replace with it changes nothing. */
export const sameDefinition = (a: ScheduleSpec, b: ScheduleSpec): boolean =>
  canonicalJson(specOf(a)) === canonicalJson(specOf(b));

/** The POST /v1/jobs body a definition stands for: each fire submits it. */
export function submitBodyOf(spec: ScheduleSpec): CreateJobBody {
  return {
    type: spec.type,
    input: spec.input as JsonValue, // JSON when the schedule was made (the body's own input)
    metadata: spec.metadata,
    priority: spec.priority,
    ...(spec.maxAttempts !== null ? { max_attempts: spec.maxAttempts } : {}),
    ...(spec.timeoutS !== null ? { timeout_s: spec.timeoutS } : {}),
    ...(spec.concurrencyKey !== null ? { concurrency_key: spec.concurrencyKey } : {}),
    // No events given is the submit's default set, as in the request that gave none.
    ...(spec.webhook !== null
      ? {
          webhook: {
            url: spec.webhook.url,
            ...(spec.webhook.events.length > 0 ? { events: spec.webhook.events } : {}),
          },
        }
      : {}),
  };
}

/** What the schedule fields alone get wrong (the job fields are the submit's to check). */
function scheduleFieldErrors(spec: ScheduleSpec): FieldError[] {
  const errors: FieldError[] = [];
  if (spec.cron !== null && spec.everyS !== null)
    errors.push({ pointer: '/every_s', detail: 'cannot be given with cron: give one of cron and every_s' });
  if (spec.cron === null && spec.everyS === null)
    errors.push({
      pointer: '/cron',
      detail: 'is missing: give cron (a cron expression) or every_s (an interval in seconds)',
    });
  if (!isKnownTimezone(spec.timezone)) {
    errors.push({ pointer: '/timezone', detail: `is not an IANA timezone this service knows: "${spec.timezone}"` });
  } else if (spec.cron !== null) {
    const problem = cronProblem(spec.cron, spec.timezone);
    if (problem !== null) errors.push({ pointer: '/cron', detail: `is not a valid cron expression (${problem})` });
  }
  if (spec.startAt !== null && spec.endAt !== null && spec.endAt <= spec.startAt)
    errors.push({ pointer: '/end_at', detail: 'must be after start_at' });
  return errors;
}

/**
 * The definition, checked: its schedule fields, then its job as POST /v1/jobs would build it for `tenant` (type,
 * input, webhook). Throws the 422 problem naming each field; answers the definition with its webhook as the
 * submit keeps it (events in their fixed order, the default set when none were given).
 */
export function checkedSpec(
  spec: ScheduleSpec,
  settings: SubmitSettings,
  { tenant, now }: { tenant: string; now: number },
): ScheduleSpec {
  const errors = scheduleFieldErrors(spec);
  if (errors.length > 0) {
    // Each detail reads after its field's name: "cron is not a valid cron expression (…)".
    const summary = errors.map((error) => `${error.pointer.slice(1)} ${error.detail}`).join('; ');
    throw new HttpProblem('validation-failed', `The schedule is invalid: ${summary}.`, { errors });
  }
  const job = submittedJob(submitBodyOf(spec), settings, { tenant, now });
  return { ...spec, webhook: job.webhook ?? null };
}

/**
 * The Scheduler's `newJob`: a fire's job is the submit of the schedule's definition, by its tenant, at `now`,
 * carrying the schedule and the fire time. An Error (the 422 problem a submit would get) once the definition no
 * longer submits: its type was disabled or undeclared, its input no longer fits, or webhooks were turned off.
 */
export function scheduledJobMaker(settings: SubmitSettings): SchedulerOptions['newJob'] {
  return (schedule: ScheduleRecord, scheduledFor: number, now: number) => {
    try {
      const job = submittedJob(submitBodyOf(schedule), settings, { tenant: schedule.tenant, now });
      return { ...job, createdAt: now, runAt: now, scheduleId: schedule.id, scheduledFor };
    } catch (error) {
      if (error instanceof HttpProblem) return error;
      throw error;
    }
  };
}
