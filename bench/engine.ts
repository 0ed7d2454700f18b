import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { HandlerRegistry } from '../src/handlers/registry.js';
import type { NewJob } from '../src/jobs/job.js';
import type { ClaimLimit, HeldLease, JobStore } from '../src/store/job-store.js';
import { MemoryJobStore } from '../src/store/memory-job-store.js';
import { RedisJobStore } from '../src/store/redis-job-store.js';
import { WorkerPool } from '../src/worker/worker-pool.js';
import { costPerJob, costSnapshot, type BenchRedis, type CostPerJob } from './redis.js';
import {
  inBatches,
  JOB_TTL_MS,
  newJob,
  noopHandler,
  PAYLOAD,
  percentile,
  RESULT,
  silentLog,
  sleep,
  uniqueSuffix,
  waitUntil,
} from './util.js';

/** BullMQ's key prefix in the bench (its default is `bull`). */
export const BULL_PREFIX = 'benchbull';
const CREATE_BATCH = 1000;

/** Our store on the bench Redis, under a fresh key prefix `bench-<label>-<random>`. */
export async function connectOurStore(redis: BenchRedis, label: string): Promise<RedisJobStore> {
  return RedisJobStore.connect({
    url: redis.url,
    keyPrefix: `bench-${label}-${uniqueSuffix()}`,
    jobTtlMs: JOB_TTL_MS,
    connectTimeoutMs: 3000,
    // The service's default is 1000 ms; a bench that queues 20k creates at once must not trip it.
    commandTimeoutMs: 10_000,
  });
}

export function memoryStore(): MemoryJobStore {
  return new MemoryJobStore({ jobTtlMs: JOB_TTL_MS });
}

/** Counts the pool's store round trips and reports each finished attempt (after its write resolved). */
export interface StoreProbe {
  claimCalls: number;
  finishCalls: number;
  /** Combined finish-and-claim calls, when the store and pool have them. */
  finishAndClaimCalls: number;
  nextWakeCalls: number;
  renewCalls: number;
  claimedJobs: number;
  finishedJobs: number;
  onFinished: ((jobId: string) => void) | null;
}

export function newProbe(): StoreProbe {
  return {
    claimCalls: 0,
    finishCalls: 0,
    finishAndClaimCalls: 0,
    nextWakeCalls: 0,
    renewCalls: 0,
    claimedJobs: 0,
    finishedJobs: 0,
    onFinished: null,
  };
}

export const roundTrips = (probe: StoreProbe): number =>
  probe.claimCalls + probe.finishCalls + probe.finishAndClaimCalls + probe.nextWakeCalls + probe.renewCalls;

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * Wraps a store: counts claim / finish / finishAndClaim / nextWakeAt / renewLeases calls and calls
 * `probe.onFinished` for every attempt whose outcome write resolved. Written against method names, not
 * the interface's exact shape, so it keeps working while the pool's store calls evolve.
 */
export function probeStore(store: JobStore, probe: StoreProbe): JobStore {
  const target = store as unknown as Record<string, unknown>;
  const call = (name: string, args: unknown[]) => (target[name] as AnyMethod).apply(store, args);
  const overrides: Record<string, AnyMethod> = {
    claim: async (...args) => {
      probe.claimCalls++;
      const jobs = (await call('claim', args)) as unknown[];
      probe.claimedJobs += jobs.length;
      return jobs;
    },
    finish: async (...args) => {
      probe.finishCalls++;
      const result = await call('finish', args);
      probe.finishedJobs++;
      probe.onFinished?.((args[0] as HeldLease).jobId);
      return result;
    },
    finishAndClaim: async (...args) => {
      probe.finishAndClaimCalls++;
      const result = (await call('finishAndClaim', args)) as { claimed: unknown[] };
      probe.claimedJobs += result.claimed.length;
      for (const request of args[0] as { lease: HeldLease }[]) {
        probe.finishedJobs++;
        probe.onFinished?.(request.lease.jobId);
      }
      return result;
    },
    nextWakeAt: async (...args) => {
      probe.nextWakeCalls++;
      return call('nextWakeAt', args);
    },
    renewLeases: async (...args) => {
      probe.renewCalls++;
      return call('renewLeases', args);
    },
  };
  return new Proxy(store, {
    get(proxied, property, receiver) {
      if (typeof property === 'string' && Object.hasOwn(overrides, property) && typeof target[property] === 'function')
        return overrides[property];
      const value: unknown = Reflect.get(proxied, property, receiver);
      return typeof value === 'function' ? (value as AnyMethod).bind(proxied) : value;
    },
  });
}

function newPool(store: JobStore, concurrency: number, limits?: Record<string, ClaimLimit>): WorkerPool {
  return new WorkerPool({
    store,
    handlers: new HandlerRegistry([noopHandler]),
    log: silentLog,
    concurrency,
    leaseMs: 30_000,
    backoff: { baseMs: 1000, maxMs: 300_000 },
    limits,
  });
}

export interface ThroughputRun {
  jobs: number;
  completed: number;
  seconds: number;
  jobsPerS: number;
  /** Rate at which the N jobs were submitted before the workers started. */
  addPerS: number;
  timedOut: boolean;
  /** Per processed job, when measured on Redis. */
  cost: CostPerJob | null;
  probe: StoreProbe | null;
}

/**
 * Ours: create N no-op jobs, then start a pool of `concurrency` and time until all succeeded. With `queued` > N,
 * that many jobs are created and the timing stops once N of them succeeded (the queue stays long throughout).
 * `makeJob(i)` builds the i-th job (default: the anonymous tenant's, no concurrency key); `limits` go to the pool.
 */
export async function oursThroughput(options: {
  store: JobStore;
  concurrency: number;
  jobs: number;
  timeoutMs: number;
  costRedis?: Redis;
  queued?: number;
  makeJob?: (index: number) => NewJob;
  limits?: Record<string, ClaimLimit>;
  /** Extra measurements of the timed part: `start` right before the pool starts, `end` right after the N-th success. */
  timed?: { start(): Promise<void>; end(): Promise<void> };
}): Promise<ThroughputRun> {
  const { store, concurrency, jobs } = options;
  const queued = Math.max(jobs, options.queued ?? jobs);
  const makeJob = options.makeJob ?? (() => newJob(noopHandler.type, PAYLOAD));
  const addStart = performance.now();
  await inBatches(queued, CREATE_BATCH, (index) => store.create(makeJob(index)));
  const addPerS = queued / ((performance.now() - addStart) / 1000);

  const probe = newProbe();
  const pool = newPool(probeStore(store, probe), concurrency, options.limits);
  const before = options.costRedis ? await costSnapshot(options.costRedis) : null;
  await options.timed?.start();
  const started = performance.now();
  await pool.start();
  const finished = await waitUntil(() => pool.counters.succeeded >= jobs, options.timeoutMs);
  const seconds = (performance.now() - started) / 1000;
  const completed = pool.counters.succeeded;
  await options.timed?.end();
  const after = before && options.costRedis ? await costSnapshot(options.costRedis) : null;
  // Over the jobs done by the snapshot's time: with `queued` > N the pool keeps going meanwhile.
  const cost = before && after ? costPerJob(before, after, pool.counters.succeeded) : null;
  await pool.drain(5000);
  return { jobs, completed, seconds, jobsPerS: completed / seconds, addPerS, timedOut: !finished, cost, probe };
}

function bullConnection(redis: BenchRedis) {
  return { host: redis.host, port: redis.port };
}

/** BullMQ with its defaults (completed jobs kept, no removeOnComplete): addBulk N jobs, then a Worker. */
export async function bullThroughput(options: {
  redis: BenchRedis;
  concurrency: number;
  jobs: number;
  timeoutMs: number;
  measureCost?: boolean;
}): Promise<ThroughputRun> {
  const { redis, concurrency, jobs } = options;
  const name = `tp-${concurrency}-${uniqueSuffix()}`;
  const connection = bullConnection(redis);
  const queue = new Queue(name, { connection, prefix: BULL_PREFIX });
  queue.on('error', () => undefined);
  await queue.waitUntilReady();
  const addStart = performance.now();
  for (let start = 0; start < jobs; start += CREATE_BATCH) {
    const count = Math.min(CREATE_BATCH, jobs - start);
    await queue.addBulk(Array.from({ length: count }, () => ({ name: 'noop', data: PAYLOAD })));
  }
  const addPerS = jobs / ((performance.now() - addStart) / 1000);

  const worker = new Worker(name, async () => RESULT, { connection, prefix: BULL_PREFIX, concurrency, autorun: false });
  let completed = 0;
  worker.on('completed', () => completed++);
  worker.on('error', () => undefined);
  await worker.waitUntilReady();
  const before = options.measureCost ? await costSnapshot(redis.admin) : null;
  const started = performance.now();
  const running = worker.run().catch(() => undefined);
  const finished = await waitUntil(() => completed >= jobs, options.timeoutMs);
  const seconds = (performance.now() - started) / 1000;
  const done = completed;
  const cost = before ? costPerJob(before, await costSnapshot(redis.admin), done) : null;
  await worker.close();
  await running;
  await queue.close();
  return { jobs, completed: done, seconds, jobsPerS: done / seconds, addPerS, timedOut: !finished, cost, probe: null };
}

export interface LatencyRun {
  submitted: number;
  completed: number;
  p50: number;
  p99: number;
  max: number;
}

/** Submits `rate` jobs/s for `seconds` on a 1 ms timer, calling `submit(i)`; bounded by count and time. */
async function steadySubmit(rate: number, seconds: number, submit: () => void): Promise<number> {
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      while (sent < due) {
        sent++;
        submit();
      }
      if (sent >= total || performance.now() - start > seconds * 1000 * 3) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  return sent;
}

function latencyOf(starts: Map<string, number>, ends: Map<string, number>, submitted: number): LatencyRun {
  const latencies: number[] = [];
  for (const [id, start] of starts) {
    const end = ends.get(id);
    if (end !== undefined) latencies.push(end - start);
  }
  return {
    submitted,
    completed: latencies.length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.length > 0 ? Math.max(...latencies) : Number.NaN,
  };
}

/**
 * Ours: submit-to-succeeded at a steady rate, with a pool of 10 already idle. The clock starts before
 * `store.create` and stops when the pool's `finish` write for that job has resolved.
 */
export async function oursLatency(options: {
  store: JobStore;
  rate: number;
  seconds: number;
  warmupJobs: number;
}): Promise<LatencyRun> {
  const { store } = options;
  const probe = newProbe();
  const starts = new Map<string, number>();
  const ends = new Map<string, number>();
  let recording = false;
  probe.onFinished = (id) => {
    if (recording) ends.set(id, performance.now());
  };
  const pool = newPool(probeStore(store, probe), 10);
  await pool.start();
  const submitOne = () => {
    const job = newJob(noopHandler.type, PAYLOAD);
    const started = performance.now();
    const record = recording;
    // The stored id is the one `create` answers (a Redis store writes the job's partition into it).
    store.create(job).then(
      (created) => {
        if (record) starts.set(created.id, started);
      },
      () => undefined,
    );
  };
  // Warm-up (not recorded): the same rate, so JIT and connections are hot.
  await steadySubmit(options.rate, options.warmupJobs / options.rate, submitOne);
  await waitUntil(() => pool.counters.succeeded >= options.warmupJobs, 10_000);
  recording = true;
  const submitted = await steadySubmit(options.rate, options.seconds, submitOne);
  await waitUntil(() => starts.size >= submitted && [...starts.keys()].every((id) => ends.has(id)), 10_000);
  await pool.drain(5000);
  return latencyOf(starts, ends, submitted);
}

/** BullMQ: from before `queue.add` to the worker's `completed` event, worker concurrency 10. */
export async function bullLatency(options: {
  redis: BenchRedis;
  rate: number;
  seconds: number;
  warmupJobs: number;
}): Promise<LatencyRun> {
  const connection = bullConnection(options.redis);
  const name = `lat-${uniqueSuffix()}`;
  const queue = new Queue(name, { connection, prefix: BULL_PREFIX });
  queue.on('error', () => undefined);
  const worker = new Worker(name, async () => RESULT, { connection, prefix: BULL_PREFIX, concurrency: 10 });
  worker.on('error', () => undefined);
  const starts = new Map<string, number>();
  const ends = new Map<string, number>();
  let recording = false;
  let warmDone = 0;
  worker.on('completed', (job) => {
    if (recording) ends.set(job.id!, performance.now());
    else warmDone++;
  });
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  await sleep(100); // the worker's first blocking fetch is in place
  const submitOne = () => {
    const started = performance.now();
    const record = recording;
    queue.add('noop', PAYLOAD).then(
      (job) => {
        if (record) starts.set(job.id!, started);
      },
      () => undefined,
    );
  };
  await steadySubmit(options.rate, options.warmupJobs / options.rate, submitOne);
  await waitUntil(() => warmDone >= options.warmupJobs, 10_000);
  recording = true;
  const submitted = await steadySubmit(options.rate, options.seconds, submitOne);
  await waitUntil(() => starts.size >= submitted && [...starts.keys()].every((id) => ends.has(id)), 10_000, 50);
  await worker.close();
  await queue.close();
  return latencyOf(starts, ends, submitted);
}
