import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { isTerminal, type JobStatus } from '../jobs/job.js';
import { DEFAULT_BEAT_INTERVAL_MS, type FinishedSample, type OpsStore } from '../ops/ops-store.js';
import type { JobStore } from '../store/job-store.js';
import type { WorkerPoolObserver } from './pool-observer.js';
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
  /**
   * Least time between two registry writes made because the pool's work changed (a job started or ended):
   * changes in between are coalesced into the next write. Default 250 ms.
   */
  registryWriteGapMs?: number;
  /** Finished jobs are sent to the stats history at most this often (and within this long). Default 1000 ms. */
  samplesFlushMs?: number;
  /** How often this instance records the queue depth per type into the stats history. */
  depthIntervalMs?: number;
}

/** Defaults of WorkerControlOptions.registryWriteGapMs and samplesFlushMs. */
export const REGISTRY_WRITE_GAP_MS = 250;
export const SAMPLES_FLUSH_MS = 1000;

/**
 * Connects a worker pool to the operators: it keeps the pool's entry in the worker registry current (what it
 * runs, how busy it is), follows pauses and drains (the control channel, and a re-read on every beat should a
 * message be lost), and feeds the stats history with every finished job's wait and run time.
 *
 * The registry entry is written on change and on a beat. A change (a job started or ended, a drain) marks
 * the entry dirty; it is written at most once per `registryWriteGapMs` (250 ms) while changes keep coming,
 * one store call however many jobs started or ended meanwhile, so a job shows in its worker's entry within
 * a fraction of a second of starting and leaves it as soon after it ends, and a pool running thousands of
 * jobs a second still writes a few times a second. The periodic beat (every `beatIntervalMs`) writes the
 * entry whatever changed: it is the liveness signal. All registry writes go one after the other, each with
 * the pool's state when it is sent. Finished-job samples are buffered and sent within `samplesFlushMs`.
 * As an observer of the pool it only flags and buffers: nothing on the pool's hot path waits for a store.
 */
export class WorkerControl implements WorkerPoolObserver {
  private readonly startedAt = Date.now();
  private readonly beatIntervalMs: number;
  private readonly writeGapMs: number;
  private readonly samplesFlushMs: number;
  private readonly depthIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopWatchingPool: (() => void) | undefined;
  private lastDepthAt = 0;
  private samples: FinishedSample[] = [];
  private samplesTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Registry writes run one at a time, chained here. */
  private writes: Promise<void> = Promise.resolve();
  /** The pool changed since the last write took its snapshot, and a write is scheduled or queued for it. */
  private dirty = false;
  /** A beat is queued: the next write sends the entry even when nothing changed (it refreshes beat_at). */
  private beatWanted = false;
  /** Change-driven writes are made from `start` on (before, the first beat writes everything). */
  private watching = false;
  private writeTimer: NodeJS.Timeout | undefined;
  /** The last registry write failed (logged once per outage). */
  private writeFailing = false;
  /** Date.now() when the last registry write was sent. */
  private lastWriteAt = 0;
  /** What the last write sent (without its beat time): a change that came and went by the next write is not written. */
  private lastWritten = '';
  /** Registry writes sent (beats and changes), for tests and measurements. */
  registryWrites = 0;

  constructor(private readonly options: WorkerControlOptions) {
    this.beatIntervalMs = options.beatIntervalMs ?? DEFAULT_BEAT_INTERVAL_MS;
    this.writeGapMs = options.registryWriteGapMs ?? REGISTRY_WRITE_GAP_MS;
    this.samplesFlushMs = options.samplesFlushMs ?? SAMPLES_FLUSH_MS;
    this.depthIntervalMs = options.depthIntervalMs ?? 60_000;
  }

  /** Never throws: with the store unreachable it starts anyway, and catches up on the beats that follow. */
  async start(): Promise<void> {
    this.stopWatchingPool = this.options.pool.onChange(this.poolChanged);
    this.watching = true;
    await this.subscribe();
    await this.refresh().catch((error: unknown) =>
      this.options.log.warn({ err: error }, 'could not read pauses and drains; claiming as usual until the next beat'),
    );
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
    clearTimeout(this.writeTimer);
    clearTimeout(this.samplesTimer);
    this.stopWatchingPool?.();
    this.unsubscribe?.();
    await this.beat();
    await this.flushSamples();
  }

  attemptStarted(): void {}

  attemptFinished(type: string, status: JobStatus, runMs: number, waitMs: number): void {
    if (!isTerminal(status)) return; // a retry follows: the job has not finished
    if (this.samples.length < 100_000)
      this.samples.push({ type, status: status as FinishedSample['status'], waitMs, runMs, at: Date.now() });
    if (this.samplesTimer === undefined && !this.stopped) {
      this.samplesTimer = setTimeout(() => {
        this.samplesTimer = undefined;
        void this.flushSamples();
      }, this.samplesFlushMs);
      this.samplesTimer.unref();
    }
  }

  leaseLost(): void {}

  storeCall(): void {}

  private async tick(): Promise<void> {
    if (!this.unsubscribe) await this.subscribe();
    await Promise.all([this.refresh().catch(() => undefined), this.beat(), this.recordDepth()]);
  }

  /** The pool's hot path (twice per job): flags the change and makes sure one write is scheduled. */
  private readonly poolChanged = (): void => {
    if (this.dirty) return; // a write is scheduled or queued; it takes the pool's state when it is sent
    this.dirty = true;
    this.scheduleWrite(this.lastWriteAt + this.writeGapMs - Date.now());
  };

  private scheduleWrite(waitMs: number): void {
    if (!this.watching || this.stopped || this.writeTimer !== undefined) return;
    this.writeTimer = setTimeout(
      () => {
        this.writeTimer = undefined;
        void this.write();
      },
      Math.max(0, waitMs),
    );
    this.writeTimer.unref();
  }

  /** Writes the registry entry now (after a write in flight), changed or not: the liveness beat, and after a drain. */
  private beat(): Promise<void> {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.beatWanted = true;
    return this.write();
  }

  private async refresh(): Promise<void> {
    const { ops, pool } = this.options;
    const [paused, drained] = await Promise.all([ops.pausedTypes(), ops.isDraining(pool.workerId)]);
    pool.setControl({ pausedTypes: Object.keys(paused), drained });
  }

  /**
   * Queues one registry write behind any in flight. When its turn comes it sends the pool's state then, unless
   * an earlier write already sent it (nothing dirty), or, for a change-driven write, it equals what was sent last.
   */
  private write(): Promise<void> {
    this.writes = this.writes.then(async () => {
      if (!this.dirty && !this.beatWanted) return;
      const beat = this.beatWanted;
      this.dirty = false;
      this.beatWanted = false;
      const { ops, pool, log } = this.options;
      const busy = pool.busy;
      const jobIds = pool.runningJobIds;
      const draining = this.stopped || pool.draining;
      const state = `${busy}|${draining}|${pool.counters.leasesLost}|${jobIds.length <= 100 ? jobIds.join(',') : jobIds.slice(0, 100).join(',')}`;
      if (!beat && state === this.lastWritten) return;
      this.lastWritten = state;
      this.lastWriteAt = Date.now();
      this.registryWrites++;
      try {
        await ops.beat({
          id: pool.workerId,
          host: hostname(),
          pid: process.pid,
          version: this.options.version,
          role: this.options.role,
          started_at: this.startedAt,
          beat_at: this.lastWriteAt,
          types: [...pool.jobTypes],
          slots_total: pool.concurrency,
          slots_busy: busy,
          job_ids: jobIds.slice(0, 100),
          leases_lost: pool.counters.leasesLost,
          draining,
        });
        if (this.writeFailing) log.info('the worker registry is written again');
        this.writeFailing = false;
      } catch (error) {
        this.lastWritten = ''; // not written: the next write sends it whatever it holds
        if (!this.writeFailing)
          log.warn({ err: error }, 'could not write to the worker registry; trying again every second');
        this.writeFailing = true;
        // Try again soon (the beat would, but only every beatIntervalMs): what the operators see must catch up.
        this.dirty = true;
        this.scheduleWrite(Math.max(this.writeGapMs, 1000));
      }
    });
    return this.writes;
  }

  private async flushSamples(): Promise<void> {
    clearTimeout(this.samplesTimer);
    this.samplesTimer = undefined;
    if (this.samples.length === 0) return;
    const samples = this.samples;
    this.samples = [];
    try {
      await this.options.ops.recordFinished(samples);
    } catch (error) {
      this.options.log.warn(
        { err: error, samples: samples.length },
        'could not record finished jobs in the stats history',
      );
    }
  }

  private async recordDepth(): Promise<void> {
    const now = Date.now();
    if (now - this.lastDepthAt < this.depthIntervalMs) return;
    this.lastDepthAt = now;
    try {
      const stats = await this.options.store.stats(now);
      await this.options.ops.recordDepth(
        now,
        Object.fromEntries(Object.entries(stats.byType).map(([type, counts]) => [type, counts.queued])),
      );
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not record the queue depth in the stats history');
    }
  }
}

/** One observer that tells each of `observers` (read at each call, so one may be added after the pool is made). */
export function fanOut(observers: readonly WorkerPoolObserver[]): WorkerPoolObserver {
  return {
    attemptStarted: (type, waitMs) => observers.forEach((observer) => observer.attemptStarted(type, waitMs)),
    attemptFinished: (type, status, runMs, waitMs) =>
      observers.forEach((observer) => observer.attemptFinished(type, status, runMs, waitMs)),
    leaseLost: () => observers.forEach((observer) => observer.leaseLost()),
    storeCall: (command, seconds) => observers.forEach((observer) => observer.storeCall(command, seconds)),
  };
}
