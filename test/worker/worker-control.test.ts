import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import { builtInHandlers, HandlerRegistry } from '../../src/handlers/registry.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { fanOut, WorkerControl } from '../../src/worker/worker-control.js';
import { WorkerPool } from '../../src/worker/worker-pool.js';
import { waitFor } from '../helpers/wait-for.js';

/* A worker pool under operators' control: pauses, drains, the registry and the stats history. */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A memory ops store that counts the worker control's re-reads of pauses and drains (one per beat, and after a control message). */
class RereadCountingOpsStore extends MemoryOpsStore {
  rereads = 0;
  override async isDraining(id: string): Promise<boolean> {
    const draining = await super.isDraining(id);
    this.rereads++;
    return draining;
  }
}

async function setUp() {
  const store = new MemoryJobStore({ jobTtlMs: 60_000 });
  const ops = new RereadCountingOpsStore({ beatIntervalMs: 50 });
  const observers: WorkerControl[] = [];
  const pool = new WorkerPool({
    store,
    handlers: new HandlerRegistry(builtInHandlers),
    log: pino({ level: 'silent' }),
    concurrency: 2,
    leaseMs: 5000,
    backoff: { baseMs: 10, maxMs: 20 },
    observer: fanOut(observers),
  });
  const control = new WorkerControl({
    ops,
    store,
    pool,
    log: pino({ level: 'silent' }),
    version: '9.9.9',
    role: 'all',
    beatIntervalMs: 50,
    depthIntervalMs: 50,
  });
  observers.push(control);
  await pool.start();
  await control.start();
  cleanups.push(async () => {
    await pool.drain(1000);
    await control.stop();
    await store.close();
  });
  return { store, ops, pool, control };
}

const submit = async (store: JobStore, type: string, input: unknown) => {
  const now = Date.now();
  return store.create({
    id: newJobId(now),
    type,
    tenant: '-',
    input,
    metadata: {},
    priority: 0,
    maxAttempts: 1,
    timeoutS: null,
    createdAt: now,
    runAt: now,
  });
};

const statusOf = async (store: JobStore, id: string) => (await store.get(id))!.status;

/** Waits until the worker control has re-read the pauses and drains once more (and applied them to the pool). */
async function controlReread(ops: RereadCountingOpsStore): Promise<void> {
  const before = ops.rereads;
  await waitFor(() => ops.rereads > before, {
    timeoutMs: 3000,
    what: 'the worker control to re-read pauses and drains',
  });
}

/** A memory ops store that counts registry writes. */
class CountingOpsStore extends MemoryOpsStore {
  beats = 0;
  override async beat(record: Parameters<MemoryOpsStore['beat']>[0]): Promise<void> {
    this.beats++;
    await super.beat(record);
  }
}

describe('worker control', () => {
  it('claims nothing of a paused type until it is resumed, while other types run', async () => {
    const { store, ops } = await setUp();
    await ops.pauseType('echo', { by: 'test', reason: 'upstream down', at: Date.now() });
    await expect.poll(async () => (await ops.workers(Date.now())).length).toBe(1);
    const echo = await submit(store, 'echo', { value: 1 });
    const sleep = await submit(store, 'sleep', { ms: 1 });
    await expect.poll(() => statusOf(store, sleep.id)).toBe('succeeded');
    // The pool had its chances: the claim that took `sleep` (queued after `echo`) left `echo`, and the control re-read
    // the pauses since (a lifted pause would wake the pool, which claims at once from the memory store).
    await controlReread(ops);
    expect(await statusOf(store, echo.id)).toBe('queued');
    await ops.resumeType('echo');
    await expect.poll(() => statusOf(store, echo.id)).toBe('succeeded');
  });

  it('claims nothing while an operator drained the worker, and shows it draining in the registry', async () => {
    const { store, ops, pool } = await setUp();
    await expect.poll(async () => (await ops.workers(Date.now())).map((worker) => worker.id)).toEqual([pool.workerId]);
    expect(await ops.setDraining(pool.workerId, true)).toBe(true);
    await expect.poll(async () => (await ops.workers(Date.now()))[0]!.draining).toBe(true);
    const job = await submit(store, 'echo', { value: 2 });
    // The pool had its chances: it heard of the job (the memory store tells its listeners before create() returns), and
    // the control re-read the drains since (a lifted drain would wake the pool, which claims at once from the memory store).
    await controlReread(ops);
    expect(await statusOf(store, job.id)).toBe('queued');
    await ops.setDraining(pool.workerId, false);
    await expect.poll(() => statusOf(store, job.id)).toBe('succeeded');
  });

  it('beats what it runs into the registry and feeds the stats history', async () => {
    const { store, ops, pool } = await setUp();
    const job = await submit(store, 'sleep', { ms: 400 });
    await expect.poll(async () => (await ops.workers(Date.now()))[0]?.job_ids).toEqual([job.id]);
    const [worker] = await ops.workers(Date.now());
    expect(worker).toMatchObject({
      id: pool.workerId,
      version: '9.9.9',
      role: 'all',
      slots_total: 2,
      slots_busy: 1,
      state: 'live',
      pid: process.pid,
    });
    expect(worker!.types).toEqual(expect.arrayContaining(['echo', 'sleep']));
    await expect.poll(() => statusOf(store, job.id), { timeout: 5000 }).toBe('succeeded');
    await expect
      .poll(async () => {
        const history = await ops.history('1h', Date.now());
        return history.buckets.reduce((sum, bucket) => sum + (bucket.types.sleep?.succeeded ?? 0), 0);
      })
      .toBe(1);
    const history = await ops.history('1h', Date.now());
    const sleep = history.buckets.find((bucket) => bucket.types.sleep?.succeeded)!.types.sleep!;
    expect(sleep.run_ms!.p50).toBeGreaterThanOrEqual(300);
  });

  it('coalesces registry writes: a few a second however many jobs start and end', async () => {
    const store = new MemoryJobStore({ jobTtlMs: 60_000 });
    const ops = new CountingOpsStore();
    const pool = new WorkerPool({
      store,
      handlers: new HandlerRegistry(builtInHandlers),
      log: pino({ level: 'silent' }),
      concurrency: 10,
      leaseMs: 5000,
      backoff: { baseMs: 10, maxMs: 20 },
    });
    // The default beat (10 s) and write gap (250 ms).
    const control = new WorkerControl({
      ops,
      store,
      pool,
      log: pino({ level: 'silent' }),
      version: '9.9.9',
      role: 'all',
    });
    await pool.start();
    await control.start();
    cleanups.push(async () => {
      await pool.drain(1000);
      await control.stop();
      await store.close();
    });
    const before = ops.beats;
    const from = Date.now();
    // Keep the pool busy with 2,000 no-op jobs, submitted in batches while it runs them (a fixed count, so the
    // test does not depend on how fast the machine is: the bound below follows the time it took).
    const submitted = 2000;
    for (let batch = 0; batch < submitted / 200; batch++) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => submit(store, 'echo', { value: i })));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await expect.poll(() => pool.counters.succeeded, { timeout: 10_000 }).toBe(submitted);
    const seconds = (Date.now() - from) / 1000;
    const writes = ops.beats - before;
    // At most one write per 250 ms while the work changes, plus the last one after it stopped.
    expect(writes, `${writes} registry writes in ${seconds.toFixed(2)} s for ${submitted} jobs`).toBeLessThanOrEqual(
      Math.ceil(seconds / 0.25) + 2,
    );
    // …and the registry ends up showing the idle pool.
    await expect.poll(async () => (await ops.workers(Date.now()))[0]).toMatchObject({ slots_busy: 0, job_ids: [] });
  });
});
