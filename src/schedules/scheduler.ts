import type { Logger } from 'pino';
import type { JobRecord, NewJob } from '../jobs/job.js';
import { TooManyActiveJobsError, type JobStore } from '../store/job-store.js';
import { planFires, type ScheduleRecord } from './schedule.js';
import { changeSchedule, type ScheduleStore } from './schedule-store.js';

/** What firings are counted as (schedule_fires_total's `outcome`). */
export type FireOutcome = 'created' | 'skipped' | 'missed';

export interface SchedulerObserver {
  /** `count` fire times of a schedule of `type` ended as `outcome`; `lagMs` (created): from fire time to job. */
  fired(type: string, outcome: FireOutcome, count: number, lagMs?: number): void;
}

export interface SchedulerOptions {
  schedules: ScheduleStore;
  jobs: JobStore;
  /** Warnings only (a schedule not fired, a fire that made no job): pino's, or Fastify's. */
  log: Pick<Logger, 'warn'>;
  /**
   * The job for one fire time, built as a submit of the schedule's definition would be (the type's defaults and
   * fair_by), or an Error when its type can no longer be submitted.
   */
  newJob(schedule: ScheduleRecord, scheduledFor: number, now: number): NewJob | Error;
  /** How long the (schedule, fire time) idempotency key of a job is kept. */
  idempotencyTtlMs: number;
  observer?: SchedulerObserver;
  /**
   * MAX_ACTIVE_JOBS_PER_TENANT: a fire time whose tenant already has this many queued or running jobs makes no job
   * (counted skipped), as a submit over it is refused.
   */
  maxActivePerTenant?: number;
}

/**
 * A running scheduler sleeps until the next fire time of any schedule, woken early by every schedule change (on
 * any instance); this often it looks anyway, should a change signal have been lost on a reconnect.
 */
export const SCHEDULER_IDLE_WAKE_MS = 30_000;
/** After a look that failed (the store unreachable, a schedule that could not be fired), the next comes this much later. */
const RETRY_AFTER_MS = 1000;
/** Schedules fired per look. */
const DUE_BATCH = 50;
/** The request fingerprint of every fire: a repeat of one fire time always replays its job. */
const FIRE_FINGERPRINT = 'schedule-fire';

/**
 * Fires due schedules: any number of instances may run one (ROLE=all|worker). For a due schedule it plans the fire
 * times (planFires), makes each one's job with the idempotency key (schedule, fire time), and then advances the
 * schedule by compare-and-set. Two instances firing at once make each job once (the key) and advance once (the
 * version); an instance killed between the two leaves the schedule due, and the next firing replays the job made
 * and advances.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private looking = false;
  /** A change came while looking: look again at once (it may have made a schedule due sooner). */
  private lookAgain = false;
  private unsubscribe: Promise<(() => void) | undefined> | undefined;

  constructor(private readonly options: SchedulerOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.options.schedules
      .subscribe(() => this.wake())
      .catch((error: unknown) => {
        this.options.log.warn({ err: error }, 'schedule changes cannot be heard: looking every 30 s');
        return undefined;
      });
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    (await this.unsubscribe)?.();
    await this.running;
  }

  /**
   * Fires every schedule due at `now` (the loop's step; tests call it directly). Answers how many due schedules
   * it found and how many of them could not be fired.
   */
  async tick(now = Date.now()): Promise<{ due: number; failed: number }> {
    const due = await this.options.schedules.due(now, DUE_BATCH);
    let failed = 0;
    for (const schedule of due) {
      try {
        await this.fire(schedule, now);
      } catch (error) {
        failed++;
        this.options.log.warn({ err: error, scheduleId: schedule.id, tenant: schedule.tenant }, 'schedule not fired');
      }
    }
    return { due: due.length, failed };
  }

  /**
   * One job now, outside the schedule's times (POST /v1/schedules/{id}/trigger); the schedule records it as its last.
   * `maxActive`: refused (TooManyActiveJobsError) when the tenant has that many queued or running jobs.
   */
  async trigger(
    schedule: ScheduleRecord,
    now: number,
    options: { maxActive?: number } = {},
  ): Promise<JobRecord | Error> {
    const job = this.options.newJob(schedule, now, now);
    if (job instanceof Error) return job;
    const created = await this.options.jobs.create(job, options);
    await changeSchedule(
      this.options.schedules,
      schedule.tenant,
      schedule.id,
      (current) =>
        current && { ...current, lastRunAt: now, lastJobId: created.id, updatedAt: now, version: current.version + 1 },
    );
    return created;
  }

  private async fire(schedule: ScheduleRecord, now: number): Promise<void> {
    const { jobs, observer, log } = this.options;
    const plan = planFires(schedule, now);
    let { lastJobId, lastRunAt } = schedule;
    let created = 0;
    let skipped = 0;
    for (const at of plan.create) {
      if (schedule.overlap === 'skip' && lastJobId !== null) {
        const last = await jobs.get(lastJobId);
        if (last?.status === 'queued' || last?.status === 'running') {
          skipped++;
          continue;
        }
      }
      const job = this.options.newJob(schedule, at, now);
      if (job instanceof Error) {
        log.warn(
          { scheduleId: schedule.id, tenant: schedule.tenant, reason: job.message },
          'schedule fire made no job',
        );
        skipped++;
        continue;
      }
      let outcome: Awaited<ReturnType<JobStore['createOnce']>>;
      try {
        outcome = await jobs.createOnce(
          job,
          { key: `schedule:${schedule.id}:${at}`, fingerprint: FIRE_FINGERPRINT, ttlMs: this.options.idempotencyTtlMs },
          { maxActive: this.options.maxActivePerTenant },
        );
      } catch (error) {
        if (!(error instanceof TooManyActiveJobsError)) throw error;
        log.warn(
          { scheduleId: schedule.id, tenant: schedule.tenant, limit: error.limit },
          'schedule fire over the tenant’s active jobs: no job',
        );
        skipped++;
        continue;
      }
      if (outcome === 'key-reused') continue;
      lastJobId = outcome.job.id;
      lastRunAt = at;
      created++;
      if (!outcome.replayed) observer?.fired(schedule.type, 'created', 1, now - at);
    }
    const advanced: ScheduleRecord = {
      ...schedule,
      nextRunAt: plan.nextRunAt,
      lastRunAt,
      lastJobId,
      fires: {
        created: schedule.fires.created + created,
        skipped: schedule.fires.skipped + skipped,
        missed: schedule.fires.missed + plan.missed,
      },
      updatedAt: now,
      version: schedule.version + 1,
    };
    // 'conflict': another instance advanced it (the jobs it made are the same ones), or it was edited meanwhile.
    if ((await this.options.schedules.save(advanced, schedule.version)) === 'saved') {
      if (skipped > 0) observer?.fired(schedule.type, 'skipped', skipped);
      if (plan.missed > 0) observer?.fired(schedule.type, 'missed', plan.missed);
    }
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.looking) this.lookAgain = true;
    else this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.look();
    }, delayMs);
    this.timer.unref();
  }

  /** Fires what is due, then sleeps until the next fire time (at most SCHEDULER_IDLE_WAKE_MS). */
  private async look(): Promise<void> {
    this.looking = true;
    this.lookAgain = false;
    let delay = SCHEDULER_IDLE_WAKE_MS;
    try {
      const { due, failed } = await this.tick(Date.now());
      if (failed > 0) delay = RETRY_AFTER_MS;
      else if (due >= DUE_BATCH) delay = 0;
      else {
        const next = await this.options.schedules.nextDueAt();
        if (next !== null) delay = Math.min(delay, Math.max(0, next - Date.now()));
      }
    } catch (error) {
      this.options.log.warn({ err: error }, 'schedules could not be read');
      delay = RETRY_AFTER_MS;
    } finally {
      this.looking = false;
    }
    this.schedule(this.lookAgain ? 0 : delay);
  }
}
