import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { isTerminal, type JobStatus } from '../jobs/job.js';
import type { WorkerPoolObserver } from '../metrics/service-metrics.js';
import { DEFAULT_BEAT_INTERVAL_MS, type FinishedSample, type OpsStore } from '../ops/ops-store.js';
import type { JobStore } from '../store/job-store.js';
import type { WorkerPool } from './worker-pool.js';

export interface WorkerControlOptions {
  ops: OpsStore;
  store: JobStore;
  pool: WorkerPool;
  log: Logger;
  /** The service version and ROLE, shown in the worker registry. */
  version: string;
  role: string;
  beatIntervalMs?: number;
  /** How often this instance records the queue depth per type into the stats history. */
  depthIntervalMs?: number;
}

/**
 * Connects a worker pool to the operators: it beats into the worker registry (what it runs, how busy it is),
 * follows pauses and drains (the control channel, and a re-read on every beat should a message be lost), and
 * feeds the stats history with every finished job's wait and run time. As an observer of the pool it only
 * buffers; the store is written on the beat.
 */
export class WorkerControl implements WorkerPoolObserver {
  private readonly startedAt = Date.now();
  private readonly beatIntervalMs: number;
  private readonly depthIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private lastDepthAt = 0;
  private samples: FinishedSample[] = [];
  private stopped = false;

  constructor(private readonly options: WorkerControlOptions) {
    this.beatIntervalMs = options.beatIntervalMs ?? DEFAULT_BEAT_INTERVAL_MS;
    this.depthIntervalMs = options.depthIntervalMs ?? 60_000;
  }

  /** Never throws: with the store unreachable it starts anyway, and catches up on the beats that follow. */
  async start(): Promise<void> {
    await this.subscribe();
    await this.refresh().catch((error: unknown) => this.options.log.warn({ err: error }, 'could not read pauses and drains; claiming as usual until the next beat'));
    await this.beat();
    this.timer = setInterval(() => void this.tick(), this.beatIntervalMs);
    this.timer.unref();
  }

  private async subscribe(): Promise<void> {
    const { ops, pool, log } = this.options;
    try {
      const unsubscribe = await ops.subscribeControl((message) => {
        if (message.kind === 'drain') {
          if (message.workerId === pool.workerId) pool.setControl({ drained: message.draining });
          void this.beat(); // the registry shows the new state at once
        } else void this.refresh().catch(() => undefined);
      });
      if (this.stopped) unsubscribe();
      else this.unsubscribe = unsubscribe;
    } catch (error) {
      log.warn({ err: error }, 'could not subscribe to pauses and drains; reading them on every beat until it works');
    }
  }

  /** A last beat (showing it drained), the samples not yet sent, and the end of the subscription. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.beat();
    await this.flushSamples();
  }

  attemptStarted(): void {}

  attemptFinished(type: string, status: JobStatus, runMs: number, waitMs: number): void {
    if (!isTerminal(status)) return; // a retry follows: the job has not finished
    if (this.samples.length < 100_000) this.samples.push({ type, status: status as FinishedSample['status'], waitMs, runMs, at: Date.now() });
  }

  leaseLost(): void {}

  storeCall(): void {}

  private async tick(): Promise<void> {
    if (!this.unsubscribe) await this.subscribe();
    await Promise.all([this.refresh().catch(() => undefined), this.beat(), this.flushSamples(), this.recordDepth()]);
  }

  private async refresh(): Promise<void> {
    const { ops, pool } = this.options;
    const [paused, drained] = await Promise.all([ops.pausedTypes(), ops.isDraining(pool.workerId)]);
    pool.setControl({ pausedTypes: Object.keys(paused), drained });
  }

  private async beat(): Promise<void> {
    const { ops, pool, log } = this.options;
    try {
      await ops.beat({
        id: pool.workerId,
        host: hostname(),
        pid: process.pid,
        version: this.options.version,
        role: this.options.role,
        started_at: this.startedAt,
        beat_at: Date.now(),
        types: [...pool.jobTypes],
        slots_total: pool.concurrency,
        slots_busy: pool.busy,
        job_ids: pool.runningJobIds.slice(0, 100),
        leases_lost: pool.counters.leasesLost,
        draining: this.stopped || pool.draining,
      });
    } catch (error) {
      log.warn({ err: error }, 'could not beat into the worker registry');
    }
  }

  private async flushSamples(): Promise<void> {
    if (this.samples.length === 0) return;
    const samples = this.samples;
    this.samples = [];
    try {
      await this.options.ops.recordFinished(samples);
    } catch (error) {
      this.options.log.warn({ err: error, samples: samples.length }, 'could not record finished jobs in the stats history');
    }
  }

  private async recordDepth(): Promise<void> {
    const now = Date.now();
    if (now - this.lastDepthAt < this.depthIntervalMs) return;
    this.lastDepthAt = now;
    try {
      const stats = await this.options.store.stats(now);
      await this.options.ops.recordDepth(now, Object.fromEntries(Object.entries(stats.byType).map(([type, counts]) => [type, counts.queued])));
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not record the queue depth in the stats history');
    }
  }
}

/** One observer that tells each of `observers` (read at each call, so one may be added after the pool is made). */
export function fanOut(observers: readonly WorkerPoolObserver[]): WorkerPoolObserver {
  return {
    attemptStarted: (type, waitMs) => observers.forEach((observer) => observer.attemptStarted(type, waitMs)),
    attemptFinished: (type, status, runMs, waitMs) => observers.forEach((observer) => observer.attemptFinished(type, status, runMs, waitMs)),
    leaseLost: () => observers.forEach((observer) => observer.leaseLost()),
    storeCall: (command, seconds) => observers.forEach((observer) => observer.storeCall(command, seconds)),
  };
}
