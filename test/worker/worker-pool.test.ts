import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HandlerRegistry } from '../../src/handlers/registry.js';
import sleep from '../../src/handlers/sleep.js';
import type { JobRecord } from '../../src/jobs/job.js';
import type { AttemptOutcome, FinishResult, HeldLease, JobStore } from '../../src/store/job-store.js';
import { WorkerPool, type WorkerPoolOptions } from '../../src/worker/worker-pool.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  Controls,
  countStoreCalls,
  createJob,
  deferred,
  nextEvent,
  storeCases,
  testHandlers,
  waitForJob,
} from './helpers.js';

const BACKOFF = { baseMs: 50, maxMs: 200 };

interface FinishCall {
  lease: HeldLease;
  outcome: AttemptOutcome;
  now: number;
  result: FinishResult;
  /** The job as a client reads it right after this finish. */
  after: JobRecord | undefined;
}

interface Recording {
  finishes: FinishCall[];
  claims: JobRecord[];
}
const recordings = new WeakMap<JobStore, Recording>();

/**
 * Spies once per store on `finish`, `claim` and `finishAndClaim` (through which the pool sends its
 * outcomes and claims in batches), recording every finished attempt with the job as stored right after
 * it, and every job handed out by a claim.
 */
function record(store: JobStore): Recording {
  const existing = recordings.get(store);
  if (existing) return existing;
  const recording: Recording = { finishes: [], claims: [] };
  recordings.set(store, recording);
  const finish = store.finish.bind(store);
  vi.spyOn(store, 'finish').mockImplementation(async (lease, outcome, now, options) => {
    const result = await finish(lease, outcome, now, options);
    recording.finishes.push({ lease, outcome, now, result, after: await store.get(lease.jobId) });
    return result;
  });
  const claim = store.claim.bind(store);
  vi.spyOn(store, 'claim').mockImplementation(async (request) => {
    const jobs = await claim(request);
    recording.claims.push(...jobs);
    return jobs;
  });
  const finishAndClaim = store.finishAndClaim.bind(store);
  vi.spyOn(store, 'finishAndClaim').mockImplementation(async (finishes, claimRequest, now) => {
    const reply = await finishAndClaim(finishes, claimRequest, now);
    for (const [i, each] of finishes.entries()) {
      recording.finishes.push({
        lease: each.lease,
        outcome: each.outcome,
        now,
        result: reply.results[i]!,
        after: await store.get(each.lease.jobId),
      });
    }
    recording.claims.push(...reply.claimed);
    return reply;
  });
  return recording;
}

const recordFinishes = (store: JobStore): FinishCall[] => record(store).finishes;
const recordClaims = (store: JobStore): JobRecord[] => record(store).claims;

describe.each(storeCases)('WorkerPool on the $name store', (storeCase) => {
  let store: JobStore;
  let controls: Controls;
  let pools: WorkerPool[] = [];

  beforeEach(async () => {
    store = await storeCase.open();
    controls = new Controls();
    pools = [];
  });

  afterEach(async () => {
    controls.openAll();
    for (const pool of pools) await Promise.race([pool.drain(500), delay(5000)]);
    vi.restoreAllMocks();
    await store.close();
  });

  async function startPool(
    options: Partial<Omit<WorkerPoolOptions, 'store' | 'handlers' | 'log'>> = {},
  ): Promise<WorkerPool> {
    const pool = new WorkerPool({
      store,
      handlers: new HandlerRegistry([...testHandlers(controls), sleep]),
      log: pino({ level: 'silent' }),
      concurrency: 2,
      leaseMs: 5000,
      backoff: BACKOFF,
      ...options,
    });
    pools.push(pool);
    await pool.start();
    return pool;
  }

  describe('concurrency', () => {
    it('never runs more than `concurrency` jobs at once, and runs them all', async () => {
      const jobs: JobRecord[] = [];
      for (let i = 0; i < 10; i++) jobs.push(await createJob(store, 'gate', { input: { gate: 'all' } }));
      const calls = countStoreCalls(store);
      const pool = await startPool({ concurrency: 3 });

      await waitFor(() => controls.active === 3 && pool.busy === 3, { timeoutMs: 3000, what: '3 running jobs' });
      // The slots are full: nothing else may start. The pool had its chance once every store call it made (a claim in
      // flight is the only way to a fourth job) was answered and acted on; with no slot free it makes no new claim.
      await waitFor(calls.settled, { timeoutMs: 3000, what: "the pool's store calls to be answered" });
      expect(controls.active).toBe(3);
      expect(controls.runs).toHaveLength(3);
      expect(pool.busy).toBe(3);
      const stored = await Promise.all(jobs.map((job) => store.get(job.id)));
      expect(stored.filter((job) => job?.status === 'running')).toHaveLength(3);
      expect(stored.filter((job) => job?.status === 'queued')).toHaveLength(7);

      controls.open('all');
      for (const job of jobs) {
        const done = await waitForJob(store, job.id, (j) => j.status === 'succeeded', 5000);
        expect(done.attempt).toBe(1);
        expect(done.result).toEqual({ by: 'pool', attempt: 1 });
        expect(done.progress.percent).toBe(100);
      }
      expect(controls.runs).toHaveLength(10);
      expect(controls.maxActive).toBe(3);
      await waitFor(() => pool.busy === 0, { timeoutMs: 1000, what: 'an idle pool' });
      expect(pool.counters).toMatchObject({ started: 10, succeeded: 10, failed: 0 });
    });
  });

  describe('backlog', () => {
    it('keeps its slots busy through a backlog of instant jobs', async () => {
      const jobs: JobRecord[] = [];
      for (let n = 0; n < 30; n++) jobs.push(await createJob(store, 'instant', { input: { n } }));
      const pool = await startPool({ concurrency: 1 });
      for (const job of jobs) await waitForJob(store, job.id, (j) => j.status === 'succeeded', 2000);
      expect(controls.runs).toHaveLength(30);
      expect(controls.maxActive).toBe(1);
      await waitFor(() => pool.counters.succeeded === 30, { timeoutMs: 1000, what: 'every success to be counted' });
    });
  });

  describe('progress', () => {
    it('stores reported progress, shows 100 as 99 until success, and keeps step and message', async () => {
      const job = await createJob(store, 'gate', { input: { gate: 'p' } });
      await startPool();
      await waitFor(() => controls.runs.length === 1, { timeoutMs: 3000, what: 'the handler to start' });
      const { ctx } = controls.runs[0]!;

      ctx.progress(10, { step: 'download', message: 'ten' });
      let seen = await waitForJob(store, job.id, (j) => j.progress.percent === 10);
      expect(seen.status).toBe('running');
      expect(seen.progress).toMatchObject({ percent: 10, step: 'download', message: 'ten' });
      expect(seen.progress.updatedAt).toEqual(expect.any(Number));

      ctx.progress(50, { step: 'parse' });
      seen = await waitForJob(store, job.id, (j) => j.progress.percent === 50);
      expect(seen.progress).toMatchObject({ percent: 50, step: 'parse', message: 'ten' });

      ctx.progress(100, { message: 'almost' });
      seen = await waitForJob(store, job.id, (j) => j.progress.message === 'almost');
      expect(seen.status).toBe('running');
      expect(seen.progress).toMatchObject({ percent: 99, step: 'parse', message: 'almost' });

      ctx.progress(30, { message: 'lower' });
      seen = await waitForJob(store, job.id, (j) => j.progress.message === 'lower');
      expect(seen.progress.percent).toBe(99); // never decreases within an attempt

      controls.open('p');
      const done = await waitForJob(store, job.id, (j) => j.status === 'succeeded');
      expect(done.progress).toMatchObject({ percent: 100, step: 'parse', message: 'lower' });
      expect(done.result).toEqual({ by: 'pool', attempt: 1 });
    });

    it('coalesces a burst of progress reports into few writes, keeping the last one', async () => {
      const job = await createJob(store, 'spam-progress', { input: { times: 1000, gate: 'spam' } });
      await startPool();

      const seen = await waitForJob(store, job.id, (j) => j.progress.message === 'm999');
      expect(seen.status).toBe('running');
      expect(seen.progress).toMatchObject({ percent: 99, step: 's999', message: 'm999' });
      expect(seen.version).toBeLessThan(20); // created, claimed, a handful of progress writes; not 1000

      controls.open('spam');
      const done = await waitForJob(store, job.id, (j) => j.status === 'succeeded');
      expect(done.progress).toMatchObject({ percent: 100, step: 's999', message: 'm999' });
      expect(done.version).toBeLessThan(20);
      expect(done.result).toEqual({ reported: 1000 });
    });

    it('writes the last progress a handler reported right before returning', async () => {
      // JobContext.progress promises "the last one is always written".
      const job = await createJob(store, 'progress-then-return');
      await startPool();
      const done = await waitForJob(store, job.id, (j) => j.status === 'succeeded');
      expect(done.result).toEqual({ done: true });
      expect(done.progress).toMatchObject({ percent: 100, step: 'final-step', message: 'last words' });
    });
  });

  describe('retries', () => {
    it('retries a failing attempt after a backoff and succeeds on the third attempt', async () => {
      const finishes = recordFinishes(store);
      const claims = recordClaims(store);
      const job = await createJob(store, 'sleep', { input: { ms: 10, steps: 1, fail_times: 2 }, maxAttempts: 3 });
      await startPool();

      const done = await waitForJob(store, job.id, (j) => j.status === 'succeeded', 5000);
      await waitFor(() => finishes.length === 3, { timeoutMs: 1000, what: 'the third finish to be recorded' });
      expect(done.attempt).toBe(3);
      expect(done.error).toBeNull();
      expect(done.result).toEqual({ slept_ms: 10, attempt: 3 });
      expect(done.progress.percent).toBe(100);

      const mine = finishes.filter((call) => call.lease.jobId === job.id);
      expect(mine.map((call) => call.outcome.kind)).toEqual(['retry', 'retry', 'succeeded']);
      expect(mine.map((call) => (call.result === 'lost' ? 'lost' : call.result.status))).toEqual([
        'queued',
        'queued',
        'succeeded',
      ]);
      const attempts = claims.filter((claimed) => claimed.id === job.id);
      expect(attempts.map((claimed) => claimed.attempt)).toEqual([1, 2, 3]);

      for (const [i, call] of mine.slice(0, 2).entries()) {
        const ceiling = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** i);
        const outcome = call.outcome as Extract<AttemptOutcome, { kind: 'retry' }>;
        expect(outcome.error).toMatchObject({ code: 'planned-failure', retryable: true });
        // runAt is set when the attempt fails (backoff with equal jitter: ceiling / 2 to ceiling after that), which is
        // after the attempt was claimed and before its outcome reached the store: bounds that hold whatever the
        // jitter drew and however long the outcome waited for the pool's next store call.
        const claimedAt = attempts[i]!.startedAt!;
        expect(outcome.runAt - claimedAt).toBeGreaterThanOrEqual(ceiling / 2);
        expect(outcome.runAt - call.now).toBeLessThanOrEqual(ceiling + 1);
        // What a client sees between attempts: queued again, waiting for a future runAt.
        expect(call.after).toMatchObject({ status: 'queued', attempt: i + 1, lease: null, runAt: outcome.runAt });
        expect(call.after!.error).toMatchObject({ code: 'planned-failure' });
        expect(call.after!.progress.percent).toBeNull();
        expect(call.after!.runAt).toBeGreaterThan(call.after!.updatedAt);
        // The next attempt honoured the backoff.
        const next = attempts[i + 1]!;
        expect(next.startedAt!).toBeGreaterThanOrEqual(outcome.runAt);
        expect(next.startedAt! - claimedAt).toBeGreaterThanOrEqual(ceiling / 2);
      }
    });

    it('fails with the last error once the attempts are used up', async () => {
      const finishes = recordFinishes(store);
      const job = await createJob(store, 'sleep', { input: { ms: 10, steps: 1, fail_times: 5 }, maxAttempts: 2 });
      await startPool();

      const done = await waitForJob(store, job.id, (j) => j.status === 'failed', 5000);
      await waitFor(() => finishes.length === 2, { timeoutMs: 1000, what: 'the second finish to be recorded' });
      expect(done.attempt).toBe(2);
      expect(done.error).toMatchObject({ code: 'planned-failure', retryable: true });
      expect(done.error!.message).toContain('attempt 2');
      expect(done.result).toBeNull();
      expect(done.completedAt).toEqual(expect.any(Number));
      expect(finishes.filter((call) => call.lease.jobId === job.id).map((call) => call.outcome.kind)).toEqual([
        'retry',
        'failed',
      ]);
    });

    it('fails at once on a non-retryable JobFailure, whatever attempts are left', async () => {
      const job = await createJob(store, 'fail-hard', { maxAttempts: 3 });
      const pool = await startPool();

      const done = await waitForJob(store, job.id, (j) => j.status === 'failed');
      expect(done.attempt).toBe(1);
      expect(done.error).toEqual({
        code: 'bad-thing',
        message: 'nope',
        retryable: false,
        stack: expect.stringMatching(/^JobFailure: nope\n\s+at /) as string,
      });
      expect(done.result).toBeNull();
      expect(controls.runs).toHaveLength(1);
      await waitFor(() => pool.counters.failed === 1, { timeoutMs: 1000, what: 'the failure to be counted' });
      expect(pool.counters.retried).toBe(0);
    });
  });

  describe('timeouts', () => {
    it('aborts an attempt that outlives its timeout and fails the job with code "timeout"', async () => {
      const job = await createJob(store, 'wait', { input: { ms: 5000 }, timeoutS: 0.1, maxAttempts: 1 });
      await startPool();

      const done = await waitForJob(store, job.id, (j) => j.status === 'failed');
      expect(done.attempt).toBe(1);
      expect(done.error).toMatchObject({ code: 'timeout', retryable: true });
      expect(done.completedAt! - done.startedAt!).toBeGreaterThanOrEqual(90);
      expect(done.completedAt! - done.startedAt!).toBeLessThan(2000);
      expect(controls.runs[0]!.abortReason).toBe('timeout');
    });

    it('retries a timed-out attempt while attempts are left', async () => {
      const job = await createJob(store, 'wait', { input: { ms: 5000 }, timeoutS: 0.1, maxAttempts: 2 });
      await startPool();

      const done = await waitForJob(store, job.id, (j) => j.status === 'failed');
      expect(done.attempt).toBe(2);
      expect(done.error).toMatchObject({ code: 'timeout' });
      expect(controls.runs.map((run) => [run.attempt, run.abortReason])).toEqual([
        [1, 'timeout'],
        [2, 'timeout'],
      ]);
    });
  });

  describe('cancel', () => {
    it('signals the handler of a running job and ends the job canceled', async () => {
      const job = await createJob(store, 'gate', { input: { gate: 'c' }, maxAttempts: 3 });
      const pool = await startPool();
      await waitFor(() => controls.runs.length === 1, { timeoutMs: 3000, what: 'the handler to start' });
      await waitForJob(store, job.id, (j) => j.status === 'running');

      const answer = await store.cancel(job.id, Date.now());
      expect(answer?.outcome).toBe('cancel-requested');

      const done = await waitForJob(store, job.id, (j) => j.status === 'canceled');
      expect(controls.runs[0]!.abortReason).toBe('canceled');
      expect(done.attempt).toBe(1);
      expect(done.error).toBeNull();
      expect(done.result).toBeNull();
      expect(done.lease).toBeNull();
      expect(done.completedAt).toEqual(expect.any(Number));
      expect(controls.runs).toHaveLength(1); // not retried
      await waitFor(() => pool.busy === 0 && pool.counters.canceled === 1, {
        timeoutMs: 1000,
        what: 'the cancel to be counted',
      });
    });
  });

  describe('drain', () => {
    it('lets a short running job finish within the grace period', async () => {
      const job = await createJob(store, 'wait', { input: { ms: 200 } });
      const pool = await startPool();
      await waitFor(() => controls.runs.length === 1, { timeoutMs: 3000, what: 'the handler to start' });

      const started = Date.now();
      await pool.drain(5000);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(pool.busy).toBe(0);
      const done = await store.get(job.id);
      expect(done).toMatchObject({ status: 'succeeded', attempt: 1, result: { waited: 200 } });
      expect(controls.runs[0]!.abortReason).toBeUndefined();
    });

    it('puts a job still running after the grace period back to queued without counting the attempt', async () => {
      const job = await createJob(store, 'gate', { input: { gate: 'never' }, maxAttempts: 1 });
      const pool = await startPool();
      await waitForJob(store, job.id, (j) => j.status === 'running' && j.attempt === 1);
      await waitFor(() => controls.runs.length === 1, { timeoutMs: 3000, what: 'the handler to start' });

      const started = Date.now();
      await pool.drain(100);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(pool.busy).toBe(0);
      expect(controls.runs[0]!.abortReason).toBe('shutdown');
      const released = await store.get(job.id);
      expect(released).toMatchObject({
        status: 'queued',
        attempt: 0,
        lease: null,
        error: null,
        result: null,
        completedAt: null,
      });
    });

    it('claims nothing once drained', async () => {
      const calls = countStoreCalls(store);
      const pool = await startPool();
      await pool.drain(100);
      const signalled = await nextEvent(store, (event) => event.kind === 'work' && event.type === 'gate');
      const job = await createJob(store, 'gate', { input: { gate: 'open' } });
      controls.open('open');
      // The pool had its chance: the job's 'work' signal reached this later listener, so the pool's own listener (still
      // there, were the drain to forget it) came first; any claim it made then is answered and acted on.
      await signalled.event;
      await waitFor(calls.settled, { timeoutMs: 3000, what: "the pool's store calls to be answered" });
      expect(await store.get(job.id)).toMatchObject({ status: 'queued', attempt: 0 });
      expect(controls.runs).toHaveLength(0);
      expect(pool.busy).toBe(0);
    });

    it('leaves no job running when drained while a claim is in flight', async () => {
      const job = await createJob(store, 'gate', { input: { gate: 'never' } });
      const original = store.finishAndClaim.bind(store);
      const claimEntered = deferred();
      const claimRelease = deferred();
      vi.spyOn(store, 'finishAndClaim').mockImplementation(async (finishes, claim, now) => {
        if (claim && !claimEntered.settled) {
          claimEntered.resolve();
          await claimRelease.promise; // a slow round trip to the store
        }
        return original(finishes, claim, now);
      });
      const pool = await startPool();
      await claimEntered.promise;

      const drained = pool.drain(200);
      claimRelease.resolve();
      await drained;

      expect(pool.busy).toBe(0);
      // The claimed job must not be left running on a stopped pool (nobody renews its lease).
      const after = await waitForJob(store, job.id, (j) => j.status !== 'running', 1000);
      expect(after).toMatchObject({ status: 'queued', attempt: 0, lease: null });
    });
  });

  describe('delayed jobs and wake-ups', () => {
    it('starts a delayed job created before the pool started at its runAt, not before', async () => {
      const runAt = Date.now() + 300;
      const job = await createJob(store, 'gate', { input: { gate: 'open' }, runAt });
      controls.open('open');
      await startPool();

      const done = await waitForJob(store, job.id, (j) => j.status === 'succeeded', 3000);
      expect(done.startedAt!).toBeGreaterThanOrEqual(runAt);
      expect(done.startedAt! - runAt).toBeLessThan(250);
      expect(controls.runs[0]!.startedAt).toBeGreaterThanOrEqual(runAt);
    });

    it('starts a delayed job created while the pool is idle at its runAt', async () => {
      const original = store.nextWakeAt.bind(store);
      let idle = 0;
      vi.spyOn(store, 'nextWakeAt').mockImplementation(async (types) => {
        const next = await original(types);
        idle++;
        return next;
      });
      await startPool();
      await waitFor(() => idle >= 1, { timeoutMs: 3000, what: 'the pool to go idle' });

      const runAt = Date.now() + 300;
      const job = await createJob(store, 'gate', { input: { gate: 'open' }, runAt });
      controls.open('open');

      const done = await waitForJob(store, job.id, (j) => j.status === 'succeeded', 3000);
      expect(done.startedAt!).toBeGreaterThanOrEqual(runAt);
      expect(done.startedAt! - runAt).toBeLessThan(250);
    });

    it('does not miss a job submitted while the idle pool looks up its next wake-up time', async () => {
      const original = store.nextWakeAt.bind(store);
      let created: JobRecord | undefined;
      let hook: (() => Promise<void>) | null = async () => {
        const signalled = await nextEvent(store, (event) => event.kind === 'work' && event.type === 'gate');
        created = await createJob(store, 'gate', { input: { gate: 'open' } });
        await signalled.event; // the pool's listener got the 'work' signal too, while it was between claim and sleep
      };
      vi.spyOn(store, 'nextWakeAt').mockImplementation(async (types) => {
        const run = hook;
        hook = null;
        if (run) await run();
        return original(types);
      });
      controls.open('open');
      await startPool();

      await waitFor(() => created !== undefined, { timeoutMs: 3000, what: 'the job to be submitted' });
      const done = await waitForJob(store, created!.id, (j) => j.status === 'succeeded', 3000);
      expect(done.attempt).toBe(1);
    });
  });

  describe('lost leases', () => {
    it('does not overwrite a job reclaimed by another worker: its late finish is refused', async () => {
      const finishes = recordFinishes(store);
      const job = await createJob(store, 'gate', { input: { gate: 'late', ignoreSignal: true }, maxAttempts: 3 });
      const pool = await startPool({ leaseMs: 10_000 });
      await waitFor(() => controls.runs.length === 1, { timeoutMs: 3000, what: 'the handler to start' });

      // Another worker, at a time when this pool's lease has lapsed, reclaims the job.
      const [reclaimed] = await store.claim({
        types: ['gate'],
        max: 1,
        workerId: 'other-worker',
        leaseId: 'other-lease',
        leaseMs: 60_000,
        now: Date.now() + 20_000,
      });
      expect(reclaimed).toMatchObject({ id: job.id, status: 'running', attempt: 2 });
      expect(reclaimed!.lease).toMatchObject({ id: 'other-lease', workerId: 'other-worker' });

      const byOther = await store.finish(
        { jobId: job.id, leaseId: 'other-lease' },
        { kind: 'succeeded', result: { by: 'other' } },
        Date.now(),
      );
      expect(byOther).not.toBe('lost');
      const settled = await store.get(job.id);
      expect(settled).toMatchObject({ status: 'succeeded', attempt: 2, result: { by: 'other' } });

      // The original handler finally returns; the pool's write must be refused.
      controls.open('late');
      await waitFor(() => finishes.some((call) => call.lease.leaseId !== 'other-lease'), {
        timeoutMs: 3000,
        what: "the pool's finish",
      });
      const late = finishes.find((call) => call.lease.leaseId !== 'other-lease')!;
      expect(late.outcome.kind).toBe('succeeded');
      expect(late.result).toBe('lost');
      expect(pool.counters.leasesLost).toBe(1);
      expect(pool.counters.succeeded).toBe(0);
      const after = await store.get(job.id);
      expect(after).toMatchObject({
        status: 'succeeded',
        attempt: 2,
        result: { by: 'other' },
        version: settled!.version,
      });
    });

    it('aborts the handler when the heartbeat finds the lease taken, and writes nothing', async () => {
      const finishes = recordFinishes(store);
      const job = await createJob(store, 'gate', { input: { gate: 'late', ignoreSignal: true }, maxAttempts: 3 });
      const pool = await startPool({ leaseMs: 300 }); // heartbeat every 100 ms
      await waitFor(() => controls.runs.length === 1, { timeoutMs: 3000, what: 'the handler to start' });

      const [reclaimed] = await store.claim({
        types: ['gate'],
        max: 1,
        workerId: 'other-worker',
        leaseId: 'other-lease',
        leaseMs: 60_000,
        now: Date.now() + 1000,
      });
      expect(reclaimed).toMatchObject({ id: job.id, attempt: 2 });

      await waitFor(() => controls.runs[0]!.abortReason !== undefined, {
        timeoutMs: 2000,
        what: 'the handler to be aborted',
      });
      expect(controls.runs[0]!.abortReason).toBe('lease-lost');
      await waitFor(() => pool.busy === 0, { timeoutMs: 1000, what: 'the slot to be freed' }); // even though the handler ignores its signal
      expect(pool.counters.leasesLost).toBe(1);
      expect(finishes).toHaveLength(0);

      const after = await store.get(job.id);
      expect(after).toMatchObject({ status: 'running', attempt: 2 });
      expect(after!.lease).toMatchObject({ id: 'other-lease', workerId: 'other-worker' });
      expect(after!.error).toMatchObject({ code: 'lease-expired' });
    });
  });
});
