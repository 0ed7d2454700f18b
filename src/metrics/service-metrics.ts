import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isTerminal, type JobStatus } from '../jobs/job.js';
import type { JobStore, StoreStats } from '../store/job-store.js';
import { STORE_PROBE_TIMEOUT_MS } from '../config.js';
import { withDeadline } from '../deadline.js';
import type { PoolStoreCommand, WorkerPoolObserver } from '../worker/pool-observer.js';
import { ScheduleFireMetrics } from './schedule-metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics: buildApp decorates every app with one (routes count what they do through it). */
    metrics: ServiceMetrics;
  }
}

/** Store calls timed by `store_command_seconds`: the scrape's own (ping, stats) and the worker pool's. */
export type StoreCommand = 'ping' | 'stats' | PoolStoreCommand;

/** What a scrape reads: the store (ping, stats) and this instance's pool (slots), if it has one. */
export interface ScrapeSources {
  store: JobStore;
  pool: { readonly concurrency: number; readonly busy: number } | null;
}

export interface ServiceMetricsOptions {
  /** Job types whose series exist (at 0) from the start, so rates and absences read right before the first job. */
  jobTypes?: readonly string[];
  /** Node process metrics (CPU, memory, event loop lag, GC…) via prom-client's collectDefaultMetrics. Default true. */
  processMetrics?: boolean;
}

/** The per-type children, looked up once per type so the hot path does no label hashing of its own. */
interface TypeSeries {
  created: Counter.Internal;
  attempts: Counter.Internal;
  wait: Histogram.Internal<'type'>;
  run: Histogram.Internal<'type'>;
  finished: Record<FinishedStatus, Counter.Internal>;
}

type FinishedStatus = 'succeeded' | 'failed' | 'canceled';
const finishedStatuses: readonly FinishedStatus[] = ['succeeded', 'failed', 'canceled'];

/** Seconds: from a no-op job (milliseconds) to long ones (an hour). */
const jobBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const httpBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const storeBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Every Prometheus metric of one app, in a registry of its own (not prom-client's global one), so several
 * apps in one process (tests) do not collide. Counters and histograms are fed as things happen; the gauges
 * (jobs_in_state, jobs_keys_at_cap, worker_slots, store_up) are read from the store and the pool at scrape time.
 */
export class ServiceMetrics implements WorkerPoolObserver {
  readonly registry = new Registry();
  /** The scheduler's observer (schedule_fires_total, schedule_fire_lag_seconds), in this registry. */
  readonly schedules: ScheduleFireMetrics;
  private readonly perType = new Map<string, TypeSeries>();
  private readonly knownTypes: readonly string[];

  private readonly jobsCreated = new Counter({
    name: 'jobs_created_total',
    help: "Jobs created through this instance's API (idempotent replays not counted)",
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly jobsFinished = new Counter({
    name: 'jobs_finished_total',
    help: "Jobs whose last attempt ran on this instance's workers and ended them succeeded, failed or canceled",
    labelNames: ['type', 'status'] as const,
    registers: [this.registry],
  });
  private readonly jobAttempts = new Counter({
    name: 'job_attempts_total',
    help: "Attempts started by this instance's workers",
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly jobRun = new Histogram({
    name: 'job_run_seconds',
    help: "How long an attempt's handler ran, per attempt whose outcome was written",
    labelNames: ['type'] as const,
    buckets: jobBuckets,
    registers: [this.registry],
  });
  private readonly jobWait = new Histogram({
    name: 'job_wait_seconds',
    help: 'How long a ready job waited before a worker of this instance claimed it: claim time - max(run_at, created_at)',
    labelNames: ['type'] as const,
    buckets: jobBuckets,
    registers: [this.registry],
  });
  private readonly jobsInState = new Gauge({
    name: 'jobs_in_state',
    help: 'Jobs in the store by state and type, read at scrape time: queued (all queued, delayed included), running, and delayed (queued for a later run_at: a delay or a retry backoff; a part of queued)',
    labelNames: ['state', 'type'] as const,
    registers: [this.registry],
  });
  private readonly keysAtCap = new Gauge({
    name: 'jobs_keys_at_cap',
    help: "Concurrency keys per type with ready jobs held back because the type's key_concurrency is reached, read at scrape time",
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly workerSlots = new Gauge({
    name: 'worker_slots',
    help: "This instance's worker slots: busy (a handler running) or idle",
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  private readonly leasesLost = new Counter({
    name: 'worker_leases_lost_total',
    help: "Leases this instance's workers lost (the job was reclaimed, canceled or deleted meanwhile)",
    registers: [this.registry],
  });
  private readonly storeUp = new Gauge({
    name: 'store_up',
    help: '1 when the job store answered a ping at scrape time, else 0',
    registers: [this.registry],
  });
  private readonly storeCommand = new Histogram({
    name: 'store_command_seconds',
    help: "Job store calls: the scrape's ping and stats, the worker pool's finishAndClaim and renewLeases",
    labelNames: ['command'] as const,
    buckets: storeBuckets,
    registers: [this.registry],
  });
  private readonly storeCommands: Record<StoreCommand, Histogram.Internal<'command'>>;
  private readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by method, route template (never the raw URL; "unmatched" for no route) and status; /metrics itself is not counted',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: httpBuckets,
    registers: [this.registry],
  });

  constructor(options: ServiceMetricsOptions = {}) {
    this.knownTypes = [...(options.jobTypes ?? [])];
    this.schedules = new ScheduleFireMetrics(this.registry, this.knownTypes);
    this.storeCommands = {
      ping: this.storeCommand.labels('ping'),
      stats: this.storeCommand.labels('stats'),
      finishAndClaim: this.storeCommand.labels('finishAndClaim'),
      renewLeases: this.storeCommand.labels('renewLeases'),
    };
    this.leasesLost.inc(0);
    for (const type of this.knownTypes) this.series(type);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The Content-Type of a scrape: `text/plain; version=0.0.4; charset=utf-8`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  jobCreated(type: string): void {
    this.series(type).created.inc();
  }

  attemptStarted(type: string, waitMs: number): void {
    const series = this.series(type);
    series.attempts.inc();
    series.wait.observe(Math.max(0, waitMs) / 1000);
  }

  attemptFinished(type: string, status: JobStatus, runMs: number): void {
    const series = this.series(type);
    series.run.observe(Math.max(0, runMs) / 1000);
    if (isTerminal(status)) series.finished[status as FinishedStatus].inc();
  }

  leaseLost(): void {
    this.leasesLost.inc();
  }

  storeCall(command: StoreCommand, seconds: number): void {
    this.storeCommands[command].observe(seconds);
  }

  /** `route` is the route's template (`/v1/jobs/:id`), never the URL: ids must not become label values. */
  httpRequest(method: string, route: string, statusCode: number, seconds: number): void {
    this.httpDuration.labels(method, route, String(statusCode)).observe(seconds);
  }

  /**
   * A scrape: pings the store (store_up, store_command_seconds), reads its stats (jobs_in_state,
   * jobs_keys_at_cap) and the pool's slots, then renders every metric in the Prometheus text format. Never
   * throws for a store that is down or slow: store_up is then 0 and the stats' gauges have no series.
   */
  async scrape({ store, pool }: ScrapeSources): Promise<string> {
    let up = true;
    let started = performance.now();
    try {
      // Past the deadline the store counts as down: store_up is 0.
      await withDeadline(store.ping(), STORE_PROBE_TIMEOUT_MS);
    } catch {
      up = false;
    }
    this.storeCommands.ping.observe((performance.now() - started) / 1000);
    let stats: StoreStats | null = null;
    if (up) {
      started = performance.now();
      try {
        stats = await withDeadline(store.stats(Date.now()), STORE_PROBE_TIMEOUT_MS);
      } catch {
        up = false;
      }
      this.storeCommands.stats.observe((performance.now() - started) / 1000);
    }
    // From here to registry.metrics() nothing awaits, so a concurrent scrape never renders half an update.
    this.storeUp.set(up ? 1 : 0);
    this.jobsInState.reset();
    this.keysAtCap.reset();
    if (stats) {
      for (const type of [...this.knownTypes, ...Object.keys(stats.byType)]) {
        const counts = stats.byType[type];
        this.jobsInState.set({ state: 'queued', type }, counts?.queued ?? 0);
        this.jobsInState.set({ state: 'running', type }, counts?.running ?? 0);
        this.jobsInState.set({ state: 'delayed', type }, stats.delayedByType[type] ?? 0);
      }
      for (const type of new Set([...this.knownTypes, ...Object.keys(stats.keysAtCap)]))
        this.keysAtCap.set({ type }, stats.keysAtCap[type] ?? 0);
    }
    const busy = pool?.busy ?? 0;
    this.workerSlots.set({ state: 'busy' }, busy);
    this.workerSlots.set({ state: 'idle' }, Math.max(0, (pool?.concurrency ?? 0) - busy));
    return this.registry.metrics();
  }

  private series(type: string): TypeSeries {
    let series = this.perType.get(type);
    if (series) return series;
    series = {
      created: this.jobsCreated.labels(type),
      attempts: this.jobAttempts.labels(type),
      wait: this.jobWait.labels(type),
      run: this.jobRun.labels(type),
      finished: {
        succeeded: this.jobsFinished.labels(type, 'succeeded'),
        failed: this.jobsFinished.labels(type, 'failed'),
        canceled: this.jobsFinished.labels(type, 'canceled'),
      },
    };
    // Every series of the type exists from now on, at 0.
    series.created.inc(0);
    series.attempts.inc(0);
    for (const status of finishedStatuses) series.finished[status].inc(0);
    this.jobWait.zero({ type });
    this.jobRun.zero({ type });
    this.perType.set(type, series);
    return series;
  }
}
