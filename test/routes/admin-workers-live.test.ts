import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../../src/handlers/handler.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import type { OpsStore } from '../../src/ops/ops-store.js';
import { RedisOpsStore } from '../../src/ops/redis-ops-store.js';
import { healthSchema } from '../../src/routes/schemas.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { WorkerControl } from '../../src/worker/worker-control.js';
import { createJob, harnessScope, waitForStatus } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * The worker registry follows the work: a job shows in its worker's entry of GET /admin/workers (job_ids,
 * slots_busy) within a second of its handler starting, and leaves it within a second of its end, long
 * before the next 10 s beat; /health reports the same busy slots. On the memory and the Redis ops store.
 */

const scope = harnessScope();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await scope.closeAll();
});

/** A handler that runs until the test lets it finish (like an 8 s job, without a fixed sleep). */
function gatedHandler() {
  const gates = new Map<string, { started: number; release: () => void }>();
  const waiting = new Map<string, (started: number) => void>();
  const handler = defineHandler({
    type: 'gate',
    input: z.object({}).strict(),
    async run(_input, ctx) {
      await new Promise<void>((release) => {
        const started = Date.now();
        gates.set(ctx.jobId, { started, release });
        waiting.get(ctx.jobId)?.(started);
      });
      return { ok: true };
    },
  });
  /** Resolves with the time (Date.now()) the job's handler started. */
  const started = (id: string) =>
    new Promise<number>((resolve) => {
      const gate = gates.get(id);
      if (gate) resolve(gate.started);
      else waiting.set(id, resolve);
    });
  /** Lets the job's handler return; answers the time it did. */
  const release = (id: string): number => {
    const at = Date.now();
    gates.get(id)!.release();
    return at;
  };
  return { handler, started, release };
}

interface WorkerItem {
  id: string;
  state: string;
  slots_total: number;
  slots_busy: number;
  job_ids: string[];
  beat_at: string;
}

const workers = async (app: FastifyInstance): Promise<WorkerItem[]> => {
  const response = await app.inject({ method: 'GET', url: '/admin/workers' });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ data: WorkerItem[] }>().data;
};

const health = async (app: FastifyInstance) =>
  healthSchema.parse((await app.inject({ method: 'GET', url: '/health' })).json());

/** Polls GET /admin/workers every 10 ms until `check` holds for this worker's entry; answers the entry and how long it took (ms). */
async function until(
  app: FastifyInstance,
  workerId: string,
  check: (worker: WorkerItem) => boolean,
  deadlineMs = 3000,
): Promise<{ worker: WorkerItem; afterMs: number }> {
  const from = Date.now();
  let last: WorkerItem | undefined;
  try {
    const worker = await waitFor(
      async () => {
        last = (await workers(app)).find((worker) => worker.id === workerId);
        return last && check(last) ? last : undefined;
      },
      { timeoutMs: deadlineMs, intervalMs: 10, what: `the registry entry of ${workerId} to follow` },
    );
    return { worker, afterMs: Date.now() - from };
  } catch (error) {
    throw new Error(`the registry did not follow within ${deadlineMs} ms; last entry: ${JSON.stringify(last)}`, {
      cause: error,
    });
  }
}

const cases: { name: string; open: () => Promise<{ store: JobStore; ops: OpsStore }> }[] = [
  {
    name: 'memory',
    open: async () => ({ store: new MemoryJobStore({ jobTtlMs: 60_000 }), ops: new MemoryOpsStore() }),
  },
  {
    name: 'redis',
    open: async () => {
      const store = await RedisJobStore.connect({
        url: inject('redisUrl'),
        keyPrefix: `t${randomUUID().slice(0, 8)}`,
        jobTtlMs: 60_000,
        connectTimeoutMs: 2000,
        commandTimeoutMs: 1000,
      });
      return { store, ops: new RedisOpsStore(store.redis, store.keys.base) };
    },
  },
];

describe.each(cases)('the worker registry follows the work ($name ops store)', ({ open }) => {
  it('lists a running job within 1 s of its start and drops it within 1 s of its end, as /health does', async () => {
    const { store, ops } = await open();
    const gate = gatedHandler();
    const harness = await scope.open({ workers: true, concurrency: 3, extraHandlers: [gate.handler], store, ops });
    const pool = harness.pool!;
    // The default 10 s beat: only a write on change can show the job in time.
    const control = new WorkerControl({
      ops,
      store,
      pool,
      log: pino({ level: 'silent' }),
      version: '9.9.9',
      role: 'all',
    });
    await control.start();
    cleanups.push(() => control.stop());
    const idle = (await workers(harness.app)).find((worker) => worker.id === pool.workerId)!;
    expect(idle).toMatchObject({ state: 'live', slots_total: 3, slots_busy: 0, job_ids: [] });
    expect((await health(harness.app)).checks.workers).toMatchObject({ concurrency: 3, busy: 0, live: 1 });
    const writesBefore = control.registryWrites;
    const from = Date.now();

    const job = await createJob(harness.app, { type: 'gate', input: {} });
    const startedAt = await gate.started(job.id);
    const shown = await until(harness.app, pool.workerId, (worker) => worker.job_ids.includes(job.id));
    const shownAfter = Date.now() - startedAt;
    expect(shownAfter, `listed ${shownAfter} ms after the handler started`).toBeLessThan(1000);
    expect(shown.worker).toMatchObject({ slots_busy: 1, job_ids: [job.id], state: 'live' });
    expect((await health(harness.app)).checks.workers).toMatchObject({ busy: 1, live: 1 });

    // It stays listed while it runs (more than a second on), not only as a blip: the elapsed time is the point, so a fixed wait.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect((await workers(harness.app)).find((worker) => worker.id === pool.workerId)).toMatchObject({
      slots_busy: 1,
      job_ids: [job.id],
    });
    expect((await health(harness.app)).checks.workers).toMatchObject({ busy: 1 });

    const endedAt = gate.release(job.id);
    const gone = await until(harness.app, pool.workerId, (worker) => !worker.job_ids.includes(job.id));
    const goneAfter = Date.now() - endedAt;
    expect(goneAfter, `dropped ${goneAfter} ms after the handler ended`).toBeLessThan(1000);
    expect(gone.worker).toMatchObject({ slots_busy: 0, job_ids: [] });
    expect((await health(harness.app)).checks.workers).toMatchObject({ busy: 0 });
    await waitForStatus(harness.app, job.id, 'succeeded');
    // One write for the start and one for the end (and a beat should the test have taken 10 s), not one per poll.
    expect(control.registryWrites - writesBefore).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - from) / 10_000));
  });

  it('several jobs starting and ending together are shown with one registry write each way', async () => {
    const { store, ops } = await open();
    const gate = gatedHandler();
    const harness = await scope.open({ workers: true, concurrency: 5, extraHandlers: [gate.handler], store, ops });
    const pool = harness.pool!;
    const control = new WorkerControl({
      ops,
      store,
      pool,
      log: pino({ level: 'silent' }),
      version: '9.9.9',
      role: 'all',
    });
    await control.start();
    cleanups.push(() => control.stop());
    // Five jobs claimed in one go: queued while their type is held back, then let through together.
    pool.setControl({ pausedTypes: ['gate'] });
    const jobs = await Promise.all(
      Array.from({ length: 5 }, () => createJob(harness.app, { type: 'gate', input: {} })),
    );
    const ids = jobs.map((job) => job.id).sort();
    const writesBefore = control.registryWrites;
    const from = Date.now();
    pool.setControl({ pausedTypes: [] });
    await Promise.all(ids.map((id) => gate.started(id)));
    const { worker } = await until(harness.app, pool.workerId, (entry) => entry.job_ids.length === 5);
    expect([...worker.job_ids].sort()).toEqual(ids);
    expect(worker.slots_busy).toBe(5);
    expect((await health(harness.app)).checks.workers).toMatchObject({ busy: 5 });

    for (const id of ids) gate.release(id);
    await until(harness.app, pool.workerId, (entry) => entry.slots_busy === 0 && entry.job_ids.length === 0);
    expect((await health(harness.app)).checks.workers).toMatchObject({ busy: 0 });
    // Five starts in one write, five ends in another (and a beat should the test have taken 10 s).
    expect(control.registryWrites - writesBefore).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - from) / 10_000));
  });
});
