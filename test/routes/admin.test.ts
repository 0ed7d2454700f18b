import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { newJobId } from '../../src/jobs/job-id.js';
import type { JobStore } from '../../src/store/job-store.js';
import { jobListSchema, statsSchema } from '../../src/routes/schemas.js';
import {
  blockingHandler,
  clockPast,
  createJob,
  expectProblem,
  harnessScope,
  parseJob,
  waitForStatus,
  type Job,
} from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

const TOKEN = 'test-admin-token-0123456789';

/** Loopback by default (inject's remoteAddress is 127.0.0.1), so no token is needed without adminToken. */
async function admin(
  app: FastifyInstance,
  method: InjectOptions['method'],
  url: string,
  headers: Record<string, string> = {},
) {
  return app.inject({ method, url, headers });
}

async function listAdmin(app: FastifyInstance, query: string, headers: Record<string, string> = {}) {
  const response = await admin(app, 'GET', `/admin/jobs${query}`, headers);
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  return jobListSchema.parse(response.json());
}

const adminRoutes: [InjectOptions['method'], string][] = [
  ['GET', '/admin/jobs'],
  ['GET', '/admin/stats'],
  ['POST', `/admin/jobs/${newJobId(Date.now())}/retry`],
  ['DELETE', '/admin/jobs'],
];

describe('admin access', () => {
  it('without adminToken: loopback clients are allowed', async () => {
    const { app } = await scope.open();
    expect((await app.inject({ method: 'GET', url: '/admin/stats' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/admin/jobs', remoteAddress: '::1' })).statusCode).toBe(200);
  });

  it('without adminToken: other clients get 403, whatever X-Forwarded-For says', async () => {
    const { app } = await scope.open();
    for (const [method, url] of adminRoutes) {
      const response = await app.inject({ method, url, remoteAddress: '10.1.2.3' });
      expectProblem(response, 403, 'forbidden');
    }
    const spoofed = await app.inject({
      method: 'GET',
      url: '/admin/stats',
      remoteAddress: '10.1.2.3',
      headers: { 'x-forwarded-for': '127.0.0.1' },
    });
    expectProblem(spoofed, 403, 'forbidden');
    // The client API is not guarded.
    expect((await app.inject({ method: 'GET', url: '/v1/jobs', remoteAddress: '10.1.2.3' })).statusCode).toBe(200);
  });

  it('with adminToken: 401 + WWW-Authenticate without or with a wrong token, 200 with the right one', async () => {
    const { app } = await scope.open({ adminToken: TOKEN });
    for (const [method, url] of adminRoutes) {
      const response = await app.inject({ method, url });
      expectProblem(response, 401, 'unauthorized');
      expect(response.headers['www-authenticate']).toMatch(/^Bearer\b/);
    }
    for (const authorization of [
      `Bearer ${TOKEN}x`,
      'Bearer wrong',
      `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`,
      TOKEN,
      'Bearer ',
    ]) {
      const response = await app.inject({ method: 'GET', url: '/admin/stats', headers: { authorization } });
      expectProblem(response, 401, 'unauthorized');
      expect(response.headers['www-authenticate']).toMatch(/^Bearer\b/);
    }
    const ok = await app.inject({ method: 'GET', url: '/admin/stats', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.statusCode).toBe(200);
    statsSchema.parse(ok.json());
    // The token works from any address; loopback alone is not enough once a token is set.
    const remote = await app.inject({
      method: 'GET',
      url: '/admin/jobs',
      remoteAddress: '10.1.2.3',
      headers: { authorization: `bearer ${TOKEN}` },
    });
    expect(remote.statusCode).toBe(200);
  });
});

describe('GET /admin/jobs', () => {
  it('takes the filters and paging of GET /v1/jobs', async () => {
    const { app } = await scope.open({ adminToken: TOKEN });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const jobs: Job[] = [];
    for (const type of ['echo', 'sleep', 'echo']) {
      if (jobs.length > 0) await clockPast(Date.parse(jobs[jobs.length - 1]!.created_at));
      jobs.push(await createJob(app, type === 'sleep' ? { type, input: { ms: 10 } } : { type }));
    }
    const [a, b, c] = jobs as [Job, Job, Job];
    await app.inject({ method: 'POST', url: `/v1/jobs/${c.id}/cancel` });

    expect((await listAdmin(app, '', auth)).data.map((j) => j.id)).toEqual([c.id, b.id, a.id]);
    expect((await listAdmin(app, '?order=asc', auth)).data.map((j) => j.id)).toEqual([a.id, b.id, c.id]);
    expect((await listAdmin(app, '?type=echo', auth)).data.map((j) => j.id)).toEqual([c.id, a.id]);
    expect((await listAdmin(app, '?status=canceled', auth)).data.map((j) => j.id)).toEqual([c.id]);
    expect(
      (await listAdmin(app, `?created_after=${encodeURIComponent(a.created_at)}`, auth)).data.map((j) => j.id),
    ).toEqual([c.id, b.id]);
    const first = await listAdmin(app, '?limit=2', auth);
    expect(first.data.map((j) => j.id)).toEqual([c.id, b.id]);
    const second = await listAdmin(app, `?limit=2&cursor=${first.next_cursor!}`, auth);
    expect(second).toEqual({ data: [expect.objectContaining({ id: a.id })], next_cursor: null });

    for (const query of ['?limit=0', '?status=bogus', '?stuck=maybe', '?colour=blue', '?cursor=nope']) {
      expectProblem(await admin(app, 'GET', `/admin/jobs${query}`, auth), 400, 'bad-request');
    }
  });

  it('stuck=true lists only running jobs whose lease lapsed', async () => {
    const { app, store } = await scope.open();
    // The healthy one first: a later claim would re-queue the lapsed one.
    const healthy = await createJob(app, { type: 'sleep', input: { ms: 10 } });
    await store.claim({ types: ['sleep'], max: 1, workerId: 'w', leaseId: 'l2', leaseMs: 60_000, now: Date.now() });
    const stuck = await createJob(app, { type: 'sleep', input: { ms: 10 } });
    const claimedAt = Date.now();
    const [claimed] = await store.claim({
      types: ['sleep'],
      max: 1,
      workerId: 'w',
      leaseId: 'l',
      leaseMs: 1,
      now: claimedAt,
    });
    expect(claimed?.id).toBe(stuck.id);
    const queued = await createJob(app, { type: 'echo' });
    await waitFor(() => Date.now() > claimedAt + 1, { intervalMs: 1, what: 'the lease to lapse' });

    const stuckList = await listAdmin(app, '?stuck=true');
    expect(stuckList.data.map((j) => j.id)).toEqual([stuck.id]);
    expect(stuckList.data[0]).toMatchObject({ status: 'running', attempt: 1 });
    expect((await listAdmin(app, '?stuck=true&type=echo')).data).toEqual([]);
    const all = await listAdmin(app, '?stuck=false');
    expect(all.data.map((j) => j.id).sort()).toEqual([stuck.id, healthy.id, queued.id].sort());
  });
});

describe('GET /admin/stats', () => {
  it('counts per status and per type, queue depth, delayed, ages and the pool', async () => {
    const { app, store } = await scope.open();
    const empty = statsSchema.parse((await admin(app, 'GET', '/admin/stats')).json());
    expect(empty).toMatchObject({
      store: 'memory',
      counts: { queued: 0, running: 0, succeeded: 0, failed: 0, canceled: 0 },
      by_type: {},
      queue_depth: 0,
      delayed: 0,
      oldest_queued_age_s: null,
      finished_last_minute: 0,
      pool: { concurrency: 0, busy: 0, started: 0, succeeded: 0, failed: 0 },
    });

    const running = await createJob(app, { type: 'sleep', input: { ms: 10 } });
    const [claimed] = await store.claim({
      types: ['sleep'],
      max: 1,
      workerId: 'w',
      leaseId: 'l',
      leaseMs: 60_000,
      now: Date.now(),
    });
    expect(claimed?.id).toBe(running.id);
    const ready = await createJob(app, { type: 'echo' });
    await createJob(app, { type: 'sleep', input: { ms: 10 }, delay_s: 60 });
    const canceled = await createJob(app, { type: 'echo' });
    await app.inject({ method: 'POST', url: `/v1/jobs/${canceled.id}/cancel` });
    await clockPast(Date.parse(ready.created_at));

    const response = await admin(app, 'GET', '/admin/stats');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const stats = statsSchema.parse(response.json());
    expect(stats.store).toBe('memory');
    expect(stats.counts).toEqual({ queued: 2, running: 1, succeeded: 0, failed: 0, canceled: 1 });
    expect(stats.by_type).toEqual({
      echo: { queued: 1, running: 0, succeeded: 0, failed: 0, canceled: 1 },
      sleep: { queued: 1, running: 1, succeeded: 0, failed: 0, canceled: 0 },
    });
    expect(stats.queue_depth).toBe(1);
    expect(stats.delayed).toBe(1);
    expect(stats.oldest_queued_age_s).toBeGreaterThan(0);
    expect(stats.oldest_queued_age_s).toBeLessThan(60);
    expect(stats.finished_last_minute).toBe(1);
    expect(stats.pool).toMatchObject({ worker_id: '', concurrency: 0, busy: 0 });
  });

  it("reports the pool's concurrency, busy slots and counters", async () => {
    const block = blockingHandler();
    const { app, pool } = await scope.open({ workers: true, concurrency: 3, extraHandlers: [block.handler] });
    const echo = await createJob(app, { type: 'echo' });
    await waitForStatus(app, echo.id, 'succeeded');
    const job = await createJob(app, { type: 'block' });
    await waitFor(() => block.started.has(job.id), { what: 'the blocking job to start' });
    const stats = statsSchema.parse((await admin(app, 'GET', '/admin/stats')).json());
    expect(stats.pool).toEqual({
      worker_id: pool!.workerId,
      concurrency: 3,
      busy: 1,
      started: 2,
      succeeded: 1,
      failed: 0,
    });
    expect(stats.counts.running).toBe(1);
    expect(stats.counts.succeeded).toBe(1);
    expect(stats.finished_last_minute).toBe(1);
    await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
    await waitForStatus(app, job.id, 'canceled');
  });
});

describe('GET /admin/stats: tenants and keys at their cap', () => {
  const ACME_KEY = 'acme-key-0123456789abcdef';
  const GLOBEX_KEY = 'globex-key-0123456789abcdef';
  const apiKeys = parseApiKeys([
    { key: ACME_KEY, tenant: 'acme' },
    { key: GLOBEX_KEY, tenant: 'globex' },
  ]);

  /** A ready job of `type` with a concurrency key, straight into the store (no handler needs to know the type). */
  const keyedJob = (store: JobStore, type: string, tenant: string, key: string) => {
    const now = Date.now();
    return store.create({
      id: newJobId(now),
      type,
      tenant,
      input: {},
      metadata: {},
      priority: 0,
      maxAttempts: 1,
      timeoutS: null,
      createdAt: now,
      runAt: now,
      concurrencyKey: key,
    });
  };

  it("lists each tenant's queued and running jobs, the largest backlog first", async () => {
    const { app, store } = await scope.open({ apiKeys });
    const submit = async (key: string, body: Record<string, unknown>) => {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { authorization: `Bearer ${key}` },
        payload: body,
      });
      expect(response.statusCode, response.body).toBe(202);
    };
    await submit(GLOBEX_KEY, { type: 'echo', input: { value: 1 } });
    await submit(ACME_KEY, { type: 'sleep', input: { ms: 10 } });
    for (const value of [1, 2]) await submit(ACME_KEY, { type: 'echo', input: { value } });
    // acme's sleep job runs: the only sleep job there is.
    const claimed = await store.claim({
      types: ['sleep'],
      max: 1,
      workerId: 'w',
      leaseId: 'l',
      leaseMs: 60_000,
      now: Date.now(),
    });
    expect(claimed.map((job) => job.tenant)).toEqual(['acme']);

    const stats = statsSchema.parse((await admin(app, 'GET', '/admin/stats')).json());
    expect(stats.tenants).toEqual([
      { tenant: 'acme', queued: 2, running: 1 },
      { tenant: 'globex', queued: 1, running: 0 },
    ]);
    expect(stats.keys_at_cap).toEqual({});
  });

  it('counts, per type, the concurrency keys whose ready jobs wait at key_concurrency', async () => {
    const { app, store } = await scope.open();
    const empty = statsSchema.parse((await admin(app, 'GET', '/admin/stats')).json());
    expect(empty.tenants).toEqual([]);
    expect(empty.keys_at_cap).toEqual({});

    const type = 'keyed';
    const first = await keyedJob(store, type, '-', 'customer-1');
    await clockPast(first.createdAt);
    await keyedJob(store, type, '-', 'customer-1');
    const [claimed] = await store.claim({
      types: [type],
      limits: { [type]: { keyConcurrency: 1 } },
      max: 1,
      workerId: 'w',
      leaseId: 'l',
      leaseMs: 30_000,
      now: Date.now(),
    });
    expect(claimed?.id).toBe(first.id);

    const stats = statsSchema.parse((await admin(app, 'GET', '/admin/stats')).json());
    expect(stats.keys_at_cap).toEqual({ [type]: 1 });
    expect(stats.tenants).toEqual([{ tenant: '-', queued: 1, running: 1 }]);
    expect(stats.by_type[type]).toMatchObject({ queued: 1, running: 1 });
  });
});

describe('POST /admin/jobs/{id}/retry', () => {
  it('re-queues a failed job: attempt keeps counting, max_attempts grows by the budget, and it then succeeds', async () => {
    const { app } = await scope.open({ workers: true });
    const job = await createJob(app, { type: 'sleep', input: { ms: 0, steps: 1, fail_times: 2 }, max_attempts: 2 });
    const failed = await waitForStatus(app, job.id, 'failed', 'succeeded');
    expect(failed).toMatchObject({ status: 'failed', attempt: 2, max_attempts: 2 });

    const response = await admin(app, 'POST', `/admin/jobs/${job.id}/retry`);
    expect(response.statusCode, response.body).toBe(200);
    const retried = parseJob(response);
    expect(retried).toMatchObject({
      id: job.id,
      status: 'queued',
      done: false,
      attempt: 2,
      max_attempts: 4,
      completed_at: null,
      expires_at: null,
    });
    expect(retried.version).toBeGreaterThan(failed.version);

    const succeeded = await waitForStatus(app, job.id, 'succeeded', 'failed');
    expect(succeeded).toMatchObject({
      status: 'succeeded',
      attempt: 3,
      max_attempts: 4,
      error: null,
      result: { slept_ms: 0, attempt: 3 },
    });
  });

  it('re-queues a canceled job', async () => {
    const { app } = await scope.open();
    const job = await createJob(app, { type: 'echo' });
    await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
    const response = await admin(app, 'POST', `/admin/jobs/${job.id}/retry`);
    expect(response.statusCode).toBe(200);
    expect(parseJob(response)).toMatchObject({ status: 'queued', attempt: 0, max_attempts: 3, done: false });
  });

  it('409 job-not-retryable for a queued job, 404 for an unknown one', async () => {
    const { app } = await scope.open();
    const job = await createJob(app, { type: 'echo' });
    expectProblem(await admin(app, 'POST', `/admin/jobs/${job.id}/retry`), 409, 'job-not-retryable');
    expectProblem(await admin(app, 'POST', `/admin/jobs/${newJobId(Date.now())}/retry`), 404, 'job-not-found');
    expectProblem(await admin(app, 'POST', '/admin/jobs/abc/retry'), 404, 'job-not-found');
  });
});

describe('DELETE /admin/jobs', () => {
  it('purges finished jobs by status and age, never active ones', async () => {
    const { app } = await scope.open({ workers: true });
    const succeeded = [
      await createJob(app, { type: 'echo', input: { value: 1 } }),
      await createJob(app, { type: 'echo', input: { value: 2 } }),
    ];
    const failed = await createJob(app, { type: 'sleep', input: { ms: 0, steps: 1, fail_times: 1 }, max_attempts: 1 });
    const delayed = await createJob(app, { type: 'echo', delay_s: 60 });
    const finished = [
      ...(await Promise.all(succeeded.map((job) => waitForStatus(app, job.id, 'succeeded')))),
      await waitForStatus(app, failed.id, 'failed'),
    ];

    const none = await admin(app, 'DELETE', '/admin/jobs?status=succeeded&older_than_s=3600');
    expect(none.statusCode).toBe(200);
    expect(none.json()).toEqual({ deleted: 0 });

    await clockPast(Math.max(...finished.map((job) => Date.parse(job.completed_at!))));
    const purged = await admin(app, 'DELETE', '/admin/jobs?status=succeeded&older_than_s=0');
    expect(purged.statusCode).toBe(200);
    expect(purged.headers['content-type']).toMatch(/^application\/json/);
    expect(purged.json()).toEqual({ deleted: 2 });
    for (const job of succeeded)
      expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` }), 410, 'job-gone');
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${failed.id}` })).statusCode).toBe(200);

    const rest = await admin(app, 'DELETE', '/admin/jobs');
    expect(rest.json()).toEqual({ deleted: 1 });
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${failed.id}` }), 410, 'job-gone');
    const stillThere = await app.inject({ method: 'GET', url: `/v1/jobs/${delayed.id}` });
    expect(stillThere.statusCode).toBe(200);
    expect(parseJob(stillThere).status).toBe('queued');

    expectProblem(await admin(app, 'DELETE', '/admin/jobs?status=running'), 400, 'bad-request');
    expectProblem(await admin(app, 'DELETE', '/admin/jobs?older_than_s=-1'), 400, 'bad-request');
  });

  it('older_than_s=0 also purges a job that finished in this very millisecond ("at least 0 s ago")', async () => {
    const { app, store } = await scope.open();
    const job = await createJob(app, { type: 'echo' });
    const now = Date.now();
    await store.claim({ types: ['echo'], max: 1, workerId: 'w', leaseId: 'l', leaseMs: 60_000, now });
    await store.finish({ jobId: job.id, leaseId: 'l' }, { kind: 'succeeded', result: null }, now);
    // Freeze the clock at the finishing millisecond for the purge request.
    vi.spyOn(Date, 'now').mockReturnValue(now);
    try {
      const response = await admin(app, 'DELETE', '/admin/jobs?older_than_s=0');
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ deleted: 1 });
    } finally {
      vi.restoreAllMocks();
    }
  });
});
