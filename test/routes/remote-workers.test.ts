import { randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { workerKeyring } from '../../src/http/worker-auth.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import type { DeclaredTypeDef, OpsStore } from '../../src/ops/ops-store.js';
import { RedisOpsStore } from '../../src/ops/redis-ops-store.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { waitFor } from '../helpers/wait-for.js';
import { createJob, expectProblem, getJob, harnessScope, type HarnessOptions } from './helpers.js';

/*
 * The pull-worker protocol through HTTP (app.inject): remote workers register, claim (long-poll), heartbeat,
 * complete, fail, release, log and deregister; fencing, timeouts, drains and the worker keys.
 */

const scope = harnessScope();
afterEach(() => scope.closeAll());

const WORKER_KEY = 'worker-key-0123456789abcdef';
const SCOPED_KEY = 'scoped-key-0123456789abcdef';
const OTHER_WORKER_KEY = 'other-worker-key-0123456789';
const API_KEY = 'api-key-0123456789abcdef';
const ADMIN_KEY = 'admin-key-0123456789abcdef';

const declaration = (type: string, overrides: Partial<DeclaredTypeDef> = {}): DeclaredTypeDef => ({
  type,
  input_schema: { type: 'object' },
  description: null,
  timeout_s: null,
  max_attempts: null,
  max_concurrency: null,
  rate: null,
  lease_s: null,
  created_at: Date.now(),
  updated_at: Date.now(),
  ...overrides,
});

/** research: plain; short: a 1 s lease; timed: a 1 s timeout, one attempt; other: outside the scoped key. */
const declared = [
  declaration('research'),
  declaration('short', { lease_s: 1 }),
  declaration('timed', { timeout_s: 1, max_attempts: 1 }),
  declaration('other'),
];

interface Backend {
  name: string;
  open(): Promise<{ store: JobStore; ops: OpsStore }>;
}

const backends: Backend[] = [
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

async function openService(backend: Backend, options: HarnessOptions = {}) {
  const { store, ops } = await backend.open();
  for (const def of declared) await ops.declareType(def);
  return scope.open({ store, ops, remote: { backoff: { baseMs: 10, maxMs: 20 } }, ...options });
}

type Json = Record<string, unknown>;
interface Lease {
  lease_id: string;
  lease_until: string;
  job: {
    id: string;
    type: string;
    input: unknown;
    attempt: number;
    max_attempts: number;
    timeout_at: string | null;
    metadata: Record<string, string>;
    priority: number;
  };
}

function client(app: FastifyInstance, key?: string) {
  const call = (
    method: InjectOptions['method'],
    url: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> =>
    app.inject({
      method,
      url,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
      ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
    });
  const ok = async <T = Json>(response: Promise<LightMyRequestResponse>, status = 200): Promise<T> => {
    const answer = await response;
    expect(answer.statusCode, answer.body).toBe(status);
    return answer.json<T>();
  };
  return {
    call,
    register: (body: Json = { name: 'w', types: ['research'], slots: 4 }) =>
      ok<{ worker_id: string; heartbeat_s: number; lease_s: number; max_wait_s: number; max_claim: number }>(
        call('POST', '/v1/workers', body),
        201,
      ),
    claim: (workerId: string, max = 10, waitS?: number) =>
      ok<{ leases: Lease[] }>(
        call('POST', `/v1/workers/${workerId}/leases`, { max }, waitS === undefined ? {} : { prefer: `wait=${waitS}` }),
      ),
    heartbeat: (workerId: string, leases: Json[]) =>
      ok<{ worker: string; leases: { lease_id: string; status: string; lease_until: string | null }[] }>(
        call('POST', `/v1/workers/${workerId}/heartbeat`, { leases }),
      ),
    settle: (leaseId: string, verb: 'complete' | 'fail' | 'release', body?: Json) =>
      call('POST', `/v1/leases/${leaseId}/${verb}`, body),
    ok,
  };
}

describe.each(backends)('remote workers ($name store)', (backend) => {
  it('register, claim, heartbeat with progress, complete: the client sees progress and result; a repeated complete answers as the first', async () => {
    const { app, store } = await openService(backend);
    const worker = client(app);
    const registered = await worker.register({
      name: 'py-research',
      types: ['research'],
      slots: 2,
      labels: { host: 'gpu-1', version: '1.2.0' },
    });
    expect(registered).toEqual({
      worker_id: expect.stringMatching(/^[A-Za-z0-9]{20}$/) as string,
      heartbeat_s: 10,
      lease_s: 30,
      max_wait_s: 25,
      max_claim: 100,
    });
    const id = registered.worker_id;

    const job = await createJob(app, {
      type: 'research',
      input: { topic: 'fencing' },
      metadata: { team: 'a' },
      priority: 3,
    });
    const { leases } = await worker.claim(id, 5);
    expect(leases).toHaveLength(1);
    const lease = leases[0]!;
    expect(lease.lease_id).toMatch(new RegExp(`^${job.id}\\.${id}[A-Za-z0-9]{12}$`));
    expect(Date.parse(lease.lease_until)).toBeGreaterThan(Date.now() + 25_000);
    expect(lease.job).toEqual({
      id: job.id,
      type: 'research',
      input: { topic: 'fencing' },
      attempt: 1,
      max_attempts: 3,
      timeout_at: null,
      metadata: { team: 'a' },
      priority: 3,
    });

    const beat = await worker.heartbeat(id, [
      { lease_id: lease.lease_id, progress: { percent: 40, step: 'search', message: 'searching the web' } },
    ]);
    expect(beat).toEqual({
      worker: 'active',
      leases: [{ lease_id: lease.lease_id, status: 'ok', lease_until: expect.any(String) as string }],
    });
    const running = await getJob(app, job.id);
    expect(running).toMatchObject({
      status: 'running',
      progress: { percent: 40, step: 'search', message: 'searching the web' },
    });
    // Progress never goes back within an attempt, and stays below 100 until it succeeded.
    await worker.heartbeat(id, [{ lease_id: lease.lease_id, progress: { percent: 100 } }]);
    await worker.heartbeat(id, [{ lease_id: lease.lease_id, progress: { percent: 10 } }]);
    expect((await getJob(app, job.id)).progress.percent).toBe(99);

    const logs = await worker.ok(
      worker.call('POST', `/v1/leases/${lease.lease_id}/logs`, {
        lines: [{ level: 'info', message: 'calling with token=abc123 now' }],
      }),
    );
    expect(logs).toEqual({ lease_id: lease.lease_id, lines: 1 });
    expect(await store.logs(job.id)).toEqual([
      expect.objectContaining({ attempt: 1, level: 'info', message: 'calling with token=[redacted] now' }),
    ]);

    const first = await worker.ok(
      worker.settle(lease.lease_id, 'complete', { result: { answer: 42, sources: ['a'] } }),
    );
    expect(first).toEqual({ lease_id: lease.lease_id, status: 'ok', job_status: 'succeeded' });
    expect(await getJob(app, job.id)).toMatchObject({
      status: 'succeeded',
      result: { answer: 42, sources: ['a'] },
      progress: { percent: 100 },
    });
    // The same complete again (its answer was lost on the way): answered as the first, key order aside.
    expect(
      await worker.ok(worker.settle(lease.lease_id, 'complete', { result: { sources: ['a'], answer: 42 } })),
    ).toEqual(first);
    // Another result is not the same complete: the lease is spent.
    expectProblem(await worker.settle(lease.lease_id, 'complete', { result: { answer: 41 } }), 409, 'lease-lost');
    expect((await getJob(app, job.id)).result).toEqual({ answer: 42, sources: ['a'] });

    const registry = await worker.ok<{ data: Json[] }>(app.inject({ method: 'GET', url: '/admin/workers' }));
    expect(registry.data).toEqual([
      expect.objectContaining({
        id,
        kind: 'remote',
        name: 'py-research',
        labels: { host: 'gpu-1', version: '1.2.0' },
        key_name: 'anonymous',
        version: '1.2.0',
        state: 'live',
        slots_total: 2,
        slots_busy: 0,
        job_ids: [],
        types: ['research'],
      }),
    ]);
  });

  it('never leases more than the free slots', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register({ name: 'w', types: ['research'], slots: 2 });
    for (let i = 0; i < 4; i++) await createJob(app, { type: 'research', input: { i } });
    const first = await worker.claim(id, 10);
    expect(first.leases).toHaveLength(2);
    const started = Date.now();
    expect((await worker.claim(id, 10, 5)).leases).toEqual([]); // no free slot: at once, whatever the wait
    expect(Date.now() - started).toBeLessThan(2000);
    const registry = await worker.ok<{ data: { slots_busy: number; job_ids: string[] }[] }>(
      app.inject({ method: 'GET', url: '/admin/workers' }),
    );
    expect(registry.data[0]).toMatchObject({ slots_busy: 2, job_ids: first.leases.map((lease) => lease.job.id) });
    await worker.ok(worker.settle(first.leases[0]!.lease_id, 'complete', { result: null }));
    expect((await worker.claim(id, 10)).leases).toHaveLength(1);
    expectProblem(await worker.call('POST', `/v1/workers/${id}/leases`, { max: 101 }), 422, 'validation-failed');
  });

  it('a long-poll claim answers as soon as a submit brings work, not at the end of its wait', async () => {
    const { app, store } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    const waiting = vi.spyOn(store, 'nextWakeAt');
    const started = Date.now();
    const claim = worker.call('POST', `/v1/workers/${id}/leases`, { max: 1 }, { prefer: 'wait=20' });
    // The claim found nothing and now waits (it asks the store when to wake up right before it does).
    await waitFor(() => waiting.mock.calls.length > 0, { what: 'the claim to wait' });
    const submittedAt = Date.now();
    const job = await createJob(app, { type: 'research', input: {} });
    const answer = await claim;
    const answeredAt = Date.now();
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.headers['preference-applied']).toBe('wait=20');
    expect(answer.json<{ leases: Lease[] }>().leases.map((lease) => lease.job.id)).toEqual([job.id]);
    expect(submittedAt).toBeGreaterThanOrEqual(started);
    expect(answeredAt - submittedAt).toBeLessThan(3000);
  });

  it('a long-poll with nothing to do answers no leases at the end of its wait', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    const started = Date.now();
    const answer = await worker.call('POST', `/v1/workers/${id}/leases`, { max: 1 }, { prefer: 'wait=1' });
    expect(answer.json()).toEqual({ leases: [] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('fail: retryable with attempts left queues the job again (the attempt counted); not retryable, or the last attempt, fails it', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    const job = await createJob(app, { type: 'research', input: {}, max_attempts: 2 });
    const [first] = (await worker.claim(id, 1)).leases;
    const failed = await worker.ok(
      worker.settle(first!.lease_id, 'fail', {
        error: { code: 'upstream-503', message: 'the search API is down', detail: 'Traceback: password=hunter2' },
        retry_after_s: 0,
      }),
    );
    expect(failed).toEqual({ lease_id: first!.lease_id, status: 'ok', job_status: 'queued' });
    expect(await getJob(app, job.id)).toMatchObject({
      status: 'queued',
      attempt: 1,
      error: { code: 'upstream-503', retryable: true },
    });

    const [second] = (await worker.claim(id, 1)).leases;
    expect(second!.job).toMatchObject({ id: job.id, attempt: 2 });
    expect(
      await worker.ok(
        worker.settle(second!.lease_id, 'fail', { error: { code: 'upstream-503', message: 'still down' } }),
      ),
    ).toMatchObject({ job_status: 'failed' });
    expect(await getJob(app, job.id)).toMatchObject({
      status: 'failed',
      attempt: 2,
      error: { code: 'upstream-503', detail: 'still down' },
    });

    const fatal = await createJob(app, { type: 'research', input: {} });
    const [lease] = (await worker.claim(id, 1)).leases;
    expect(
      await worker.ok(
        worker.settle(lease!.lease_id, 'fail', { error: { code: 'bad-input', message: 'no topic' }, retryable: false }),
      ),
    ).toMatchObject({ job_status: 'failed' });
    expect(await getJob(app, fatal.id)).toMatchObject({
      status: 'failed',
      attempt: 1,
      error: { code: 'bad-input', retryable: false },
    });
    expectProblem(
      await worker.settle(lease!.lease_id, 'fail', { error: { code: 'x', message: 'again' } }),
      409,
      'lease-lost',
    );
    expectProblem(
      await worker.settle(lease!.lease_id, 'fail', { error: { code: 'not a code!', message: 'x' } }),
      422,
      'validation-failed',
    );
  });

  it('release: back to the queue at once, the attempt not counted', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    const job = await createJob(app, { type: 'research', input: {} });
    const [lease] = (await worker.claim(id, 1)).leases;
    expect(await worker.ok(worker.settle(lease!.lease_id, 'release'))).toMatchObject({ job_status: 'queued' });
    expect(await getJob(app, job.id)).toMatchObject({ status: 'queued', attempt: 0 });
    expect((await worker.claim(id, 1)).leases[0]!.job).toMatchObject({ id: job.id, attempt: 1 });
  });

  it('cancel reaches the worker through its heartbeat; it then releases, and the job ends canceled', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    const job = await createJob(app, { type: 'research', input: {} });
    const [lease] = (await worker.claim(id, 1)).leases;
    expect((await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` })).statusCode).toBe(202);
    expect((await worker.heartbeat(id, [{ lease_id: lease!.lease_id }])).leases).toEqual([
      { lease_id: lease!.lease_id, status: 'cancel_requested', lease_until: expect.any(String) as string },
    ]);
    expect(await worker.ok(worker.settle(lease!.lease_id, 'release'))).toMatchObject({ job_status: 'canceled' });
    expect((await getJob(app, job.id)).status).toBe('canceled');
  });

  it("a late complete after the lease lapsed and the job was claimed again answers 409, changes nothing, and is noted on the job's log", async () => {
    const { app, store } = await openService(backend);
    const worker = client(app);
    const slow = await worker.register({ name: 'slow', types: ['short'], slots: 1 });
    expect(slow).toMatchObject({ lease_s: 1, heartbeat_s: 1 });
    const job = await createJob(app, { type: 'short', input: {} });
    const [stale] = (await worker.claim(slow.worker_id, 1)).leases;
    await waitFor(() => Date.now() > Date.parse(stale!.lease_until) + 50, { what: 'the lease to lapse' });
    const quick = await worker.register({ name: 'quick', types: ['short'], slots: 1 });
    const [fresh] = (await worker.claim(quick.worker_id, 1)).leases;
    expect(fresh!.job).toMatchObject({ id: job.id, attempt: 2 });

    expectProblem(await worker.settle(stale!.lease_id, 'complete', { result: 'late' }), 409, 'lease-lost');
    expect(await getJob(app, job.id)).toMatchObject({ status: 'running', attempt: 2, result: null });
    expect((await worker.heartbeat(slow.worker_id, [{ lease_id: stale!.lease_id }])).leases[0]).toMatchObject({
      status: 'lost',
      lease_until: null,
    });
    const lines = await store.logs(job.id);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        attempt: 1,
        message: expect.stringContaining(
          `late outcome "complete" from remote worker "slow" (${slow.worker_id})`,
        ) as string,
      }),
    ]);
    expectProblem(
      await worker.call('POST', `/v1/leases/${stale!.lease_id}/logs`, { lines: [{ level: 'info', message: 'late' }] }),
      409,
      'lease-lost',
    );
    expect(await worker.ok(worker.settle(fresh!.lease_id, 'complete', { result: 'on time' }))).toMatchObject({
      job_status: 'succeeded',
    });
  });

  it('POST /v1/leases:complete settles many leases in one call and answers each, in order', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register({ name: 'batch', types: ['research'], slots: 10 });
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await createJob(app, { type: 'research', input: { i }, max_attempts: 1 }));
    const { leases } = await worker.claim(id, 10);
    expect(leases).toHaveLength(3);
    const byJob = new Map(leases.map((lease) => [lease.job.id, lease.lease_id]));
    const unknown = `${jobs[0]!.id}.${id}AAAAAAAAAAAA`;
    const answer = await worker.ok(
      worker.call('POST', '/v1/leases:complete', {
        items: [
          { lease_id: byJob.get(jobs[0]!.id), result: { n: 0 } },
          { lease_id: unknown, result: 'forged' },
          { lease_id: byJob.get(jobs[1]!.id), error: { code: 'boom', message: 'it broke' }, retryable: false },
          { lease_id: byJob.get(jobs[2]!.id), result: [2] },
        ],
      }),
    );
    expect(answer).toEqual({
      items: [
        { lease_id: byJob.get(jobs[0]!.id), status: 'ok' },
        { lease_id: unknown, status: 'lost' },
        { lease_id: byJob.get(jobs[1]!.id), status: 'ok' },
        { lease_id: byJob.get(jobs[2]!.id), status: 'ok' },
      ],
    });
    expect(await getJob(app, jobs[0]!.id)).toMatchObject({ status: 'succeeded', result: { n: 0 } });
    expect(await getJob(app, jobs[1]!.id)).toMatchObject({ status: 'failed', error: { code: 'boom' } });
    expect(await getJob(app, jobs[2]!.id)).toMatchObject({ status: 'succeeded', result: [2] });
    const registry = await worker.ok<{ data: { slots_busy: number }[] }>(
      app.inject({ method: 'GET', url: '/admin/workers' }),
    );
    expect(registry.data[0]!.slots_busy).toBe(0);
    expectProblem(
      await worker.call('POST', '/v1/leases:complete', { items: [{ lease_id: 'nope', result: 1 }] }),
      422,
      'validation-failed',
    );
    expectProblem(await worker.call('POST', '/v1/leases:complete', { items: [] }), 422, 'validation-failed');
  });

  it('DELETE /v1/workers/{id} returns every lease it holds to the queue, attempts not counted, and forgets the worker', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    const jobs = [
      await createJob(app, { type: 'research', input: {} }),
      await createJob(app, { type: 'research', input: {} }),
    ];
    const { leases } = await worker.claim(id, 2);
    expect(leases).toHaveLength(2);
    expect((await worker.call('DELETE', `/v1/workers/${id}`)).statusCode).toBe(204);
    for (const job of jobs) expect(await getJob(app, job.id)).toMatchObject({ status: 'queued', attempt: 0 });
    expect((await worker.ok<{ data: unknown[] }>(app.inject({ method: 'GET', url: '/admin/workers' }))).data).toEqual(
      [],
    );
    expectProblem(await worker.call('POST', `/v1/workers/${id}/leases`, { max: 1 }), 404, 'worker-not-found');
    expectProblem(await worker.settle(leases[0]!.lease_id, 'complete', { result: 1 }), 409, 'lease-lost');
  });

  it('a worker drained by an operator claims nothing and hears `drain`; a resume lets it claim again', async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    await createJob(app, { type: 'research', input: {} });
    expect((await app.inject({ method: 'POST', url: `/admin/workers/${id}/drain` })).statusCode).toBe(200);
    const started = Date.now();
    expect((await worker.claim(id, 1, 5)).leases).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await worker.heartbeat(id, [])).worker).toBe('drain');
    expect((await app.inject({ method: 'POST', url: `/admin/workers/${id}/resume` })).statusCode).toBe(200);
    expect((await worker.claim(id, 1)).leases).toHaveLength(1);
    expect((await worker.heartbeat(id, [])).worker).toBe('active');
  });

  it("enforces timeout_s: the attempt fails with `timeout` at timeout_at, and the worker's lease is lost", async () => {
    const { app } = await openService(backend);
    const worker = client(app);
    const { worker_id: id } = await worker.register({ name: 't', types: ['timed'], slots: 1 });
    const job = await createJob(app, { type: 'timed', input: {} });
    const [lease] = (await worker.claim(id, 1)).leases;
    expect(lease!.job.timeout_at).not.toBeNull();
    expect(Date.parse(lease!.job.timeout_at!) - Date.parse((await getJob(app, job.id)).started_at!)).toBe(1000);
    const failed = await waitFor(
      async () => {
        const current = await getJob(app, job.id);
        return current.status === 'failed' ? current : undefined;
      },
      { what: 'the job to time out' },
    );
    expect(failed.error).toMatchObject({ code: 'timeout', retryable: true });
    expect((await worker.heartbeat(id, [{ lease_id: lease!.lease_id }])).leases[0]!.status).toBe('lost');
    expectProblem(await worker.settle(lease!.lease_id, 'complete', { result: 'too late' }), 409, 'lease-lost');
  });
});

describe('remote workers: registration and claims', () => {
  it('registers only declared types (422 naming each), takes the shortest lease of its types, and skips paused types', async () => {
    const { app } = await openService(backends[0]!);
    const worker = client(app);
    const refused = expectProblem(
      await worker.call('POST', '/v1/workers', { name: 'w', types: ['research', 'echo', 'nope'], slots: 1 }),
      422,
      'validation-failed',
    );
    expect(refused.errors?.map((error) => error.pointer)).toEqual(['/types/1', '/types/2']);
    expectProblem(
      await worker.call('POST', '/v1/workers', { name: 'w', types: [], slots: 1 }),
      422,
      'validation-failed',
    );
    expectProblem(
      await worker.call('POST', '/v1/workers', { name: 'w', types: ['research'], slots: 0 }),
      422,
      'validation-failed',
    );
    expect(await worker.register({ name: 'w', types: ['research', 'short'], slots: 1 })).toMatchObject({
      lease_s: 1,
      heartbeat_s: 1,
    });

    const { worker_id: id } = await worker.register({ name: 'w', types: ['research', 'other'], slots: 5 });
    await createJob(app, { type: 'research', input: {} });
    const other = await createJob(app, { type: 'other', input: {} });
    expect(
      (await app.inject({ method: 'POST', url: '/admin/types/research/pause', payload: { reason: 'test' } }))
        .statusCode,
    ).toBe(200);
    expect((await worker.claim(id, 5)).leases.map((lease) => lease.job.id)).toEqual([other.id]);
  });

  it('a malformed or unknown lease id answers 404 lease-not-found; a wait is capped at max_wait_s', async () => {
    const { app } = await openService(backends[0]!, { remote: { maxWaitS: 0, backoff: { baseMs: 10, maxMs: 20 } } });
    const worker = client(app);
    expectProblem(await worker.settle('not-a-lease', 'complete', { result: 1 }), 404, 'lease-not-found');
    expectProblem(await worker.settle('01JD3M5W6SX1T4KQ8V0ZC2N7GH.short', 'release'), 404, 'lease-not-found');
    const { worker_id: id } = await worker.register();
    const answer = await worker.call('POST', `/v1/workers/${id}/leases`, { max: 1 }, { prefer: 'wait=30' });
    expect(answer.headers['preference-applied']).toBe('wait=0');
    expect(answer.json()).toEqual({ leases: [] });
  });

  it('answers `stop` while the instance shuts down, and a held claim ends when the app closes', async () => {
    let stopping = false;
    const harness = await openService(backends[0]!, { isShuttingDown: () => stopping });
    const { app } = harness;
    const worker = client(app);
    const { worker_id: id } = await worker.register();
    const held = worker.call('POST', `/v1/workers/${id}/leases`, { max: 1 }, { prefer: 'wait=20' });
    stopping = true;
    expect((await worker.heartbeat(id, [])).worker).toBe('stop');
    const started = Date.now();
    await harness.close();
    expect((await held).json()).toEqual({ leases: [] });
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('remote workers: keys', () => {
  const keys = () => ({
    apiKeys: parseApiKeys([{ key: API_KEY, tenant: 'acme' }]),
    adminKeys: loadConfig({ ADMIN_KEYS: `${ADMIN_KEY}:admin` }).ADMIN_KEYS!,
    workerKeys: workerKeyring(
      loadConfig({ WORKER_KEYS: `${WORKER_KEY}:fleet,${SCOPED_KEY}:gpu:research|short,${OTHER_WORKER_KEY}:other-team` })
        .WORKER_KEYS!,
    ),
  });

  it('worker keys call the worker endpoints only; API and admin keys cannot claim; no key or a wrong one is 401', async () => {
    const { app } = await openService(backends[0]!, keys());
    const asWorker = client(app, WORKER_KEY);
    expectProblem(await asWorker.call('GET', '/v1/jobs'), 403, 'worker-key-not-allowed');
    expectProblem(
      await asWorker.call('POST', '/v1/jobs', { type: 'research', input: {} }),
      403,
      'worker-key-not-allowed',
    );
    expectProblem(
      await client(app, API_KEY).call('POST', '/v1/workers', { name: 'w', types: ['research'], slots: 1 }),
      403,
      'not-a-worker-key',
    );
    expectProblem(
      await client(app, ADMIN_KEY).call('POST', '/v1/workers', { name: 'w', types: ['research'], slots: 1 }),
      403,
      'not-a-worker-key',
    );
    const anonymous = expectProblem(
      await client(app).call('POST', '/v1/workers', { name: 'w', types: ['research'], slots: 1 }),
      401,
      'unauthorized',
    );
    expect(anonymous.detail).toContain('worker key');
    const wrong = await client(app, 'not-a-key-0123456789abcdef').call('POST', '/v1/leases:complete', { items: [] });
    expectProblem(wrong, 401, 'unauthorized');
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="workers", error="invalid_token"');

    const { worker_id: id } = await asWorker.register();
    const job = await client(app, API_KEY).ok<{ id: string }>(
      client(app, API_KEY).call('POST', '/v1/jobs', { type: 'research', input: {} }),
      202,
    );
    const [lease] = (await asWorker.claim(id, 1)).leases;
    expect(lease!.job.id).toBe(job.id);
    // Another worker key sees neither this worker nor its leases.
    const other = client(app, OTHER_WORKER_KEY);
    expectProblem(await other.call('POST', `/v1/workers/${id}/heartbeat`, { leases: [] }), 404, 'worker-not-found');
    expectProblem(await other.settle(lease!.lease_id, 'complete', { result: 'stolen' }), 404, 'lease-not-found');
    expect(
      await other.ok(
        other.call('POST', '/v1/leases:complete', { items: [{ lease_id: lease!.lease_id, result: 'stolen' }] }),
      ),
    ).toEqual({ items: [{ lease_id: lease!.lease_id, status: 'lost' }] });
    expect(await asWorker.ok(asWorker.settle(lease!.lease_id, 'complete', { result: 'mine' }))).toMatchObject({
      job_status: 'succeeded',
    });
  });

  it('a scoped key registers and claims only its types (403 type-not-allowed)', async () => {
    const { app } = await openService(backends[0]!, keys());
    const scoped = client(app, SCOPED_KEY);
    const refused = expectProblem(
      await scoped.call('POST', '/v1/workers', { name: 'gpu', types: ['research', 'other'], slots: 1 }),
      403,
      'type-not-allowed',
    );
    expect(refused.errors).toEqual([{ pointer: '/types/1', detail: expect.any(String) as string }]);
    expect(await scoped.register({ name: 'gpu', types: ['research', 'short'], slots: 1 })).toMatchObject({
      lease_s: 1,
    });
  });

  it('without WORKER_KEYS the worker endpoints are open exactly when the API is', async () => {
    const closed = await openService(backends[0]!, { apiKeys: parseApiKeys([{ key: API_KEY, tenant: 'acme' }]) });
    expectProblem(
      await client(closed.app, API_KEY).call('POST', '/v1/workers', { name: 'w', types: ['research'], slots: 1 }),
      401,
      'unauthorized',
    );
    const open = await openService(backends[0]!);
    expect(await client(open.app).register()).toMatchObject({ lease_s: 30 });
    // With worker keys and an open API, a worker key still cannot submit.
    const mixed = await openService(backends[0]!, { workerKeys: keys().workerKeys });
    expectProblem(
      await client(mixed.app, WORKER_KEY).call('POST', '/v1/jobs', { type: 'research', input: {} }),
      403,
      'worker-key-not-allowed',
    );
    expect((await client(mixed.app).call('GET', '/v1/jobs')).statusCode).toBe(200);
  });
});
