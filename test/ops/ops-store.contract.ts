import { afterEach, describe, expect, it } from 'vitest';
import {
  AUDIT_LOG_CAP,
  type AuditEntry,
  type ControlMessage,
  type DeclaredTypeDef,
  type FinishedSample,
  type OpsStore,
  type WorkerRecord,
} from '../../src/ops/ops-store.js';

export interface OpsStoreUnderTest {
  ops: OpsStore;
  /** Closes the store and whatever the factory opened for it. */
  close(): Promise<void>;
}

export type OpsStoreFactory = (options: { beatIntervalMs?: number }) => Promise<OpsStoreUnderTest>;

export function workerRecord(overrides: Partial<WorkerRecord> = {}): WorkerRecord {
  const now = Date.now();
  return {
    id: 'w-1',
    host: 'host-a',
    pid: 4242,
    version: '0.1.0',
    role: 'all',
    started_at: now - 60_000,
    beat_at: now,
    types: ['echo', 'sleep'],
    slots_total: 10,
    slots_busy: 2,
    job_ids: ['01JD3M5W6SX1T4KQ8V0ZC2N7GH'],
    leases_lost: 0,
    draining: false,
    ...overrides,
  };
}

/** Within ~9 %: what log-scale bins promise. */
const near = (value: number | undefined, expected: number) => {
  expect(value).toBeDefined();
  expect(Math.abs(value! - expected) / expected).toBeLessThanOrEqual(0.1);
};

/** The behaviour every OpsStore must have; run against each implementation. */
export function describeOpsStoreContract(name: string, factory: OpsStoreFactory): void {
  describe(`OpsStore contract: ${name}`, () => {
    const opened: OpsStoreUnderTest[] = [];
    afterEach(async () => {
      for (const each of opened.splice(0)) await each.close();
    });
    const open = async (options: { beatIntervalMs?: number } = {}) => {
      const under = await factory(options);
      opened.push(under);
      return under.ops;
    };

    describe('bulk snapshots', () => {
      it('gives an unguessable token, and a snapshot can be taken once only', async () => {
        const ops = await open();
        const snapshot = { action: 'retry' as const, ids: ['a', 'b'], filter: { status: ['failed'] }, by: 'key1' };
        const token = await ops.saveSnapshot(snapshot, 60_000);
        const other = await ops.saveSnapshot(snapshot, 60_000);
        expect(token).toMatch(/^[A-Za-z0-9_-]{22,}$/);
        expect(other).not.toBe(token);
        expect(await ops.takeSnapshot(token)).toEqual(snapshot);
        expect(await ops.takeSnapshot(token)).toBeUndefined();
        expect(await ops.takeSnapshot(other)).toEqual(snapshot);
        expect(await ops.takeSnapshot('no-such-token-0123456789')).toBeUndefined();
        expect(await ops.takeSnapshot('')).toBeUndefined();
      });

      it('hands a snapshot to one of several concurrent takers only', async () => {
        const ops = await open();
        const token = await ops.saveSnapshot({ action: 'cancel', ids: ['a'], by: 'k' }, 60_000);
        const taken = await Promise.all(Array.from({ length: 5 }, () => ops.takeSnapshot(token)));
        expect(taken.filter((each) => each !== undefined)).toHaveLength(1);
      });

      it('forgets a snapshot after its TTL', async () => {
        const ops = await open();
        const token = await ops.saveSnapshot({ action: 'delete', ids: ['a'], by: 'k' }, 50);
        // A fixed wait past the TTL: the point is that time passed, and polling takeSnapshot would consume the snapshot.
        await new Promise((resolve) => setTimeout(resolve, 120));
        expect(await ops.takeSnapshot(token)).toBeUndefined();
      });
    });

    describe('type pauses', () => {
      it('records who paused a type, why and when, until it is resumed; listeners hear every change', async () => {
        const ops = await open();
        const heard: ControlMessage[] = [];
        const stop = await ops.subscribeControl((message) => heard.push(message));
        expect(await ops.pausedTypes()).toEqual({});
        const pause = { by: 'abcd1234', reason: 'downstream outage', at: 1_700_000_000_000 };
        await ops.pauseType('sleep', pause);
        await ops.pauseType('echo', { ...pause, reason: 'noisy' });
        expect(await ops.pausedTypes()).toEqual({ sleep: pause, echo: { ...pause, reason: 'noisy' } });
        expect(await ops.resumeType('echo')).toBe(true);
        expect(await ops.resumeType('echo')).toBe(false);
        expect(await ops.pausedTypes()).toEqual({ sleep: pause });
        await expect.poll(() => heard.length, { timeout: 3000 }).toBe(4);
        expect(heard).toEqual([
          { kind: 'pause', type: 'sleep', pause },
          { kind: 'pause', type: 'echo', pause: { ...pause, reason: 'noisy' } },
          { kind: 'resume', type: 'echo' },
          { kind: 'resume', type: 'echo' },
        ]);
        // Once stopped, a listener hears nothing more. Another listener, still subscribed, is the barrier: when it
        // has heard the next message, the stopped one would have too (no fixed wait that a slow machine outlasts).
        const other: ControlMessage[] = [];
        const stopOther = await ops.subscribeControl((message) => other.push(message));
        stop();
        await ops.resumeType('sleep');
        await expect.poll(() => other.length, { timeout: 3000 }).toBe(1);
        expect(other).toEqual([{ kind: 'resume', type: 'sleep' }]);
        expect(heard).toHaveLength(4);
        stopOther();
      });
    });

    describe('declared job types', () => {
      const declaration = (type: string, overrides: Partial<DeclaredTypeDef> = {}): DeclaredTypeDef => ({
        type,
        input_schema: {
          type: 'object',
          properties: { url: { type: 'string' }, tags: { type: 'array', items: {}, maxItems: 0 } },
          required: [],
        },
        description: 'renders a report',
        timeout_s: 120,
        max_attempts: 5,
        max_concurrency: null,
        rate: { max: 10, per_s: 1.5 },
        lease_s: null,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
        ...overrides,
      });

      it('keeps declarations as given (empty arrays too), replaces them keeping created_at, removes them; listeners hear every change', async () => {
        const ops = await open();
        const heard: ControlMessage[] = [];
        const stop = await ops.subscribeControl((message) => heard.push(message));
        expect(await ops.declaredTypes()).toEqual([]);
        expect(await ops.declareType(declaration('report'))).toEqual({ def: declaration('report'), created: true });
        expect(await ops.declareType(declaration('deep.research'))).toMatchObject({ created: true });
        const replacement = declaration('report', {
          description: null,
          rate: null,
          input_schema: {},
          created_at: 1_800_000_000_000,
          updated_at: 1_800_000_000_000,
        });
        const replaced = await ops.declareType(replacement);
        expect(replaced).toEqual({ def: { ...replacement, created_at: 1_700_000_000_000 }, created: false });
        expect(await ops.declaredTypes()).toEqual([declaration('deep.research'), replaced.def]);
        expect(await ops.removeDeclaredType('report')).toBe(true);
        expect(await ops.removeDeclaredType('report')).toBe(false);
        expect(await ops.declaredTypes()).toEqual([declaration('deep.research')]);
        await expect.poll(() => heard.length, { timeout: 3000 }).toBe(5);
        expect(heard).toEqual(Array.from({ length: 5 }, () => ({ kind: 'types' })));
        stop();
      });

      it('hands out copies: changing what it answered changes nothing stored', async () => {
        const ops = await open();
        const { def } = await ops.declareType(declaration('report'));
        def.input_schema.type = 'array';
        const [listed] = await ops.declaredTypes();
        listed!.rate!.max = 99;
        expect(await ops.declaredTypes()).toEqual([declaration('report')]);
      });
    });

    describe('worker registry', () => {
      it('rates workers live, stale or dead by their last beat, and drops long-dead ones', async () => {
        const ops = await open({ beatIntervalMs: 1000 });
        const now = Date.now();
        const live = workerRecord({ id: 'live', beat_at: now - 2500 });
        await ops.beat(live);
        await ops.beat(workerRecord({ id: 'stale', beat_at: now - 3500 }));
        await ops.beat(workerRecord({ id: 'stale-late', beat_at: now - 299_000 }));
        await ops.beat(workerRecord({ id: 'dead', beat_at: now - 301_000 }));
        await ops.beat(workerRecord({ id: 'gone', beat_at: now - 3_700_000 }));
        const listed = await ops.workers(now);
        expect(listed.map((worker) => [worker.id, worker.state])).toEqual([
          ['dead', 'dead'],
          ['live', 'live'],
          ['stale', 'stale'],
          ['stale-late', 'stale'],
        ]);
        expect(listed.find((worker) => worker.id === 'live')).toEqual({ ...live, state: 'live' });
        // The pruned record is gone for good, not only hidden.
        expect(await ops.setDraining('gone', true)).toBe(false);
      });

      it('defaults to a 10 s beat: live for 30 s', async () => {
        const ops = await open();
        const now = Date.now();
        await ops.beat(workerRecord({ id: 'a', beat_at: now - 29_000 }));
        await ops.beat(workerRecord({ id: 'b', beat_at: now - 31_000 }));
        expect((await ops.workers(now)).map((worker) => worker.state)).toEqual(['live', 'stale']);
      });

      it('a beat replaces the record but never undoes an operator drain; drains are announced', async () => {
        const ops = await open();
        const heard: ControlMessage[] = [];
        await ops.subscribeControl((message) => heard.push(message));
        expect(await ops.setDraining('unknown', true)).toBe(false);
        await ops.beat(workerRecord({ id: 'w-1', slots_busy: 1 }));
        expect(await ops.isDraining('w-1')).toBe(false);
        expect(await ops.setDraining('w-1', true)).toBe(true);
        await ops.beat(workerRecord({ id: 'w-1', slots_busy: 5, draining: false }));
        expect(await ops.isDraining('w-1')).toBe(true);
        const [listed] = await ops.workers(Date.now());
        expect(listed).toMatchObject({ id: 'w-1', slots_busy: 5, draining: true, state: 'live' });
        expect(await ops.setDraining('w-1', false)).toBe(true);
        expect(await ops.isDraining('w-1')).toBe(false);
        expect((await ops.workers(Date.now()))[0]!.draining).toBe(false);
        // The pool's own view (shutting down) shows too.
        await ops.beat(workerRecord({ id: 'w-1', draining: true }));
        expect((await ops.workers(Date.now()))[0]!.draining).toBe(true);
        await expect.poll(() => heard.length, { timeout: 3000 }).toBe(2);
        expect(heard).toEqual([
          { kind: 'drain', workerId: 'w-1', draining: true },
          { kind: 'drain', workerId: 'w-1', draining: false },
        ]);
      });

      it('reads one worker as listed, rates a remote worker by its own heartbeat, and forgets a worker with its drain', async () => {
        const ops = await open({ beatIntervalMs: 10_000 });
        const now = Date.now();
        const remote = workerRecord({
          id: 'r-1',
          kind: 'remote',
          name: 'py',
          labels: { host: 'gpu' },
          key_name: 'fleet',
          lease_s: 3,
          heartbeat_s: 1,
          lease_ids: ['J.L'],
          beat_at: now - 3500,
        });
        await ops.beat(remote);
        expect(await ops.worker('unknown', now)).toBeUndefined();
        // Silent for longer than 3 heartbeats (about its lease): no longer live, though the pools' beat is 10 s.
        expect(await ops.worker('r-1', now)).toEqual({ ...remote, state: 'stale' });
        expect(await ops.worker('r-1', now - 1000)).toMatchObject({ state: 'live' });
        expect(await ops.setDraining('r-1', true)).toBe(true);
        expect(await ops.worker('r-1', now)).toMatchObject({ draining: true });
        expect(await ops.removeWorker('r-1')).toBe(true);
        expect(await ops.removeWorker('r-1')).toBe(false);
        expect(await ops.worker('r-1', now)).toBeUndefined();
        expect(await ops.isDraining('r-1')).toBe(false);
        expect(await ops.workers(now)).toEqual([]);
      });

      it("records a remote worker's calls atomically: concurrent claims and settles all count; none revives a removed worker", async () => {
        const ops = await open();
        const now = Date.now();
        await ops.beat(
          workerRecord({
            id: 'r-2',
            kind: 'remote',
            key_name: 'fleet',
            lease_ids: ['A.1'],
            job_ids: ['A'],
            slots_total: 100,
            slots_busy: 1,
            beat_at: now - 5000,
          }),
        );
        // 40 claims of one lease each and the settle of the first lease, all at once (as two instances may see them).
        await Promise.all([
          ...Array.from({ length: 40 }, (_, i) =>
            ops.recordWorkerCall('r-2', { add: [{ leaseId: `J${i}.x`, jobId: `J${i}` }] }, now),
          ),
          ops.recordWorkerCall('r-2', { remove: ['A.1'], lost: 1 }, now),
        ]);
        const after = (await ops.worker('r-2', now))!;
        expect(after.lease_ids?.slice().sort()).toEqual(Array.from({ length: 40 }, (_, i) => `J${i}.x`).sort());
        expect(after.job_ids.slice().sort()).toEqual(Array.from({ length: 40 }, (_, i) => `J${i}`).sort());
        expect(after).toMatchObject({ slots_busy: 40, leases_lost: 1, beat_at: now, state: 'live' });
        // A heartbeat states every lease held.
        expect(
          await ops.recordWorkerCall('r-2', { replace: [{ leaseId: 'J1.x', jobId: 'J1' }] }, now + 1),
        ).toMatchObject({ lease_ids: ['J1.x'], job_ids: ['J1'], slots_busy: 1 });
        expect(await ops.removeWorker('r-2')).toBe(true);
        expect(await ops.recordWorkerCall('r-2', { add: [{ leaseId: 'K.x', jobId: 'K' }] }, now + 2)).toBeUndefined();
        expect(await ops.worker('r-2', now + 2)).toBeUndefined();
      });
    });

    describe('audit log', () => {
      const entry = (i: number): AuditEntry => ({
        at: 1_700_000_000_000 + i,
        actor: { key_id: 'abcd1234', role: 'operator' },
        action: 'bulk.retry',
        target: `target-${i}`,
        count: i,
        ...(i % 2 === 0 ? { detail: { skipped: 1, nested: { ok: true } } } : {}),
      });

      it('lists entries newest first, paged by cursor', async () => {
        const ops = await open();
        expect(await ops.auditLog({ limit: 10 })).toEqual({ entries: [], next_cursor: null });
        for (let i = 1; i <= 5; i++) await ops.audit(entry(i));
        const first = await ops.auditLog({ limit: 2 });
        expect(first.entries.map((each) => each.target)).toEqual(['target-5', 'target-4']);
        expect(first.entries[1]).toEqual({ ...entry(4), id: first.entries[1]!.id });
        expect(first.entries[1]!.id).toMatch(/^\d+$/);
        expect(first.next_cursor).toBe(first.entries[1]!.id);
        const second = await ops.auditLog({ limit: 2, before: first.next_cursor! });
        expect(second.entries.map((each) => each.target)).toEqual(['target-3', 'target-2']);
        const third = await ops.auditLog({ limit: 2, before: second.next_cursor! });
        expect(third.entries.map((each) => each.target)).toEqual(['target-1']);
        expect(third.next_cursor).toBeNull();
        // Entries added meanwhile do not shift the pages already handed out.
        await ops.audit(entry(6));
        expect(
          (await ops.auditLog({ limit: 2, before: first.next_cursor! })).entries.map((each) => each.target),
        ).toEqual(['target-3', 'target-2']);
      });

      it(`keeps only the newest ${AUDIT_LOG_CAP} entries`, async () => {
        const ops = await open();
        const total = AUDIT_LOG_CAP + 5;
        for (let start = 0; start < total; start += 500) {
          await Promise.all(
            Array.from({ length: Math.min(500, total - start) }, (_, i) =>
              ops.audit({ ...entry(start + i), detail: undefined }),
            ),
          );
        }
        let kept = 0;
        let cursor: string | undefined;
        let oldest: number | undefined;
        for (;;) {
          const page = await ops.auditLog({ limit: 1000, ...(cursor ? { before: cursor } : {}) });
          kept += page.entries.length;
          oldest = page.entries[page.entries.length - 1]?.count ?? oldest;
          if (page.next_cursor === null) break;
          cursor = page.next_cursor;
        }
        expect(kept).toBe(AUDIT_LOG_CAP);
        expect(oldest).toBe(5);
      }, 60_000);
    });

    describe('stats history', () => {
      const sample = (overrides: Partial<FinishedSample>): FinishedSample => ({
        type: 'echo',
        status: 'succeeded',
        waitMs: 10,
        runMs: 100,
        at: Date.now(),
        ...overrides,
      });

      it('counts finished jobs per type and bucket, with wait and run percentiles, in every window', async () => {
        const ops = await open();
        const now = Date.now();
        const samples: FinishedSample[] = [
          ...Array.from({ length: 98 }, () => sample({ at: now, runMs: 100, waitMs: 20 })),
          sample({ at: now, status: 'failed', runMs: 1000, waitMs: 20 }),
          sample({ at: now, status: 'failed', runMs: 5000, waitMs: 2000 }),
          sample({ at: now, status: 'canceled', runMs: null, waitMs: null }),
          sample({ at: now, type: 'sleep', runMs: 0, waitMs: 0 }),
        ];
        await ops.recordFinished(samples);
        await ops.recordFinished([]);
        await ops.recordDepth(now - 1, { echo: 7, sleep: 0 });
        await ops.recordDepth(now, { echo: 3 });

        const hour = await ops.history('1h', now);
        expect(hour.window).toBe('1h');
        expect(hour.bucket_ms).toBe(60_000);
        expect(hour.buckets).toHaveLength(60);
        expect(hour.to - hour.from).toBe(3_600_000);
        expect(hour.buckets[0]!.at).toBe(hour.from);
        const last = hour.buckets[59]!;
        expect(last.at).toBe(Math.floor(now / 60_000) * 60_000);
        expect(hour.buckets.slice(0, 59).every((bucket) => Object.keys(bucket.types).length === 0)).toBe(true);
        const echo = last.types.echo!;
        expect(echo).toMatchObject({ succeeded: 98, failed: 2, canceled: 1, finished: 101, depth: 3 });
        expect(echo.run_ms!.count).toBe(100);
        near(echo.run_ms!.p50, 100);
        near(echo.run_ms!.p95, 100);
        near(echo.run_ms!.p99, 1000);
        expect(echo.wait_ms!.count).toBe(100);
        near(echo.wait_ms!.p50, 20);
        near(echo.wait_ms!.p99, 20);
        expect(last.types.sleep).toMatchObject({ succeeded: 1, failed: 0, canceled: 0, finished: 1, depth: 0 });
        expect(last.types.sleep!.run_ms!.p50).toBeLessThan(1);

        const day = await ops.history('24h', now);
        expect(day.bucket_ms).toBe(600_000);
        expect(day.buckets).toHaveLength(144);
        expect(day.buckets[143]!.types.echo).toMatchObject({ finished: 101, depth: 3 });
        const week = await ops.history('7d', now);
        expect(week.bucket_ms).toBe(3_600_000);
        expect(week.buckets).toHaveLength(168);
        expect(week.buckets[167]!.types.echo).toMatchObject({ succeeded: 98, failed: 2, canceled: 1 });
        near(week.buckets[167]!.types.echo!.run_ms!.p50, 100);
      });

      it('puts each sample in the bucket of its time and adds batches up', async () => {
        const ops = await open();
        const now = Date.now();
        await ops.recordFinished([
          sample({ at: now - 30 * 60_000 }),
          sample({ at: now - 3 * 3_600_000, status: 'failed' }),
        ]);
        await ops.recordFinished([sample({ at: now - 30 * 60_000, runMs: 300 })]);
        const hour = await ops.history('1h', now);
        const withData = hour.buckets.filter((bucket) => Object.keys(bucket.types).length > 0);
        expect(withData).toHaveLength(1);
        expect(withData[0]!.at).toBe(Math.floor((now - 30 * 60_000) / 60_000) * 60_000);
        expect(withData[0]!.types.echo).toMatchObject({ succeeded: 2, finished: 2 });
        expect(withData[0]!.types.echo!.run_ms!.count).toBe(2);
        // 3 h ago: outside the hour, inside the day.
        const day = await ops.history('24h', now);
        const failed = day.buckets.filter((bucket) => (bucket.types.echo?.failed ?? 0) > 0);
        expect(failed).toHaveLength(1);
        expect(failed[0]!.at).toBe(Math.floor((now - 3 * 3_600_000) / 600_000) * 600_000);
        expect(day.buckets.reduce((total, bucket) => total + (bucket.types.echo?.finished ?? 0), 0)).toBe(3);
      });
    });
  });
}
