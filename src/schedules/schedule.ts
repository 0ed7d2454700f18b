import { Cron } from 'croner';
import type { JobWebhook } from '../jobs/job.js';

/*
 * Recurring schedules: a cron expression (5 fields, or 6 with seconds, in an IANA timezone) or a fixed interval,
 * that makes one job per fire time. Schedules are data in the store, managed over HTTP; any worker instance fires
 * them (scheduler.ts), and the pair (schedule, fire time) is the job's idempotency key, so a fire time makes one
 * job whatever the instances do. This file holds the rules: when a schedule fires next, and what a firing does
 * after fire times were missed.
 */

/** What a client defines (POST/PUT /v1/schedules). */
export interface ScheduleSpec {
  /** A cron expression (croner: 5 fields, or 6 with seconds first); exactly one of cron and everyS is set. */
  cron: string | null;
  /** Every this many seconds, counted from `startAt` (or the schedule's creation). */
  everyS: number | null;
  /** IANA timezone the cron expression is read in (DST as croner documents it). */
  timezone: string;
  type: string;
  input: unknown;
  metadata: Record<string, string>;
  priority: number;
  /** The job's max attempts; null = its type's default. */
  maxAttempts: number | null;
  timeoutS: number | null;
  concurrencyKey: string | null;
  webhook: JobWebhook | null;
  /** `skip`: a fire time whose previous job is still queued or running makes no job. */
  overlap: 'allow' | 'skip';
  /** After fire times were missed (no instance was firing): none, one for the latest, or one each (≤ CATCH_UP_MAX). */
  catchUp: 'none' | 'latest' | 'all';
  /** No fire time before this (ms); null = from creation. */
  startAt: number | null;
  /** No fire time after this (ms); null = never ends. */
  endAt: number | null;
}

export interface ScheduleRecord extends ScheduleSpec {
  /** Unique per tenant. */
  id: string;
  tenant: string;
  paused: boolean;
  /** The next fire time; null while paused or once past `endAt`. */
  nextRunAt: number | null;
  /** The latest fire time that made a job (or the latest trigger). */
  lastRunAt: number | null;
  lastJobId: string | null;
  /** Fire times that made a job, were skipped (overlap) or were missed (down, and catch_up left them out). */
  fires: { created: number; skipped: number; missed: number };
  createdAt: number;
  updatedAt: number;
  /** +1 on every change: the store's compare-and-set token. */
  version: number;
}

/** A fire time this much later than due counts as missed (a running scheduler fires within milliseconds). */
export const MISSED_AFTER_MS = 2000;
/** catch_up "all" makes at most this many jobs for the missed times of one gap (the latest ones). */
export const CATCH_UP_MAX = 100;

/** Why a cron expression or timezone is refused, or null when both are fine. */
export function cronProblem(cron: string, timezone: string): string | null {
  try {
    new Cron(cron, { timezone, paused: true }).nextRun();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Whether `timezone` is an IANA zone this runtime knows. */
export function isKnownTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/** The first fire time strictly after `after` (ms), within start/end; null when there is none. */
export function nextFireAfter(schedule: ScheduleSpec & { createdAt: number }, after: number): number | null {
  const from = Math.max(after, (schedule.startAt ?? -Infinity) - 1);
  let next: number | null;
  if (schedule.everyS !== null) {
    const anchor = schedule.startAt ?? schedule.createdAt;
    const step = schedule.everyS * 1000;
    next = from < anchor ? anchor : anchor + (Math.floor((from - anchor) / step) + 1) * step;
  } else {
    const run = new Cron(schedule.cron!, { timezone: schedule.timezone, paused: true }).nextRun(new Date(from));
    next = run ? run.getTime() : null;
  }
  return next !== null && (schedule.endAt === null || next <= schedule.endAt) ? next : null;
}

/** The schedule paused (no next run) or resumed (timed afresh from `now`); undefined when it already is. */
export function withPaused(current: ScheduleRecord, paused: boolean, now: number): ScheduleRecord | undefined {
  if (current.paused === paused) return undefined;
  const changed = { ...current, paused, updatedAt: now, version: current.version + 1 };
  return { ...changed, nextRunAt: paused ? null : nextFireAfter(changed, now) };
}

/** What one firing of a due schedule does at `now`. */
export interface FirePlan {
  /** Fire times to make jobs for, oldest first. */
  create: number[];
  /** Fire times missed and left out by catch_up. */
  missed: number;
  nextRunAt: number | null;
}

/** Most fire times one plan walks one by one; a longer gap jumps ahead (see planFires). */
const WALK_MAX = 10_000;

/**
 * The fire times from `nextRunAt` up to `now`: the on-time one (at most MISSED_AFTER_MS late) always gets a job;
 * the missed ones get none (`none`), one for the latest when no on-time one runs (`latest`), or one each, the
 * latest CATCH_UP_MAX (`all`). A gap of more than WALK_MAX fire times is walked from shortly before `now` (an
 * interval's missed times are then counted exactly, a cron's at least as the ones walked).
 */
export function planFires(schedule: ScheduleRecord, now: number): FirePlan {
  let due: number[] = [];
  let skippedAhead = 0;
  let next = schedule.nextRunAt;
  let walked = 0;
  while (next !== null && next <= now) {
    if (++walked > WALK_MAX) {
      const span = schedule.everyS !== null ? (CATCH_UP_MAX + 2) * schedule.everyS * 1000 : 3_600_000;
      const resumeAt = nextFireAfter(schedule, now - span);
      skippedAhead +=
        schedule.everyS !== null && resumeAt !== null
          ? Math.round((resumeAt - next) / (schedule.everyS * 1000))
          : walked;
      skippedAhead += due.length;
      due = [];
      walked = -Infinity; // one jump per plan
      next = resumeAt;
      continue;
    }
    due.push(next);
    if (due.length > CATCH_UP_MAX + 1) {
      due.shift();
      skippedAhead++;
    }
    next = nextFireAfter(schedule, next);
  }
  const onTime = due.filter((at) => now - at <= MISSED_AFTER_MS);
  const missed = due.filter((at) => now - at > MISSED_AFTER_MS);
  let caughtUp: number[] = [];
  if (schedule.catchUp === 'all') caughtUp = missed.slice(-CATCH_UP_MAX);
  else if (schedule.catchUp === 'latest' && onTime.length === 0 && missed.length > 0) caughtUp = missed.slice(-1);
  return {
    create: [...caughtUp, ...onTime],
    missed: skippedAhead + missed.length - caughtUp.length,
    nextRunAt: next,
  };
}
