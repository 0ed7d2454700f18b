import { Counter, Histogram, type Registry } from 'prom-client';
import type { FireOutcome, SchedulerObserver } from '../schedules/scheduler.js';

const outcomes: readonly FireOutcome[] = ['created', 'skipped', 'missed'];

/**
 * Seconds from a fire time to its job: milliseconds when a scheduler is running; up to
 * hours for a fire time made late by catch_up after no instance was firing.
 */
const lagBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21_600, 86_400];

/**
 * What the scheduler of this instance did with fire times (the Scheduler's observer, registered in the service's
 * registry by ServiceMetrics): `schedule_fires_total` by schedule type and outcome, and
 * `schedule_fire_lag_seconds`. Counted by the instance that fired, so a fleet's sum is the fires made once each.
 */
export class ScheduleFireMetrics implements SchedulerObserver {
  private readonly fires: Counter<'schedule_type' | 'outcome'>;
  private readonly lag: Histogram<'schedule_type'>;
  private readonly known = new Set<string>();

  constructor(registry: Registry, jobTypes: readonly string[]) {
    this.fires = new Counter({
      name: 'schedule_fires_total',
      help: "Fire times of recurring schedules fired by this instance, by the schedule's job type: created (a job was made), skipped (overlap skip, or its type can no longer be submitted) or missed (no instance was firing and catch_up left it out)",
      labelNames: ['schedule_type', 'outcome'] as const,
      registers: [registry],
    });
    this.lag = new Histogram({
      name: 'schedule_fire_lag_seconds',
      help: 'From a fire time to the creation of its job, per job a schedule made on this instance (catch-up jobs included)',
      labelNames: ['schedule_type'] as const,
      buckets: lagBuckets,
      registers: [registry],
    });
    for (const type of jobTypes) this.ensure(type);
  }

  fired(type: string, outcome: FireOutcome, count: number, lagMs?: number): void {
    this.ensure(type);
    this.fires.inc({ schedule_type: type, outcome }, count);
    if (outcome === 'created' && lagMs !== undefined)
      this.lag.observe({ schedule_type: type }, Math.max(0, lagMs) / 1000);
  }

  /** Every series of a type exists from its first mention (or start-up, for the known types), at 0. */
  private ensure(type: string): void {
    if (this.known.has(type)) return;
    this.known.add(type);
    for (const outcome of outcomes) this.fires.inc({ schedule_type: type, outcome }, 0);
    this.lag.zero({ schedule_type: type });
  }
}
