import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../../src/handlers/handler.js';
import type { JobRecord, NewJob } from '../../src/jobs/job.js';
import { adminJobDetailSchema, adminJobListSchema, adminJobSchema, jobListSchema } from '../../src/routes/schemas.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { waitFor } from '../helpers/wait-for.js';
import { createJob, expectProblem, getJob, harnessScope, parseJob, type Harness } from './helpers.js';

/*
 * Concurrency keys over HTTP: a submit's `concurrency_key`, the Job's `concurrency_key` and `waiting_for`
 * (everywhere a Job is rendered), the admin search filter, clones, and the type settings key_concurrency and
 * fair_by (handler definition, TYPE_LIMITS, declared types).
 */

const scope = harnessScope();
afterEach(() => scope.closeAll());

/** One job per document at a time, each tenant's documents taking turns. */
const perDocument = defineHandler({
  type: 'per-doc',
  input: z.object({}).strict(),
  key_concurrency: 1,
  fair_by: 'key',
  async run() {
    return null;
  },
});

/** Each store the service runs on: a Redis one under a key prefix of its own. */
const stores = [
  { name: 'memory', open: async (): Promise<JobStore> => new MemoryJobStore({ jobTtlMs: 60_000 }) },
  {
    name: 'redis',
    open: async (): Promise<JobStore> =>
      RedisJobStore.connect({
        url: inject('redisUrl'),
        keyPrefix: `t${randomUUID().slice(0, 8)}`,
        jobTtlMs: 60_000,
        connectTimeoutMs: 2000,
        commandTimeoutMs: 1000,
      }),
  },
];

const submit = (app: FastifyInstance, body: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: '/v1/jobs', payload: body });

/** Claims the next ready job of `type` as a worker would, with the key cap the pool would pass. */
async function claimOne(store: JobStore, type: string, keyConcurrency = 1): Promise<JobRecord> {
  const [job] = await store.claim({
    types: [type],
    limits: { [type]: { keyConcurrency } },
    max: 1,
    workerId: 'test-worker',
    leaseId: `lease-${Math.random()}`,
    leaseMs: 60_000,
    now: Date.now(),
  });
  expect(job).toBeDefined();
  return job!;
}

describe('POST /v1/jobs with concurrency_key', () => {
  it.each(stores)('keeps the key and shows it in the Job, its GET and the listing ($name store)', async (backend) => {
    const { app } = await scope.open({ store: await backend.open() });
    const keyed = await createJob(app, { type: 'echo', concurrency_key: 'customer-42 / ü' });
    expect(keyed).toMatchObject({ concurrency_key: 'customer-42 / ü', waiting_for: null });
    const plain = await createJob(app, { type: 'echo' });
    expect(plain).toMatchObject({ concurrency_key: null, waiting_for: null });
    expect(await getJob(app, keyed.id)).toMatchObject({ concurrency_key: 'customer-42 / ü', waiting_for: null });
    const list = await app.inject({ method: 'GET', url: '/v1/jobs' });
    expect(list.statusCode).toBe(200);
    const byId = new Map(jobListSchema.parse(list.json()).data.map((job) => [job.id, job]));
    expect(byId.get(keyed.id)?.concurrency_key).toBe('customer-42 / ü');
    expect(byId.get(plain.id)?.concurrency_key).toBeNull();
    const longest = await createJob(app, { type: 'echo', concurrency_key: 'k'.repeat(128) });
    expect(longest.concurrency_key).toHaveLength(128);
  });

  it('refuses an empty, too long or control-character key with a problem naming concurrency_key', async () => {
    const { app, store } = await scope.open();
    const create = vi.spyOn(store, 'create');
    for (const bad of ['', 'k'.repeat(129), 'line\nbreak', 'nul\u0000', 'tab\there', 'c1\u0085', 'del\u007f', 42]) {
      const problem = expectProblem(
        await submit(app, { type: 'echo', concurrency_key: bad }),
        422,
        'validation-failed',
      );
      expect(
        problem.errors?.map((error) => error.pointer),
        JSON.stringify(bad),
      ).toEqual(['/concurrency_key']);
    }
    expect(create).not.toHaveBeenCalled();
  });

  it("sets fairByKey from the type's fair_by, TYPE_LIMITS overriding the definition", async () => {
    const own = await scope.open({ extraHandlers: [perDocument] });
    const create = vi.spyOn(own.store, 'create');
    await createJob(own.app, { type: 'per-doc', concurrency_key: 'doc-1' });
    await createJob(own.app, { type: 'echo', concurrency_key: 'doc-1' });
    const created = create.mock.calls.map(([job]) => job);
    expect(created.map((job: NewJob) => [job.type, job.concurrencyKey, job.fairByKey])).toEqual([
      ['per-doc', 'doc-1', true],
      ['echo', 'doc-1', false],
    ]);

    const overridden = await scope.open({
      extraHandlers: [perDocument],
      typeLimits: { 'per-doc': { fairBy: 'tenant' }, echo: { fairBy: 'key' } },
    });
    const createOverridden = vi.spyOn(overridden.store, 'create');
    await createJob(overridden.app, { type: 'per-doc' });
    await createJob(overridden.app, { type: 'echo' });
    expect(createOverridden.mock.calls.map(([job]) => [job.type, job.concurrencyKey, job.fairByKey])).toEqual([
      ['per-doc', null, false],
      ['echo', null, true],
    ]);
  });
});

describe.each(stores)('waiting_for ($name store)', (backend) => {
  /** per-doc jobs: one of doc-1 claimed, then two more of doc-1, one of doc-2, a keyless one and a delayed one of doc-1. */
  async function keyAtCap(harness: Harness) {
    const { app, store } = harness;
    const running = await createJob(app, { type: 'per-doc', concurrency_key: 'doc-1' });
    expect((await claimOne(store, 'per-doc')).id).toBe(running.id);
    const held = await createJob(app, { type: 'per-doc', concurrency_key: 'doc-1' });
    const alsoHeld = await createJob(app, { type: 'per-doc', concurrency_key: 'doc-1' });
    const otherKey = await createJob(app, { type: 'per-doc', concurrency_key: 'doc-2' });
    const keyless = await createJob(app, { type: 'per-doc' });
    const delayed = await createJob(app, { type: 'per-doc', concurrency_key: 'doc-1', delay_s: 3600 });
    return { running, held, alsoHeld, otherKey, keyless, delayed };
  }

  it("is concurrency_key for a ready job whose key is at its type's key_concurrency, null otherwise", async () => {
    const harness = await scope.open({ store: await backend.open(), extraHandlers: [perDocument] });
    const { app } = harness;
    const jobs = await keyAtCap(harness);
    expect(await getJob(app, jobs.held.id)).toMatchObject({ status: 'queued', waiting_for: 'concurrency_key' });
    expect(await getJob(app, jobs.running.id)).toMatchObject({ status: 'running', waiting_for: null });
    for (const free of [jobs.otherKey, jobs.keyless, jobs.delayed])
      expect(await getJob(app, free.id)).toMatchObject({ status: 'queued', waiting_for: null });

    // The result endpoint's 202 carries the Job too.
    const result = await app.inject({ method: 'GET', url: `/v1/jobs/${jobs.held.id}/result` });
    expect(result.statusCode).toBe(202);
    expect(parseJob(result).waiting_for).toBe('concurrency_key');
  });

  it('asks the store once per type, tenant and key of a listing, and never about jobs that cannot wait', async () => {
    const harness = await scope.open({ store: await backend.open(), extraHandlers: [perDocument] });
    const { app, store } = harness;
    const jobs = await keyAtCap(harness);
    await createJob(app, { type: 'echo', concurrency_key: 'doc-1' }); // a type without key_concurrency
    const asked = vi.spyOn(store, 'runningWithKey');
    const response = await app.inject({ method: 'GET', url: '/v1/jobs?limit=100' });
    expect(response.statusCode).toBe(200);
    const waiting = Object.fromEntries(
      jobListSchema.parse(response.json()).data.map((job) => [job.id, job.waiting_for]),
    );
    expect(waiting).toMatchObject({
      [jobs.held.id]: 'concurrency_key',
      [jobs.alsoHeld.id]: 'concurrency_key',
      [jobs.running.id]: null,
      [jobs.otherKey.id]: null,
      [jobs.keyless.id]: null,
      [jobs.delayed.id]: null,
    });
    expect(asked.mock.calls.map((call) => call.join('|')).sort()).toEqual(['per-doc|-|doc-1', 'per-doc|-|doc-2']);
  });

  it('turns null once the running job of the key ends', async () => {
    const harness = await scope.open({ store: await backend.open(), extraHandlers: [perDocument] });
    const { app, store } = harness;
    const jobs = await keyAtCap(harness);
    expect((await getJob(app, jobs.held.id)).waiting_for).toBe('concurrency_key');
    const lease = (await store.get(jobs.running.id))!.lease!;
    await store.finish({ jobId: jobs.running.id, leaseId: lease.id }, { kind: 'succeeded', result: null }, Date.now());
    expect((await getJob(app, jobs.held.id)).waiting_for).toBeNull();
  });

  it('follows TYPE_LIMITS: key_concurrency set there caps a type that has none of its own', async () => {
    const harness = await scope.open({ store: await backend.open(), typeLimits: { echo: { keyConcurrency: 2 } } });
    const { app, store } = harness;
    await createJob(app, { type: 'echo', concurrency_key: 'k' });
    await claimOne(store, 'echo', 2);
    const next = await createJob(app, { type: 'echo', concurrency_key: 'k' });
    expect((await getJob(app, next.id)).waiting_for).toBeNull(); // 1 of 2 running
    expect((await claimOne(store, 'echo', 2)).id).toBe(next.id);
    const third = await createJob(app, { type: 'echo', concurrency_key: 'k' });
    expect((await getJob(app, third.id)).waiting_for).toBe('concurrency_key');
  });

  it('is in the event stream snapshot and in the admin views', async () => {
    const harness = await scope.open({ store: await backend.open(), extraHandlers: [perDocument] });
    const { app } = harness;
    const jobs = await keyAtCap(harness);

    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const stream = fetch(`${base}/v1/jobs/${jobs.held.id}/events`, { signal: AbortSignal.timeout(15_000) });
    const received = { text: '' };
    const reading = stream.then(async (response) => {
      const decoder = new TextDecoder();
      for await (const chunk of response.body!) received.text += decoder.decode(chunk as Uint8Array, { stream: true });
    });
    await waitFor(() => received.text.includes('event: snapshot'), { what: 'the snapshot' });
    const snapshot = JSON.parse(/event: snapshot\n(?:id: .*\n)?data: (.*)\n/.exec(received.text)![1]!) as Record<
      string,
      unknown
    >;
    expect(snapshot).toMatchObject({ id: jobs.held.id, concurrency_key: 'doc-1', waiting_for: 'concurrency_key' });
    // Canceled: the stream ends with `done`, which waits for nothing.
    expect((await app.inject({ method: 'POST', url: `/v1/jobs/${jobs.held.id}/cancel` })).statusCode).toBe(200);
    await reading;
    const done = JSON.parse(/event: done\n(?:id: .*\n)?data: (.*)\n/.exec(received.text)![1]!) as Record<
      string,
      unknown
    >;
    expect(done).toMatchObject({ status: 'canceled', waiting_for: null });

    const detail = await app.inject({ method: 'GET', url: `/admin/jobs/${jobs.alsoHeld.id}` });
    expect(detail.statusCode, detail.body).toBe(200);
    expect(adminJobDetailSchema.parse(detail.json())).toMatchObject({
      concurrency_key: 'doc-1',
      waiting_for: 'concurrency_key',
    });
  });
});

describe('admin: concurrency keys', () => {
  it('searches by concurrency_key (exact match)', async () => {
    const { app } = await scope.open();
    const a = await createJob(app, { type: 'echo', concurrency_key: 'doc-1' });
    const b = await createJob(app, { type: 'sleep', input: { ms: 1 }, concurrency_key: 'doc-1' });
    await createJob(app, { type: 'echo', concurrency_key: 'doc-10' });
    await createJob(app, { type: 'echo' });
    const response = await app.inject({ method: 'GET', url: '/admin/jobs?concurrency_key=doc-1' });
    expect(response.statusCode, response.body).toBe(200);
    const found = adminJobListSchema.parse(response.json()).data;
    expect(found.map((job) => job.id).sort()).toEqual([a.id, b.id].sort());
    expect(found.every((job) => job.concurrency_key === 'doc-1')).toBe(true);
    const withType = await app.inject({ method: 'GET', url: '/admin/jobs?concurrency_key=doc-1&type=sleep' });
    expect(adminJobListSchema.parse(withType.json()).data.map((job) => job.id)).toEqual([b.id]);
    expectProblem(await app.inject({ method: 'GET', url: '/admin/jobs?concurrency_key=' }), 400, 'bad-request');
  });

  it("clones a job with its concurrency key, and the type's fair_by as it is now", async () => {
    const { app, store } = await scope.open({ extraHandlers: [perDocument] });
    const source = await createJob(app, { type: 'per-doc', concurrency_key: 'doc-7' });
    const create = vi.spyOn(store, 'create');
    const response = await app.inject({ method: 'POST', url: `/admin/jobs/${source.id}/clone` });
    expect(response.statusCode, response.body).toBe(201);
    const copy = adminJobSchema.parse(response.json());
    expect(copy.id).not.toBe(source.id);
    expect(copy).toMatchObject({ concurrency_key: 'doc-7', waiting_for: null });
    expect(create.mock.calls[0]?.[0]).toMatchObject({ concurrencyKey: 'doc-7', fairByKey: true });
    expect((await getJob(app, copy.id)).concurrency_key).toBe('doc-7');
  });
});

describe('declared types: key_concurrency and fair_by', () => {
  const put = (app: FastifyInstance, body: Record<string, unknown>) =>
    app.inject({ method: 'PUT', url: '/admin/job-types/report', payload: body });
  const schema = { type: 'object', properties: { url: { type: 'string' } }, additionalProperties: false };

  it('round-trips them, null when left out, and applies them to submits and waiting_for', async () => {
    const { app, store } = await scope.open();
    const declared = await put(app, { input_schema: schema, key_concurrency: 1, fair_by: 'key' });
    expect(declared.statusCode, declared.body).toBe(201);
    expect(declared.json()).toMatchObject({ type: 'report', key_concurrency: 1, fair_by: 'key' });
    const read = await app.inject({ method: 'GET', url: '/admin/job-types/report' });
    expect(read.json()).toMatchObject({ key_concurrency: 1, fair_by: 'key' });

    const create = vi.spyOn(store, 'create');
    await createJob(app, { type: 'report', input: {}, concurrency_key: 'acct-1' });
    await claimOne(store, 'report');
    const held = await createJob(app, { type: 'report', input: {}, concurrency_key: 'acct-1' });
    expect(create.mock.calls.map(([job]) => job.fairByKey)).toEqual([true, true]);
    expect((await getJob(app, held.id)).waiting_for).toBe('concurrency_key');

    const replaced = await put(app, { input_schema: schema });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json()).toMatchObject({ key_concurrency: null, fair_by: null });
    expect((await getJob(app, held.id)).waiting_for).toBeNull(); // no cap any more
  });

  it('refuses a key_concurrency that is not a positive integer, or an unknown fair_by', async () => {
    const { app } = await scope.open();
    for (const [field, value] of [
      ['key_concurrency', 0],
      ['key_concurrency', 1.5],
      ['key_concurrency', '2'],
      ['fair_by', 'job'],
    ] as const) {
      const problem = expectProblem(await put(app, { input_schema: schema, [field]: value }), 422, 'validation-failed');
      expect(problem.errors?.map((error) => error.pointer)).toEqual([`/${field}`]);
    }
  });
});

describe('defineHandler: key_concurrency and fair_by', () => {
  it('refuses a key_concurrency that is not a positive integer, and an unknown fair_by', () => {
    const base = { type: 'bad', input: z.object({}), run: async () => null };
    for (const keyConcurrency of [0, -1, 1.5, Number.NaN])
      expect(() => defineHandler({ ...base, key_concurrency: keyConcurrency })).toThrow(/key_concurrency/);
    expect(() => defineHandler({ ...base, fair_by: 'job' as 'key' })).toThrow(/fair_by/);
    expect(defineHandler({ ...base, key_concurrency: 3, fair_by: 'tenant' })).toMatchObject({ key_concurrency: 3 });
  });
});

describe('remote claims', () => {
  it('pass TENANT_WEIGHTS and hold back a key at its declared key_concurrency', async () => {
    const { app, store } = await scope.open({ remote: { tenantWeights: { acme: 3 } } });
    const declared = await app.inject({
      method: 'PUT',
      url: '/admin/job-types/report',
      payload: { input_schema: { type: 'object' }, key_concurrency: 1, fair_by: 'key' },
    });
    expect(declared.statusCode, declared.body).toBe(201);
    const sameKey = [
      await createJob(app, { type: 'report', concurrency_key: 'acct-1' }),
      await createJob(app, { type: 'report', concurrency_key: 'acct-1' }),
    ];
    const other = await createJob(app, { type: 'report', concurrency_key: 'acct-2' });

    const registered = await app.inject({
      method: 'POST',
      url: '/v1/workers',
      payload: { name: 'w', types: ['report'], slots: 10 },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const claims = vi.spyOn(store, 'claim');
    const claimed = await app.inject({
      method: 'POST',
      url: `/v1/workers/${registered.json<{ worker_id: string }>().worker_id}/leases`,
      payload: { max: 10 },
    });
    expect(claimed.statusCode, claimed.body).toBe(200);
    const leased = claimed.json<{ leases: { job: { id: string } }[] }>().leases.map((lease) => lease.job.id);
    // One of acct-1's jobs (the earlier by run_at, then id) and acct-2's: acct-1 is at its cap of 1.
    expect(leased).toHaveLength(2);
    expect(leased).toContain(other.id);
    expect(sameKey.filter((job) => leased.includes(job.id))).toHaveLength(1);
    expect(claims.mock.calls[0]?.[0]).toMatchObject({
      tenantWeights: { acme: 3 },
      limits: { report: { keyConcurrency: 1, fairBy: 'key' } },
    });
  });
});
