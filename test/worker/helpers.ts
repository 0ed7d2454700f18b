import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { inject } from 'vitest';
import { z } from 'zod';
import {
  defineHandler,
  JobFailure,
  type Handler,
  type JobAbortReason,
  type JobContext,
} from '../../src/handlers/handler.js';
import { newJobId } from '../../src/jobs/job-id.js';
import type { JobRecord } from '../../src/jobs/job.js';
import type { JobStore, StoreEvent } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { waitFor } from '../helpers/wait-for.js';

export interface StoreCase {
  name: 'memory' | 'redis';
  open(): Promise<JobStore>;
}

export const storeCases: StoreCase[] = [
  { name: 'memory', open: async () => new MemoryJobStore({ jobTtlMs: 60_000 }) },
  {
    name: 'redis',
    open: () =>
      RedisJobStore.connect({
        url: inject('redisUrl'),
        keyPrefix: `t${randomUUID().slice(0, 8)}`,
        jobTtlMs: 60_000,
        connectTimeoutMs: 2000,
        commandTimeoutMs: 1000,
      }),
  },
];

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
  settled: boolean;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const result: Deferred<T> = {
    promise,
    settled: false,
    resolve: (value) => {
      result.settled = true;
      resolve(value);
    },
    reject: (error) => {
      result.settled = true;
      reject(error);
    },
  };
  return result;
}

/** Polls the stored job until `predicate` holds and returns it; the error shows the last state seen. */
export async function waitForJob(
  store: JobStore,
  id: string,
  predicate: (job: JobRecord) => boolean,
  timeoutMs = 3000,
): Promise<JobRecord> {
  let last: JobRecord | undefined;
  try {
    return await waitFor(
      async () => {
        last = await store.get(id);
        return last !== undefined && predicate(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 15, what: `job ${id} to reach the expected state` },
    );
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last seen: ${JSON.stringify(
        last && {
          status: last.status,
          attempt: last.attempt,
          error: last.error,
          progress: last.progress,
          lease: last.lease,
          runAt: last.runAt,
        },
      )}`,
      { cause: error },
    );
  }
}

/**
 * Subscribes now; `event` settles with the next store event matching `match`. (Wrapped in an object:
 * an async function returning a bare promise would wait for the event itself.)
 */
export async function nextEvent(
  store: JobStore,
  match: (event: StoreEvent) => boolean,
): Promise<{ event: Promise<StoreEvent> }> {
  const seen = deferred<StoreEvent>();
  const unsubscribe = await store.subscribe((event) => {
    if (!seen.settled && match(event)) {
      seen.resolve(event);
      unsubscribe();
    }
  });
  return { event: seen.promise };
}

/**
 * Counts the pool's store round trips on `store` (finishAndClaim: outcomes and claims go through it). Once every call
 * made has been answered, the pool has acted on all it asked for: a test that asserts that nothing more started waits
 * for that instead of sleeping. Install it before the pool starts; the store is the test's own.
 */
export function countStoreCalls(store: JobStore): {
  readonly made: number;
  readonly answered: number;
  readonly settled: () => boolean;
} {
  const calls = {
    made: 0,
    answered: 0,
    settled: () => calls.made > 0 && calls.answered === calls.made,
  };
  const original = store.finishAndClaim.bind(store);
  store.finishAndClaim = async (...args) => {
    calls.made++;
    try {
      return await original(...args);
    } finally {
      calls.answered++;
    }
  };
  return calls;
}

export interface NewJobOptions {
  input?: unknown;
  maxAttempts?: number;
  timeoutS?: number | null;
  runAt?: number;
}

export function createJob(store: JobStore, type: string, options: NewJobOptions = {}): Promise<JobRecord> {
  const now = Date.now();
  return store.create({
    id: newJobId(now),
    type,
    tenant: '-',
    input: options.input ?? {},
    metadata: {},
    priority: 0,
    maxAttempts: options.maxAttempts ?? 1,
    timeoutS: options.timeoutS ?? null,
    createdAt: now,
    runAt: options.runAt ?? now,
  });
}

export interface HandlerRun {
  jobId: string;
  attempt: number;
  startedAt: number;
  ctx: JobContext;
  /** The signal's reason, once it fired while the handler was running. */
  abortReason?: JobAbortReason;
  endedAt?: number;
}

/**
 * What the test-only handlers report to the test, and the gates the test opens. One per test.
 */
export class Controls {
  active = 0;
  maxActive = 0;
  readonly runs: HandlerRun[] = [];
  private readonly gates = new Map<string, Deferred<void>>();

  gate(name: string): Deferred<void> {
    let gate = this.gates.get(name);
    if (!gate) this.gates.set(name, (gate = deferred()));
    return gate;
  }

  open(name: string): void {
    this.gate(name).resolve();
  }

  openAll(): void {
    for (const gate of this.gates.values()) gate.resolve();
  }

  runsOf(jobId: string): HandlerRun[] {
    return this.runs.filter((run) => run.jobId === jobId);
  }

  /** Records the run and counts it as active while `work` is pending. */
  async track<T>(ctx: JobContext, work: (run: HandlerRun) => Promise<T>): Promise<T> {
    const run: HandlerRun = { jobId: ctx.jobId, attempt: ctx.attempt, startedAt: Date.now(), ctx };
    this.runs.push(run);
    ctx.signal.addEventListener('abort', () => (run.abortReason = ctx.signal.reason as JobAbortReason), { once: true });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      return await work(run);
    } finally {
      this.active--;
      run.endedAt = Date.now();
    }
  }
}

/** Resolves with `promise`, or rejects once `signal` fires. */
function honouring<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error(`aborted: ${String(signal.reason)}`));
  return new Promise<T>((resolve, reject) => {
    signal.addEventListener('abort', () => reject(new Error(`aborted: ${String(signal.reason)}`)), { once: true });
    promise.then(resolve, reject);
  });
}

/** Test-only handlers, bound to one test's Controls. */
export function testHandlers(controls: Controls): Handler[] {
  return [
    /** Waits until the test opens gate `gate`; with `ignoreSignal` it keeps waiting after an abort. */
    defineHandler({
      type: 'gate',
      input: z.object({ gate: z.string(), ignoreSignal: z.boolean().default(false), result: z.string().optional() }),
      run: (input, ctx) =>
        controls.track(ctx, async () => {
          const gate = controls.gate(input.gate).promise;
          await (input.ignoreSignal ? gate : honouring(gate, ctx.signal));
          return { by: input.result ?? 'pool', attempt: ctx.attempt };
        }),
    }),
    /** Waits `ms`, honouring its signal. */
    defineHandler({
      type: 'wait',
      input: z.object({ ms: z.number() }),
      run: (input, ctx) =>
        controls.track(ctx, async () => {
          await delay(input.ms, undefined, { signal: ctx.signal });
          return { waited: input.ms };
        }),
    }),
    /** Fails at once, not retryably. */
    defineHandler({
      type: 'fail-hard',
      input: z.object({}),
      run: (_input, ctx) =>
        controls.track(ctx, async () => {
          throw new JobFailure('nope', { retryable: false, code: 'bad-thing' });
        }),
    }),
    /** Reports progress `times` times in a tight loop, then waits for gate `gate`. */
    defineHandler({
      type: 'spam-progress',
      input: z.object({ times: z.number().int(), gate: z.string() }),
      run: (input, ctx) =>
        controls.track(ctx, async () => {
          for (let i = 0; i < input.times; i++) ctx.progress(i / 10, { step: `s${i}`, message: `m${i}` });
          await honouring(controls.gate(input.gate).promise, ctx.signal);
          return { reported: input.times };
        }),
    }),
    /** Returns at once. */
    defineHandler({
      type: 'instant',
      input: z.object({ n: z.number() }),
      run: (input, ctx) => controls.track(ctx, async () => ({ n: input.n })),
    }),
    /** Reports progress once and returns straight away. */
    defineHandler({
      type: 'progress-then-return',
      input: z.object({}),
      run: (_input, ctx) =>
        controls.track(ctx, async () => {
          ctx.progress(40, { step: 'final-step', message: 'last words' });
          return { done: true };
        }),
    }),
  ];
}
