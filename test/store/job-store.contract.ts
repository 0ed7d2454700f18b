import { describeFairSchedulingContract } from './fair-scheduling.contract.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newJobId, partitionInId } from '../../src/jobs/job-id.js';
import type { JobRecord, NewJob, WebhookDeliveryState, WebhookEvent } from '../../src/jobs/job.js';
import {
  LOG_LINES_MAX,
  TooManyActiveJobsError,
  type ClaimRequest,
  type JobStore,
  type StoreEvent,
  type WebhookDelivery,
} from '../../src/store/job-store.js';

export interface StoreFactory {
  (options: { jobTtlMs: number }): Promise<JobStore>;
}

export interface ContractOptions {
  /**
   * `partitions`: the store spreads jobs over partitions (a Redis store with REDIS_PARTITIONS > 1) and a claim takes
   * one partition's batch at a time, partitions in turn: priority, run-time and fair order then hold within each
   * partition (the partition is in the job id, job-id.ts partitionInId), which is what is checked instead of one
   * order across all jobs.
   */
  claimOrder?: 'global' | 'partitions';
  /** With claimOrder `partitions`: how many partitions the store has. */
  partitions?: number;
}

let seq = 0;
let lastCreatedAt = 0;
/** Strictly increasing creation times, so jobs made one after another also sort (and are claimed) in that order. */
const nextCreatedAt = (): number => (lastCreatedAt = Math.max(Date.now() - 1000, lastCreatedAt + 1));

/** The JobStore contract: every implementation must pass all of it. */
export function describeJobStoreContract(
  name: string,
  makeStore: StoreFactory,
  { claimOrder = 'global', partitions = 1 }: ContractOptions = {},
): void {
  const globalOrder = claimOrder === 'global';
  /** A test of one claim order across all jobs: a partitioned store has its own (see ContractOptions). */
  const itInGlobalOrder = globalOrder ? it : () => undefined;
  describe(`JobStore contract: ${name}`, () => {
    let store: JobStore;
    const TTL = 60_000;

    beforeEach(async () => {
      store = await makeStore({ jobTtlMs: TTL });
    });
    afterEach(async () => {
      await store.close();
    });

    function newJob(overrides: Partial<NewJob> = {}): NewJob {
      const now = overrides.createdAt ?? nextCreatedAt();
      return {
        id: newJobId(now),
        type: 'echo',
        tenant: '-',
        input: { n: seq++ },
        metadata: {},
        priority: 0,
        maxAttempts: 3,
        timeoutS: null,
        createdAt: now,
        runAt: now,
        ...overrides,
      };
    }

    const claimRequest = (overrides: Partial<ClaimRequest> = {}): ClaimRequest => ({
      types: ['echo'],
      max: 10,
      workerId: 'worker-a',
      leaseId: `lease-${seq++}`,
      leaseMs: 30_000,
      now: Date.now(),
      ...overrides,
    });

    const lease = (job: JobRecord) => ({ jobId: job.id, leaseId: job.lease!.id });

    async function claimOne(overrides: Partial<ClaimRequest> = {}): Promise<JobRecord> {
      const [job] = await store.claim(claimRequest({ max: 1, ...overrides }));
      expect(job).toBeDefined();
      return job!;
    }

    describe('create and get', () => {
      it('stores a queued job at version 1 and reads it back unchanged', async () => {
        const input = {
          text: 'héllo ✓',
          big: 9007199254740991,
          fraction: 0.30000000000000004,
          nested: [1, { a: null }],
          empty: {},
          list: [],
        };
        const created = await store.create(newJob({ input, metadata: { team: 'search' }, priority: 7, timeoutS: 12 }));
        expect(created).toMatchObject({
          status: 'queued',
          version: 1,
          attempt: 0,
          result: null,
          error: null,
          expiresAt: null,
        });
        const read = await store.get(created.id);
        expect(read).toEqual(created);
        expect(read!.input).toEqual(input);
        expect(read!.metadata).toEqual({ team: 'search' });
        expect(read!.progress).toEqual({ percent: null, step: null, message: null, updatedAt: null });
      });

      it('answers undefined for an unknown id', async () => {
        expect(await store.get(newJobId(Date.now()))).toBeUndefined();
      });
    });

    describe('idempotent create', () => {
      const once = (key: string, fingerprint = 'fp-1') => ({ key, fingerprint, ttlMs: 60_000 });

      it('makes the job once; a repeat gets the same job back, a different request with the key is refused', async () => {
        const first = await store.createOnce(newJob(), once('key-1'));
        expect(first).toMatchObject({ replayed: false, job: { status: 'queued', version: 1 } });
        const created = first as { job: JobRecord };
        const again = await store.createOnce(newJob(), once('key-1'));
        expect(again).toMatchObject({ replayed: true, job: { id: created.job.id } });
        expect(await store.createOnce(newJob(), once('key-1', 'fp-2'))).toBe('key-reused');
        expect((await store.list({ limit: 10, order: 'desc' })).jobs).toHaveLength(1);
        expect((await store.findByIdempotencyKey('-', 'key-1'))?.id).toBe(created.job.id);
        expect(await store.findByIdempotencyKey('-', 'key-2')).toBeUndefined();
        expect(await store.findByIdempotencyKey('other-tenant', 'key-1')).toBeUndefined();
      });

      it('keeps keys per tenant, makes one job for concurrent repeats, and a key whose job went names a new one', async () => {
        const mine = (await store.createOnce(newJob(), once('shared'))) as { job: JobRecord };
        const theirs = (await store.createOnce(newJob({ tenant: 'other' }), once('shared'))) as {
          job: JobRecord;
          replayed: boolean;
        };
        expect(theirs.replayed).toBe(false);
        expect(theirs.job.id).not.toBe(mine.job.id);
        const results = await Promise.all([1, 2, 3].map(() => store.createOnce(newJob(), once('burst'))));
        const ids = new Set(results.map((result) => (result as { job: JobRecord }).job.id));
        expect(ids.size).toBe(1);
        expect(results.filter((result) => (result as { replayed: boolean }).replayed)).toHaveLength(2);
        await store.delete(mine.job.id);
        const renewed = (await store.createOnce(newJob(), once('shared'))) as { job: JobRecord; replayed: boolean };
        expect(renewed.replayed).toBe(false);
        expect(renewed.job.id).not.toBe(mine.job.id);
      });
    });

    describe('active jobs per tenant', () => {
      it("refuses a tenant's job over its active limit, without storing it; replays and other tenants go on", async () => {
        const limit = { maxActive: 2 };
        const first = await store.create(newJob({ tenant: 'acme' }), limit);
        await store.createOnce(newJob({ tenant: 'acme' }), { key: 'k', fingerprint: 'f', ttlMs: 60_000 }, limit);
        await expect(store.create(newJob({ tenant: 'acme' }), limit)).rejects.toBeInstanceOf(TooManyActiveJobsError);
        await expect(
          store.createOnce(newJob({ tenant: 'acme' }), { key: 'k2', fingerprint: 'f', ttlMs: 60_000 }, limit),
        ).rejects.toBeInstanceOf(TooManyActiveJobsError);
        expect(await store.findByIdempotencyKey('acme', 'k2')).toBeUndefined();
        expect(
          await store.createOnce(newJob({ tenant: 'acme' }), { key: 'k', fingerprint: 'f', ttlMs: 60_000 }, limit),
        ).toMatchObject({ replayed: true });
        await store.create(newJob({ tenant: 'globex' }), limit);
        expect((await store.list({ tenant: 'acme', limit: 10, order: 'asc' })).jobs).toHaveLength(2);
        await store.cancel(first.id, Date.now());
        await store.create(newJob({ tenant: 'acme' }), limit);
      });
    });

    describe('claim', () => {
      if (!globalOrder) {
        it('claims every job once, by priority, run time and id within each partition, partitions in turn', async () => {
          const now = Date.now();
          const created: JobRecord[] = [];
          for (let i = 0; i < 40; i++) {
            const at = now - 100 + (i % 7);
            created.push(await store.create(newJob({ priority: (i * 7) % 3, createdAt: now - 200 + i, runAt: at })));
          }
          const claimed: JobRecord[] = [];
          for (let i = 0; i < 50; i++) claimed.push(...(await store.claim(claimRequest({ max: 1, now }))));
          expect(claimed.map((job) => job.id).sort()).toEqual(created.map((job) => job.id).sort());
          const partitions = new Set(claimed.map((job) => partitionInId(job.id)));
          expect(partitions.size).toBeGreaterThan(1);
          for (const partition of partitions) {
            const inPartition = claimed.filter((job) => partitionInId(job.id) === partition);
            const expected = [...inPartition].sort(
              (a, b) => b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : 1),
            );
            expect(inPartition.map((job) => job.id)).toEqual(expected.map((job) => job.id));
          }
        });

        it('lets a small tenant through a flood: each partition alternates tenants, partitions take turns', async () => {
          for (let i = 0; i < 10 * partitions; i++) await store.create(newJob({ tenant: 'flood' }));
          const small: JobRecord[] = [];
          for (let i = 0; i < 5; i++) small.push(await store.create(newJob({ tenant: 'small' })));
          // A partition's k-th small job is its 2k-th claim at the latest, and each partition has a turn in every
          // `partitions` claims: all are claimed within 2 × partitions × (most small jobs in one partition) claims.
          const perPartition = new Map<number, number>();
          for (const job of small)
            perPartition.set(partitionInId(job.id), (perPartition.get(partitionInId(job.id)) ?? 0) + 1);
          const bound = 2 * partitions * Math.max(...perPartition.values());
          const tenants: string[] = [];
          for (let i = 0; i < bound; i++) {
            const [job] = await store.claim(claimRequest({ max: 1 }));
            tenants.push(job!.tenant);
          }
          expect(tenants.filter((tenant) => tenant === 'small')).toHaveLength(5);
          expect(tenants.filter((tenant) => tenant === 'flood').length).toBe(bound - 5);
        });
      }

      itInGlobalOrder(
        'leases ready jobs by priority, then run time, then id, with a fresh lease and attempt 1',
        async () => {
          const now = Date.now();
          const low = await store.create(newJob({ priority: -5, createdAt: now - 3, runAt: now - 3 }));
          const highLater = await store.create(newJob({ priority: 5, createdAt: now - 2, runAt: now - 1 }));
          const highEarlier = await store.create(newJob({ priority: 5, createdAt: now - 1, runAt: now - 2 }));
          const claimed = await store.claim(claimRequest({ max: 3, leaseId: 'L1', now }));
          expect(claimed.map((job) => job.id)).toEqual([highEarlier.id, highLater.id, low.id]);
          for (const job of claimed) {
            expect(job).toMatchObject({ status: 'running', attempt: 1, version: 2, startedAt: now });
            expect(job.lease).toEqual({ id: 'L1', workerId: 'worker-a', until: now + 30_000 });
          }
        },
      );

      it('hands each job to exactly one of several concurrent claims', async () => {
        for (let i = 0; i < 12; i++) await store.create(newJob());
        const results = await Promise.all([1, 2, 3, 4].map(() => store.claim(claimRequest({ max: 5 }))));
        const ids = results.flat().map((job) => job.id);
        expect(ids).toHaveLength(12);
        expect(new Set(ids).size).toBe(12);
      });

      it('claims only the requested types and respects max', async () => {
        await store.create(newJob({ type: 'sleep' }));
        await store.create(newJob());
        await store.create(newJob());
        const claimed = await store.claim(claimRequest({ types: ['echo'], max: 1 }));
        expect(claimed).toHaveLength(1);
        expect(claimed[0]!.type).toBe('echo');
        expect(await store.claim(claimRequest({ types: ['other'] }))).toEqual([]);
      });

      it('does not claim a delayed job before its run time, and does after', async () => {
        const now = Date.now();
        const delayed = await store.create(newJob({ runAt: now + 5000 }));
        expect(await store.claim(claimRequest({ now }))).toEqual([]);
        const wake = await store.nextWakeAt(['echo']);
        expect(wake).toBe(now + 5000);
        const [job] = await store.claim(claimRequest({ now: now + 5001 }));
        expect(job?.id).toBe(delayed.id);
      });
    });

    // The exact fair order across tenants and keys (a partitioned store's is checked above, per partition).
    if (globalOrder) describeFairSchedulingContract(() => store);

    describe('fleet-wide limits', () => {
      it('never has more than maxConcurrency jobs of a type running', async () => {
        for (let i = 0; i < 5; i++) await store.create(newJob());
        await store.create(newJob({ type: 'sleep' }));
        const limits = { echo: { maxConcurrency: 2 } };
        const first = await store.claim(claimRequest({ types: ['echo', 'sleep'], limits, max: 10 }));
        expect(first.filter((job) => job.type === 'echo')).toHaveLength(2);
        expect(first.filter((job) => job.type === 'sleep')).toHaveLength(1);
        expect(await store.claim(claimRequest({ limits, max: 10 }))).toEqual([]);
        const events: StoreEvent[] = [];
        await store.subscribe((event) => events.push(event));
        const echo = first.find((job) => job.type === 'echo')!;
        await store.finish(lease(echo), { kind: 'succeeded', result: 1 }, Date.now(), { concurrencyLimited: true });
        await expect
          .poll(() => events.some((event) => event.kind === 'work' && event.type === 'echo'), { timeout: 2000 })
          .toBe(true);
        expect(await store.claim(claimRequest({ limits, max: 10 }))).toHaveLength(1);
      });

      it('never starts more than rate.max jobs of a type in any window of rate.perMs', async () => {
        for (let i = 0; i < 8; i++) await store.create(newJob());
        const limits = { echo: { rate: { max: 3, perMs: 1000 } } };
        const now = Date.now();
        expect(await store.claim(claimRequest({ limits, now }))).toHaveLength(3);
        expect(await store.claim(claimRequest({ limits, now: now + 500 }))).toEqual([]);
        expect(await store.claim(claimRequest({ limits, now: now + 1000 }))).toEqual([]);
        const wake = await store.nextWakeAt(['echo'], limits);
        expect(wake).not.toBeNull();
        expect(wake!).toBeLessThanOrEqual(now + 1001);
        expect(await store.claim(claimRequest({ limits, now: now + 1001 }))).toHaveLength(3);
        expect(await store.claim(claimRequest({ now: now + 1002 }))).toHaveLength(2);
      });
    });

    describe('progress', () => {
      it('never decreases within an attempt, shows 100 as 99 until success, and keeps step and message', async () => {
        await store.create(newJob());
        const job = await claimOne();
        expect(
          await store.reportProgress(lease(job), { percent: 40, step: 'fetch', message: 'page 1' }, Date.now()),
        ).toBe(true);
        await store.reportProgress(lease(job), { percent: 20, step: null, message: null }, Date.now());
        let read = await store.get(job.id);
        expect(read!.progress).toMatchObject({ percent: 40, step: 'fetch', message: 'page 1' });
        expect(read!.version).toBe(job.version + 2);
        await store.reportProgress(lease(job), { percent: 100, step: 'write', message: 'almost' }, Date.now());
        read = await store.get(job.id);
        expect(read!.progress).toMatchObject({ percent: 99, step: 'write', message: 'almost' });
        expect(read!.progress.updatedAt).not.toBeNull();
        await store.finish(lease(job), { kind: 'succeeded', result: 1 }, Date.now());
        expect((await store.get(job.id))!.progress.percent).toBe(100);
      });

      it('is refused for a lease that is not held', async () => {
        await store.create(newJob());
        const job = await claimOne();
        expect(
          await store.reportProgress(
            { jobId: job.id, leaseId: 'someone-else' },
            { percent: 10, step: null, message: null },
            Date.now(),
          ),
        ).toBe(false);
        expect((await store.get(job.id))!.progress.percent).toBeNull();
      });
    });

    describe('finish', () => {
      it('records success with result, completion time and expiry, once', async () => {
        await store.create(newJob());
        const job = await claimOne();
        const now = Date.now();
        const result = await store.finish(lease(job), { kind: 'succeeded', result: { ok: true, list: [1, 2] } }, now);
        expect(result).toEqual({ status: 'succeeded', version: job.version + 1 });
        const read = await store.get(job.id);
        expect(read).toMatchObject({
          status: 'succeeded',
          result: { ok: true, list: [1, 2] },
          error: null,
          completedAt: now,
          expiresAt: now + TTL,
          lease: null,
        });
        expect(
          await store.finish(lease(job), { kind: 'failed', error: { code: 'x', message: 'x', retryable: false } }, now),
        ).toBe('lost');
      });

      it('records a failure with its error', async () => {
        await store.create(newJob());
        const job = await claimOne();
        await store.finish(
          lease(job),
          { kind: 'failed', error: { code: 'boom', message: 'it broke', retryable: false } },
          Date.now(),
        );
        expect(await store.get(job.id)).toMatchObject({
          status: 'failed',
          error: { code: 'boom', message: 'it broke', retryable: false },
          result: null,
        });
      });

      it('queues a retry for its run time, keeping the error, and the next attempt starts from null progress', async () => {
        await store.create(newJob());
        const job = await claimOne();
        await store.reportProgress(lease(job), { percent: 50, step: 's', message: 'm' }, Date.now());
        const now = Date.now();
        expect(
          await store.finish(
            lease(job),
            { kind: 'retry', error: { code: 'flaky', message: 'try again', retryable: true }, runAt: now + 1000 },
            now,
          ),
        ).toMatchObject({ status: 'queued' });
        const queued = await store.get(job.id);
        expect(queued).toMatchObject({
          status: 'queued',
          runAt: now + 1000,
          attempt: 1,
          error: { code: 'flaky' },
          lease: null,
        });
        expect(queued!.progress.percent).toBeNull();
        expect(await store.claim(claimRequest({ now }))).toEqual([]);
        const [second] = await store.claim(claimRequest({ now: now + 1001 }));
        expect(second).toMatchObject({ id: job.id, attempt: 2, status: 'running' });
        await store.finish(lease(second!), { kind: 'succeeded', result: 'fine' }, now + 1002);
        expect(await store.get(job.id)).toMatchObject({ status: 'succeeded', error: null, attempt: 2 });
      });

      it('puts a released job back without counting the attempt', async () => {
        await store.create(newJob());
        const job = await claimOne();
        await store.finish(lease(job), { kind: 'released' }, Date.now());
        expect(await store.get(job.id)).toMatchObject({ status: 'queued', attempt: 0 });
        expect(await claimOne()).toMatchObject({ id: job.id, attempt: 1 });
      });
    });

    describe('finish and claim in one step', () => {
      it('finishes each attempt in order, fenced, then claims the next jobs', async () => {
        for (let i = 0; i < 4; i++) await store.create(newJob());
        const [a, b] = await store.claim(claimRequest({ max: 2 }));
        const now = Date.now();
        const { results, claimed } = await store.finishAndClaim(
          [
            { lease: lease(a!), outcome: { kind: 'succeeded', result: { n: 1 } } },
            { lease: { jobId: b!.id, leaseId: 'not-mine' }, outcome: { kind: 'succeeded', result: 'x' } },
            { lease: lease(b!), outcome: { kind: 'failed', error: { code: 'e', message: 'm', retryable: false } } },
          ],
          claimRequest({ max: 5, leaseId: 'next', now }),
          now,
        );
        expect(results).toEqual([
          { status: 'succeeded', version: a!.version + 1 },
          'lost',
          { status: 'failed', version: b!.version + 1 },
        ]);
        expect(claimed).toHaveLength(2);
        expect(claimed.every((job) => job.lease?.id === 'next' && job.status === 'running')).toBe(true);
        expect(await store.get(a!.id)).toMatchObject({ status: 'succeeded', result: { n: 1 } });
        const onlyFinish = await store.finishAndClaim(
          [{ lease: lease(claimed[0]!), outcome: { kind: 'released' } }],
          null,
          Date.now(),
        );
        expect(onlyFinish).toEqual({ results: [{ status: 'queued', version: claimed[0]!.version + 1 }], claimed: [] });
      });
    });

    describe('leases', () => {
      it('renews held leases and reports lost ones', async () => {
        await store.create(newJob());
        await store.create(newJob());
        const [a, b] = await store.claim(claimRequest({ max: 2, leaseMs: 1000 }));
        await store.finish(lease(b!), { kind: 'succeeded', result: null }, Date.now());
        const { lost } = await store.renewLeases(
          [lease(a!), lease(b!), { jobId: newJobId(Date.now()), leaseId: 'x' }],
          60_000,
          Date.now(),
        );
        expect(lost).toHaveLength(2);
        expect(lost).toContain(b!.id);
        expect(lost).not.toContain(a!.id);
        // Renewed: a claim 30 s later (past the old 1 s lease) does not reclaim it.
        expect(await store.claim(claimRequest({ now: Date.now() + 30_000 }))).toEqual([]);
        expect((await store.get(a!.id))!.lease!.until).toBeGreaterThan(Date.now() + 50_000);
      });

      it('re-queues a job whose lease lapsed; the next attempt fences out the old worker', async () => {
        await store.create(newJob());
        const first = await claimOne({ leaseMs: 100 });
        const later = Date.now() + 1000;
        const second = await claimOne({ now: later, leaseId: 'second' });
        expect(second).toMatchObject({ id: first.id, attempt: 2, lease: { id: 'second' } });
        expect(second.error).toMatchObject({ code: 'lease-expired', retryable: true });
        expect(await store.reportProgress(lease(first), { percent: 5, step: null, message: null }, later)).toBe(false);
        expect(await store.finish(lease(first), { kind: 'succeeded', result: 'stale' }, later)).toBe('lost');
        expect(await store.finish(lease(second), { kind: 'succeeded', result: 'fresh' }, later)).toMatchObject({
          status: 'succeeded',
        });
        expect((await store.get(first.id))!.result).toBe('fresh');
      });

      it('fails a job whose lease lapsed on its last attempt', async () => {
        await store.create(newJob({ maxAttempts: 1 }));
        const job = await claimOne({ leaseMs: 100 });
        expect(await store.claim(claimRequest({ now: Date.now() + 1000 }))).toEqual([]);
        expect(await store.get(job.id)).toMatchObject({ status: 'failed', error: { code: 'lease-expired' } });
      });

      it('lists running jobs whose lease lapsed as stuck, and the next wake-up covers the lapse', async () => {
        await store.create(newJob());
        await store.create(newJob());
        const [stuck, fine] = await store.claim(claimRequest({ max: 2, leaseMs: 50 }));
        await store.renewLeases([lease(fine!)], 60_000, Date.now());
        expect(await store.nextWakeAt(['echo'])).toBeLessThanOrEqual(stuck!.lease!.until);
        const page = await store.list({ limit: 10, order: 'desc', stuckAt: Date.now() + 100 });
        expect(page.jobs.map((job) => job.id)).toEqual([stuck!.id]);
      });
    });

    describe('cancel', () => {
      it('cancels a queued job at once', async () => {
        const job = await store.create(newJob({ runAt: Date.now() + 60_000 }));
        const outcome = await store.cancel(job.id, Date.now());
        expect(outcome?.outcome).toBe('canceled');
        expect(outcome?.job).toMatchObject({ status: 'canceled', version: 2 });
        expect(outcome?.job.expiresAt).not.toBeNull();
        expect(await store.claim(claimRequest({ now: Date.now() + 120_000 }))).toEqual([]);
      });

      it('asks a running job to stop, signals it, and the job ends canceled whatever the handler returns', async () => {
        const events: StoreEvent[] = [];
        const unsubscribe = await store.subscribe((event) => events.push(event));
        await store.create(newJob());
        const job = await claimOne();
        const outcome = await store.cancel(job.id, Date.now());
        expect(outcome?.outcome).toBe('cancel-requested');
        expect(outcome?.job).toMatchObject({ status: 'running', cancelRequested: true });
        await expect
          .poll(() => events.some((event) => event.kind === 'cancel' && event.jobId === job.id), { timeout: 2000 })
          .toBe(true);
        expect(await store.renewLeases([lease(job)], 30_000, Date.now())).toEqual({
          lost: [],
          cancelRequested: [job.id],
        });
        expect(await store.finish(lease(job), { kind: 'succeeded', result: 'too late' }, Date.now())).toMatchObject({
          status: 'canceled',
        });
        expect(await store.get(job.id)).toMatchObject({ status: 'canceled', result: null });
        unsubscribe();
      });

      it('cancels a running job whose worker died when its lease lapses', async () => {
        await store.create(newJob());
        const job = await claimOne({ leaseMs: 100 });
        await store.cancel(job.id, Date.now());
        await store.claim(claimRequest({ now: Date.now() + 1000 }));
        expect((await store.get(job.id))!.status).toBe('canceled');
      });

      it('leaves a finished job unchanged and answers undefined for an unknown one', async () => {
        await store.create(newJob());
        const job = await claimOne();
        await store.finish(lease(job), { kind: 'succeeded', result: 1 }, Date.now());
        const outcome = await store.cancel(job.id, Date.now());
        expect(outcome).toMatchObject({ outcome: 'unchanged', job: { status: 'succeeded', version: job.version + 1 } });
        expect(await store.cancel(newJobId(Date.now()), Date.now())).toBeUndefined();
      });
    });

    describe('delete', () => {
      it('removes a job and its result; a repeat removes nothing', async () => {
        await store.create(newJob());
        const job = await claimOne();
        await store.finish(lease(job), { kind: 'succeeded', result: 'x' }, Date.now());
        expect(await store.delete(job.id)).toBe(true);
        expect(await store.get(job.id)).toBeUndefined();
        expect(await store.delete(job.id)).toBe(false);
        expect((await store.list({ limit: 10, order: 'desc' })).jobs).toEqual([]);
      });

      it('remembers when a deleted job went; an id that never existed has no such time', async () => {
        const job = await store.create(newJob());
        const before = Date.now();
        await store.delete(job.id);
        const gone = await store.goneAt(job.id);
        expect(gone).toBeGreaterThanOrEqual(before);
        expect(gone).toBeLessThanOrEqual(Date.now());
        expect(await store.goneAt(newJobId(Date.now()))).toBeNull();
        expect(await store.goneAt(newJob().id)).toBeNull();
      });

      it('signals the worker of a running job and fences it out', async () => {
        const events: StoreEvent[] = [];
        await store.subscribe((event) => events.push(event));
        await store.create(newJob());
        const job = await claimOne();
        expect(await store.delete(job.id)).toBe(true);
        await expect
          .poll(() => events.some((event) => event.kind === 'cancel' && event.jobId === job.id), { timeout: 2000 })
          .toBe(true);
        expect(await store.finish(lease(job), { kind: 'succeeded', result: 1 }, Date.now())).toBe('lost');
        expect(await store.renewLeases([lease(job)], 1000, Date.now())).toEqual({
          lost: [job.id],
          cancelRequested: [],
        });
        expect(await store.get(job.id)).toBeUndefined();
      });

      it('takes a queued job out of the queue', async () => {
        const job = await store.create(newJob());
        await store.delete(job.id);
        expect(await store.claim(claimRequest())).toEqual([]);
      });
    });

    describe('admin retry', () => {
      it('re-queues a failed job now with another budget of attempts; the attempt count goes on', async () => {
        await store.create(newJob({ maxAttempts: 2 }));
        let job = await claimOne();
        await store.finish(
          lease(job),
          { kind: 'retry', error: { code: 'e', message: 'e', retryable: true }, runAt: Date.now() },
          Date.now(),
        );
        job = await claimOne();
        await store.finish(
          lease(job),
          { kind: 'failed', error: { code: 'e', message: 'e', retryable: true } },
          Date.now(),
        );
        const retried = await store.retry(job.id, Date.now());
        expect(retried).toMatchObject({
          status: 'queued',
          attempt: 2,
          maxAttempts: 4,
          completedAt: null,
          expiresAt: null,
        });
        expect(await claimOne()).toMatchObject({ id: job.id, attempt: 3 });
      });

      it('retries a canceled job, refuses an active one, and answers undefined for an unknown one', async () => {
        const queued = await store.create(newJob());
        expect(await store.retry(queued.id, Date.now())).toBe('not-retryable');
        await store.cancel(queued.id, Date.now());
        expect(await store.retry(queued.id, Date.now())).toMatchObject({ status: 'queued', cancelRequested: false });
        expect(await store.retry(newJobId(Date.now()), Date.now())).toBeUndefined();
      });
    });

    describe('list', () => {
      async function seed(count: number, start = Date.now() - 10_000): Promise<JobRecord[]> {
        const jobs: JobRecord[] = [];
        for (let i = 0; i < count; i++)
          jobs.push(
            await store.create(
              newJob({ createdAt: start + i, runAt: start + i, type: i % 3 === 0 ? 'sleep' : 'echo' }),
            ),
          );
        return jobs;
      }

      it('lists newest first by default and oldest first on request', async () => {
        const jobs = await seed(5);
        const desc = await store.list({ limit: 10, order: 'desc' });
        expect(desc.jobs.map((job) => job.id)).toEqual(jobs.map((job) => job.id).reverse());
        expect(desc.nextAfter).toBeNull();
        const asc = await store.list({ limit: 10, order: 'asc' });
        expect(asc.jobs.map((job) => job.id)).toEqual(jobs.map((job) => job.id));
      });

      it('pages with a cursor, each job exactly once, in both orders', async () => {
        const jobs = await seed(23);
        for (const order of ['desc', 'asc'] as const) {
          const seen: string[] = [];
          let after: string | undefined;
          let pages = 0;
          do {
            const page = await store.list({ limit: 5, order, after });
            seen.push(...page.jobs.map((job) => job.id));
            after = page.nextAfter ?? undefined;
            pages++;
          } while (after && pages < 10);
          const expected = jobs.map((job) => job.id);
          expect(seen).toEqual(order === 'asc' ? expected : expected.reverse());
        }
      });

      it('filters by several statuses, type and creation time', async () => {
        const start = Date.now() - 10_000;
        const jobs = await seed(9, start);
        await store.cancel(jobs[1]!.id, Date.now());
        const sleeping = [jobs[0]!.id, jobs[3]!.id, jobs[6]!.id];
        const [running] = await store.claim(claimRequest({ types: ['sleep'], max: 1 }));
        // The oldest when claims follow one order; any of them when a partitioned store claimed another partition first.
        if (globalOrder) expect(running!.id).toBe(jobs[0]!.id);
        expect(sleeping).toContain(running!.id);
        const byStatus = await store.list({ limit: 20, order: 'asc', statuses: ['running', 'canceled'] });
        expect(byStatus.jobs.map((job) => job.id)).toEqual([running!.id, jobs[1]!.id].sort());
        const byType = await store.list({ limit: 20, order: 'asc', type: 'sleep' });
        expect(byType.jobs.map((job) => job.id)).toEqual(sleeping);
        const combined = await store.list({ limit: 20, order: 'asc', type: 'sleep', statuses: ['queued'] });
        expect(combined.jobs.map((job) => job.id)).toEqual(sleeping.filter((id) => id !== running!.id));
        const window = await store.list({ limit: 20, order: 'asc', createdAfter: start + 2, createdBefore: start + 6 });
        expect(window.jobs.map((job) => job.id)).toEqual([jobs[3]!.id, jobs[4]!.id, jobs[5]!.id]);
      });

      it('says there is more when the page is full, and pages with filters too', async () => {
        await seed(12);
        const first = await store.list({ limit: 2, order: 'desc', type: 'sleep' });
        expect(first.jobs).toHaveLength(2);
        expect(first.nextAfter).toBe(first.jobs[1]!.id);
        const second = await store.list({ limit: 2, order: 'desc', type: 'sleep', after: first.nextAfter! });
        expect(second.jobs).toHaveLength(2);
        expect(second.nextAfter).toBeNull();
      });
    });

    describe('tenants', () => {
      it("lists a tenant's jobs only, pages through them, and keeps the open tenant's listing whole", async () => {
        const start = Date.now() - 10_000;
        const mine: JobRecord[] = [];
        for (let i = 0; i < 7; i++) {
          const tenant = i % 2 === 0 ? 'acme' : 'globex';
          const job = await store.create(newJob({ tenant, createdAt: start + i, runAt: start + i }));
          if (tenant === 'acme') mine.push(job);
        }
        await store.create(newJob({ createdAt: start + 10, runAt: start + 10 })); // the open tenant '-'
        const seen: string[] = [];
        let after: string | undefined;
        do {
          const page = await store.list({ tenant: 'acme', limit: 2, order: 'asc', after });
          seen.push(...page.jobs.map((job) => job.id));
          expect(page.jobs.every((job) => job.tenant === 'acme')).toBe(true);
          after = page.nextAfter ?? undefined;
        } while (after);
        expect(seen).toEqual(mine.map((job) => job.id));
        // A tenant's index follows its jobs through their states.
        await store.cancel(mine[0]!.id, Date.now());
        const canceled = await store.list({ tenant: 'acme', statuses: ['canceled'], limit: 10, order: 'asc' });
        expect(canceled.jobs.map((job) => job.id)).toEqual([mine[0]!.id]);
        expect((await store.list({ tenant: 'acme', statuses: ['queued'], limit: 10, order: 'asc' })).jobs).toHaveLength(
          3,
        );
        expect((await store.list({ limit: 20, order: 'asc' })).jobs).toHaveLength(8);
      });

      it('tells when a job went only to its own tenant', async () => {
        const job = await store.create(newJob({ tenant: 'acme' }));
        await store.delete(job.id);
        expect(await store.goneAt(job.id, 'acme')).not.toBeNull();
        expect(await store.goneAt(job.id, 'globex')).toBeNull();
        expect(await store.goneAt(job.id)).not.toBeNull();
      });
    });

    describe('expiry and purge', () => {
      it('makes a finished job disappear after the TTL', async () => {
        await store.close();
        // Long enough that the reads below (right after the finish, and 120 ms after the job went) cannot be
        // overtaken by the TTL even on a machine loaded many times over (400 ms was overtaken at load 13).
        store = await makeStore({ jobTtlMs: 1500 });
        await store.create(newJob());
        const job = await claimOne();
        await store.finish(lease(job), { kind: 'succeeded', result: 1 }, Date.now());
        expect(await store.get(job.id)).toBeDefined();
        await expect.poll(() => store.get(job.id), { timeout: 3000, interval: 50 }).toBeUndefined();
        const expiresAt = (await store.goneAt(job.id))!;
        expect(expiresAt).not.toBeNull();
        expect((await store.list({ limit: 10, order: 'desc' })).jobs).toEqual([]);
        expect(await store.cancel(job.id, Date.now())).toBeUndefined();
        // Still remembered after the sweeper dropped the job (for the TTL again): a fixed wait, as "still there later" is
        // about time passing (sweeps running meanwhile), which no event of the store contract marks.
        await new Promise((resolve) => setTimeout(resolve, 120));
        expect(await store.goneAt(job.id)).toBe(expiresAt);
      });

      it('purges finished jobs of the given statuses that finished before the cutoff, and only those', async () => {
        const now = Date.now();
        const done = await store.create(newJob({ createdAt: now - 3, runAt: now - 3 }));
        const failed = await store.create(newJob({ createdAt: now - 2, runAt: now - 2 }));
        const active = await store.create(newJob({ type: 'sleep', createdAt: now - 1, runAt: now - 1 }));
        const claimed = await store.claim(claimRequest({ max: 2 }));
        expect(claimed.map((job) => job.id).sort()).toEqual([done.id, failed.id].sort());
        const a = claimed.find((job) => job.id === done.id);
        const b = claimed.find((job) => job.id === failed.id);
        const finishedAt = Date.now();
        await store.finish(lease(a!), { kind: 'succeeded', result: 1 }, finishedAt);
        await store.finish(
          lease(b!),
          { kind: 'failed', error: { code: 'e', message: 'e', retryable: false } },
          finishedAt,
        );
        expect(await store.purge(['succeeded', 'failed', 'canceled'], finishedAt - 1000)).toBe(0);
        expect(await store.purge(['succeeded'], finishedAt + 1)).toBe(1);
        expect(await store.get(done.id)).toBeUndefined();
        expect(await store.goneAt(done.id)).not.toBeNull();
        expect(await store.get(failed.id)).toBeDefined();
        expect(await store.purge(['succeeded', 'failed', 'canceled', 'queued'], finishedAt + 1)).toBe(1);
        expect(await store.get(active.id)).toMatchObject({ status: 'queued' });
      });
    });

    describe('watch', () => {
      it('tells a watcher of every change of the job, with its version, and of its deletion', async () => {
        const job = await store.create(newJob());
        const heard: (number | null)[] = [];
        const stop = await store.watch(job.id, (version) => heard.push(version));
        const other = await store.create(newJob({ type: 'sleep' }));
        const claimed = await claimOne();
        expect(claimed.id).toBe(job.id);
        await store.reportProgress(lease(claimed), { percent: 10, step: 'a', message: null }, Date.now());
        await store.finish(lease(claimed), { kind: 'succeeded', result: 1 }, Date.now());
        await expect.poll(() => heard, { timeout: 2000 }).toEqual([2, 3, 4]);
        await store.cancel(other.id, Date.now()); // another job: not heard
        await store.delete(job.id);
        await expect.poll(() => heard, { timeout: 2000 }).toEqual([2, 3, 4, null]);
        stop();
        const after = await store.create(newJob());
        await store.delete(after.id);
        expect(heard).toHaveLength(4);
      });
    });

    describe('stats and signals', () => {
      it('counts jobs per status and type, ready and delayed, and finishes in the last minute', async () => {
        const now = Date.now();
        await store.create(newJob({ createdAt: now - 5000, runAt: now - 5000 }));
        await store.create(newJob({ type: 'sleep' }));
        await store.create(newJob({ runAt: now + 60_000 }));
        const [job] = await store.claim(claimRequest({ types: ['sleep'] }));
        await store.finish(lease(job!), { kind: 'succeeded', result: 1 }, Date.now());
        const stats = await store.stats(Date.now());
        expect(stats.counts).toEqual({ queued: 2, running: 0, succeeded: 1, failed: 0, canceled: 0 });
        expect(stats.byType.echo).toEqual({ queued: 2, running: 0, succeeded: 0, failed: 0, canceled: 0 });
        expect(stats.byType.sleep).toMatchObject({ succeeded: 1 });
        expect(stats.ready).toBe(1);
        expect(stats.delayed).toBe(1);
        expect(stats.delayedByType).toMatchObject({ echo: 1 });
        expect(stats.delayedByType.sleep ?? 0).toBe(0);
        expect(stats.oldestReadyAgeS).toBeGreaterThanOrEqual(4.9);
        expect(stats.finishedLastMinute).toBe(1);
      });

      it('counts delayed jobs per type: delays and retry backoffs, not jobs whose time has come', async () => {
        const now = Date.now();
        await store.create(newJob({ runAt: now + 60_000 }));
        await store.create(newJob({ runAt: now + 120_000 }));
        const third = await store.create(newJob({ runAt: now + 180_000 }));
        await store.create(newJob({ type: 'sleep', runAt: now + 60_000 }));
        await store.create(newJob({ type: 'sleep' }));
        await store.create(newJob({ type: 'other', runAt: now + 1000 }));
        // A retry waits out its backoff: delayed too.
        const [running] = await store.claim(claimRequest({ types: ['sleep'], max: 1 }));
        await store.finish(
          lease(running!),
          { kind: 'retry', error: { code: 'flaky', message: 'again', retryable: true }, runAt: now + 30_000 },
          now,
        );
        let stats = await store.stats(now);
        expect(stats.delayedByType).toMatchObject({ echo: 3, sleep: 2, other: 1 });
        expect(stats.delayed).toBe(6);
        // Run now, cancel: no longer delayed.
        expect(await store.runNow(third.id, now)).toMatchObject({ status: 'queued' });
        stats = await store.stats(now);
        expect(stats.delayedByType.echo).toBe(2);
        // Later, the `other` job's time has come (ready, not delayed), and so has the retry's.
        stats = await store.stats(now + 40_000);
        expect(stats.delayedByType).toMatchObject({ echo: 2, sleep: 1 });
        expect(stats.delayedByType.other ?? 0).toBe(0);
        expect(stats.delayed).toBe(3);
        expect(Object.values(stats.delayedByType).reduce((sum, n) => sum + n, 0)).toBe(stats.delayed);
      });

      it('signals idle workers when work arrives', async () => {
        const events: StoreEvent[] = [];
        await store.subscribe((event) => events.push(event));
        await store.create(newJob({ type: 'sleep' }));
        await expect
          .poll(() => events.some((event) => event.kind === 'work' && event.type === 'sleep'), { timeout: 2000 })
          .toBe(true);
      });

      it('answers a ping', async () => {
        expect(await store.ping()).toBeGreaterThanOrEqual(0);
      });
    });

    describe('attempt timeline, poison, logs', () => {
      it('records each ended attempt with its worker, times, outcome and error', async () => {
        await store.create(newJob());
        const first = await claimOne({ workerId: 'worker-a' });
        const error = {
          code: 'boom',
          message: 'upstream 502',
          retryable: true,
          stack: 'Error: upstream 502\n    at run (handler.js:1:1)',
        };
        await store.finish(lease(first), { kind: 'retry', error, runAt: Date.now() }, Date.now());
        const second = await claimOne({ workerId: 'worker-b' });
        expect(second.workerId).toBe('worker-b');
        await store.finish(lease(second), { kind: 'succeeded', result: 1 }, Date.now());
        const done = (await store.get(first.id))!;
        expect(done.workerId).toBe('worker-b');
        expect(done.attempts).toEqual([
          {
            attempt: 1,
            workerId: 'worker-a',
            startedAt: first.startedAt,
            endedAt: expect.any(Number) as number,
            outcome: 'retry',
            error,
          },
          {
            attempt: 2,
            workerId: 'worker-b',
            startedAt: second.startedAt,
            endedAt: expect.any(Number) as number,
            outcome: 'succeeded',
            error: null,
          },
        ]);
        expect(done.attempts[1]!.endedAt).toBeGreaterThanOrEqual(done.attempts[1]!.startedAt!);
      });

      it('fails a job as poison once its worker died while running it three times', async () => {
        const job = await store.create(newJob({ maxAttempts: 10 }));
        let now = Date.now();
        for (let lapse = 1; lapse <= 3; lapse++) {
          const [claimed] = await store.claim(claimRequest({ leaseMs: 1000, now, workerId: `w${lapse}` }));
          expect(claimed?.id, `claim ${lapse}`).toBe(job.id);
          now += 2000; // the lease lapses; the next claim recovers it
        }
        expect(await store.claim(claimRequest({ now }))).toEqual([]);
        const failed = (await store.get(job.id))!;
        expect(failed.status).toBe('failed');
        expect(failed.error).toMatchObject({ code: 'poison', retryable: false });
        expect(failed.attempts.map((attempt) => [attempt.workerId, attempt.outcome])).toEqual([
          ['w1', 'lease-expired'],
          ['w2', 'lease-expired'],
          ['w3', 'poison'],
        ]);
      });

      it('keeps the last log lines of a job, and drops them with it', async () => {
        const job = await store.create(newJob());
        const line = (n: number) => ({ at: 1000 + n, attempt: 1, level: 'info' as const, message: `line ${n}` });
        await store.appendLogs([{ jobId: job.id, lines: [line(1), line(2)] }]);
        await store.appendLogs([
          { jobId: job.id, lines: Array.from({ length: LOG_LINES_MAX }, (_, i) => line(3 + i)) },
        ]);
        const logs = await store.logs(job.id);
        expect(logs).toHaveLength(LOG_LINES_MAX);
        expect(logs[0]).toEqual(line(3));
        expect(logs.at(-1)).toEqual(line(2 + LOG_LINES_MAX));
        await store.delete(job.id);
        expect(await store.logs(job.id)).toEqual([]);
      });

      it('runs a delayed job now on request, and refuses for one that is not delayed', async () => {
        const delayed = await store.create(newJob({ runAt: Date.now() + 3_600_000 }));
        const ready = await store.create(newJob());
        expect(await store.runNow(ready.id, Date.now())).toBe('not-delayed');
        const now = Date.now();
        const moved = await store.runNow(delayed.id, now);
        expect(moved).toMatchObject({ status: 'queued', runAt: now, version: delayed.version + 1 });
        const claimed = await store.claim(claimRequest());
        expect(claimed.map((job) => job.id).sort()).toEqual([delayed.id, ready.id].sort());
        expect(await store.runNow(newJobId(Date.now()), Date.now())).toBeUndefined();
      });

      it('imports exported jobs keeping ids, states, attempts and results; running ones come in queued', async () => {
        const source = store;
        await source.create(newJob({ input: { n: 'done' } }));
        const running = await claimOne();
        await source.finish(lease(running), { kind: 'succeeded', result: { ok: true } }, Date.now());
        await source.create(newJob({ input: { n: 'active' } }));
        const active = await claimOne();
        const exported = await Promise.all([running.id, active.id].map(async (id) => (await source.get(id))!));
        await source.appendLogs([
          { jobId: running.id, lines: [{ at: 1, attempt: 1, level: 'warn', message: 'kept' }] },
        ]);
        const logs = await source.logs(running.id);
        const target = await makeStore({ jobTtlMs: TTL });
        try {
          expect(await target.importJob(exported[0]!, logs, Date.now())).toBe('imported');
          expect(await target.importJob(exported[1]!, [], Date.now())).toBe('imported');
          expect(await target.importJob(exported[1]!, [], Date.now())).toBe('exists');
          expect(await target.get(running.id)).toEqual(exported[0]);
          expect(await target.logs(running.id)).toEqual(logs);
          const requeued = (await target.get(active.id))!;
          expect(requeued).toMatchObject({ status: 'queued', attempt: 1, lease: null, input: { n: 'active' } });
          const [reclaimed] = await target.claim(claimRequest());
          expect(reclaimed).toMatchObject({ id: active.id, attempt: 2 });
          const page = await target.list({ statuses: ['succeeded'], limit: 10, order: 'asc' });
          expect(page.jobs.map((job) => job.id)).toContain(running.id);
          const expired = { ...exported[0]!, id: newJobId(Date.now()), expiresAt: Date.now() - 1 };
          expect(await target.importJob(expired, [], Date.now())).toBe('expired');
        } finally {
          await target.close();
        }
      });
    });

    describe('result reuse', () => {
      const reuse = (digest: string, ttlMs = 60_000, mode: 'reuse' | 'refresh' = 'reuse') => ({ digest, ttlMs, mode });
      const digest = () => `d${seq++}-${Date.now()}`;

      it('answers a match with a job that succeeded within the TTL by a new job already succeeded', async () => {
        const key = digest();
        const leader = await store.create(newJob({ cache: reuse(key) }));
        expect(leader.cachedFrom).toBeNull();
        const running = await claimOne();
        await store.finish(lease(running), { kind: 'succeeded', result: { answer: 42 } }, Date.now());
        const hit = await store.create(newJob({ cache: reuse(key) }));
        expect(hit).toMatchObject({
          status: 'succeeded',
          cachedFrom: leader.id,
          result: { answer: 42 },
          attempt: 0,
          version: 2,
        });
        expect(hit.completedAt).not.toBeNull();
        expect(hit.progress.percent).toBe(100);
        expect(await store.get(hit.id)).toMatchObject({
          status: 'succeeded',
          cachedFrom: leader.id,
          result: { answer: 42 },
        });
        expect(await store.claim(claimRequest())).toEqual([]);
        const page = await store.list({ statuses: ['succeeded'], limit: 10, order: 'asc' });
        expect(page.jobs.map((job) => job.id)).toEqual([leader.id, hit.id]);
      });

      it('does not reuse a result older than the TTL, nor when asked to refresh, nor for another digest', async () => {
        const key = digest();
        await store.create(newJob({ cache: reuse(key, 1000) }));
        const running = await claimOne();
        await store.finish(lease(running), { kind: 'succeeded', result: 1 }, Date.now());
        const completedAt = (await store.get(running.id))!.completedAt!;
        const late = await store.create(
          newJob({ cache: reuse(key, 1000), createdAt: completedAt + 1001, runAt: completedAt + 1001 }),
        );
        expect(late).toMatchObject({ status: 'queued', cachedFrom: null });
        const refreshed = await store.create(newJob({ cache: reuse(digest(), 60_000, 'refresh') }));
        expect(refreshed).toMatchObject({ status: 'queued', cachedFrom: null });
        const other = await store.create(newJob({ cache: reuse(digest()) }));
        expect(other.cachedFrom).toBeNull();
      });

      it('makes a match with a queued or running job follow it, and finish with its result without running', async () => {
        const key = digest();
        const leader = await store.create(newJob({ cache: reuse(key) }));
        const follower = await store.create(newJob({ cache: reuse(key) }));
        expect(follower).toMatchObject({ status: 'queued', cachedFrom: leader.id });
        const claimed = await store.claim(claimRequest());
        expect(claimed.map((job) => job.id)).toEqual([leader.id]);
        const late = await store.create(newJob({ cache: reuse(key) }));
        expect(late.cachedFrom).toBe(leader.id); // a running leader is followed too
        await store.finish(lease(claimed[0]!), { kind: 'succeeded', result: 'done' }, Date.now());
        for (const id of [follower.id, late.id]) {
          expect(await store.get(id)).toMatchObject({
            status: 'succeeded',
            result: 'done',
            cachedFrom: leader.id,
            attempt: 0,
          });
        }
        expect(await store.claim(claimRequest())).toEqual([]);
      });

      it('fails followers with the error of a leader that failed, and lets the next submit run', async () => {
        const key = digest();
        await store.create(newJob({ cache: reuse(key), maxAttempts: 1 }));
        const follower = await store.create(newJob({ cache: reuse(key) }));
        const leader = await claimOne();
        const error = { code: 'boom', message: 'upstream said no', retryable: false };
        await store.finish(lease(leader), { kind: 'failed', error }, Date.now());
        expect(await store.get(follower.id)).toMatchObject({ status: 'failed', error, cachedFrom: leader.id });
        const next = await store.create(newJob({ cache: reuse(key) }));
        expect(next).toMatchObject({ status: 'queued', cachedFrom: null });
        expect((await claimOne()).id).toBe(next.id);
      });

      it('runs the followers of a leader that was canceled or deleted on their own', async () => {
        for (const end of ['cancel', 'delete'] as const) {
          const key = digest();
          const leader = await store.create(newJob({ cache: reuse(key) }));
          const follower = await store.create(newJob({ cache: reuse(key) }));
          if (end === 'cancel') await store.cancel(leader.id, Date.now());
          else await store.delete(leader.id);
          const freed = await store.get(follower.id);
          expect(freed).toMatchObject({ status: 'queued', cachedFrom: null });
          expect(freed!.version).toBeGreaterThan(follower.version);
          expect((await claimOne()).id).toBe(follower.id);
        }
      });
    });

    describe('webhook deliveries', () => {
      const hook = (events: WebhookEvent[]): NewJob['webhook'] => ({ url: 'https://hooks.example.com/in', events });
      const state = (
        delivery: WebhookDelivery,
        overrides: Partial<WebhookDeliveryState> = {},
      ): WebhookDeliveryState => ({
        id: delivery.id,
        event: delivery.event,
        status: 'delivered',
        attempts: delivery.attempts + 1,
        at: Date.now(),
        responseStatus: 204,
        error: null,
        nextAttemptAt: null,
        ...overrides,
      });

      it('queues one delivery per event the webhook asks for, carrying the job as it was then', async () => {
        const created = await store.create(newJob({ webhook: hook(['job.started', 'job.succeeded']) }));
        expect(created.webhook).toEqual(hook(['job.started', 'job.succeeded']));
        expect((await store.get(created.id))!.webhook).toEqual(hook(['job.started', 'job.succeeded']));
        await store.create(newJob()); // no webhook: no deliveries
        expect((await store.claimWebhookDeliveries(Date.now(), 10, 30_000)).deliveries).toEqual([]);
        const claimed = await store.claim(claimRequest({ max: 2 }));
        expect(claimed).toHaveLength(2);
        const running = claimed.find((job) => job.id === created.id)!;
        const [started] = (await store.claimWebhookDeliveries(Date.now(), 10, 30_000)).deliveries;
        expect(started).toMatchObject({
          id: `${running.id}:${running.version}`,
          jobId: running.id,
          event: 'job.started',
          url: 'https://hooks.example.com/in',
          attempts: 0,
        });
        expect(started!.job).toMatchObject({ id: running.id, status: 'running', attempt: 1, version: running.version });
        await store.settleWebhookDelivery(started!, state(started!), Date.now());
        const finished = await store.finish(lease(running), { kind: 'succeeded', result: { ok: 1 } }, Date.now());
        const { deliveries } = await store.claimWebhookDeliveries(Date.now(), 10, 30_000);
        expect(deliveries.map((d) => d.event)).toEqual(['job.succeeded']);
        expect(deliveries[0]!.job).toMatchObject({ status: 'succeeded', result: { ok: 1 } });
        expect(deliveries[0]!.id).toBe(`${running.id}:${(finished as { version: number }).version}`);
      });

      it('queues the terminal event of a job canceled while queued, and not the ones not asked for', async () => {
        const job = await store.create(newJob({ webhook: hook(['job.canceled']) }));
        await store.cancel(job.id, Date.now());
        const { deliveries } = await store.claimWebhookDeliveries(Date.now(), 10, 30_000);
        expect(deliveries.map((d) => [d.jobId, d.event])).toEqual([[job.id, 'job.canceled']]);
        const other = await store.create(newJob({ webhook: hook(['job.succeeded']) }));
        await store.cancel(other.id, Date.now());
        expect((await store.claimWebhookDeliveries(Date.now(), 10, 30_000)).deliveries).toEqual([]);
      });

      it('sends job.progress at most once per 5 s', async () => {
        await store.create(newJob({ webhook: hook(['job.progress']) }));
        const job = await claimOne();
        const now = Date.now();
        await store.reportProgress(lease(job), { percent: 10, step: null, message: null }, now);
        await store.reportProgress(lease(job), { percent: 20, step: null, message: null }, now + 1000);
        await store.reportProgress(lease(job), { percent: 30, step: null, message: null }, now + 5000);
        const { deliveries } = await store.claimWebhookDeliveries(now + 6000, 10, 30_000);
        expect(deliveries.map((d) => d.job.progress.percent)).toEqual([10, 30]);
      });

      it('leases a handed-out delivery, and hands it out again once the lease lapsed', async () => {
        const job = await store.create(newJob({ webhook: hook(['job.canceled']) }));
        await store.cancel(job.id, Date.now());
        const now = Date.now();
        const first = await store.claimWebhookDeliveries(now, 10, 5000);
        expect(first.deliveries).toHaveLength(1);
        const second = await store.claimWebhookDeliveries(now + 10, 10, 5000);
        expect(second.deliveries).toEqual([]);
        expect(second.nextDueAt).toBe(now + 5000);
        const third = await store.claimWebhookDeliveries(now + 5001, 10, 5000);
        expect(third.deliveries.map((d) => d.id)).toEqual([first.deliveries[0]!.id]);
      });

      it('schedules a retry, and shows each attempt on the job as a change', async () => {
        const job = await store.create(newJob({ webhook: hook(['job.canceled']) }));
        await store.cancel(job.id, Date.now());
        const now = Date.now();
        const [delivery] = (await store.claimWebhookDeliveries(now, 10, 30_000)).deliveries;
        const before = (await store.get(job.id))!;
        const retrying = state(delivery!, {
          status: 'retrying',
          responseStatus: 500,
          error: 'the receiver answered 500',
          nextAttemptAt: now + 2000,
        });
        await store.settleWebhookDelivery(delivery!, retrying, now);
        const after = (await store.get(job.id))!;
        expect(after.webhookDelivery).toEqual(retrying);
        expect(after.version).toBe(before.version + 1);
        expect(after.status).toBe('canceled');
        expect(after.expiresAt).toBe(before.expiresAt);
        expect((await store.claimWebhookDeliveries(now + 1000, 10, 30_000)).deliveries).toEqual([]);
        const [again] = (await store.claimWebhookDeliveries(now + 2000, 10, 30_000)).deliveries;
        expect(again).toMatchObject({ id: delivery!.id, attempts: 1 });
        await store.settleWebhookDelivery(again!, state(again!), now + 2100);
        expect((await store.get(job.id))!.webhookDelivery).toMatchObject({ status: 'delivered', attempts: 2 });
        const rest = await store.claimWebhookDeliveries(now + 100_000, 10, 30_000);
        expect(rest).toEqual({ deliveries: [], nextDueAt: null });
      });

      it('keeps a delivery of a job deleted since', async () => {
        const job = await store.create(newJob({ webhook: hook(['job.canceled']) }));
        await store.cancel(job.id, Date.now());
        await store.delete(job.id);
        const [delivery] = (await store.claimWebhookDeliveries(Date.now(), 10, 30_000)).deliveries;
        expect(delivery).toMatchObject({ jobId: job.id, event: 'job.canceled' });
        await store.settleWebhookDelivery(delivery!, state(delivery!), Date.now());
        expect(await store.get(job.id)).toBeUndefined();
      });

      it('signals when a delivery is queued', async () => {
        const events: StoreEvent[] = [];
        await store.subscribe((event) => events.push(event));
        const job = await store.create(newJob({ webhook: hook(['job.canceled']) }));
        await store.cancel(job.id, Date.now());
        await expect.poll(() => events.some((event) => event.kind === 'webhook'), { timeout: 2000 }).toBe(true);
      });
    });
  });
}
