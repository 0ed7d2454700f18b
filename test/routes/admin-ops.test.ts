import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { RedisOpsStore } from '../../src/ops/redis-ops-store.js';
import type { JobStore } from '../../src/store/job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { workerRecord } from '../ops/ops-store.contract.js';
import { createJob, expectProblem, getJob, harnessScope } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef';
const keyId = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 8);
const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator,${ADMIN}:admin` }).ADMIN_KEYS!;

const call = (app: FastifyInstance, method: InjectOptions['method'], url: string, key: string, payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
  });

interface AuditItem {
  id: string;
  at: string;
  actor: { key_id: string; role: string };
  action: string;
  target: string;
  count: number;
  detail: Record<string, unknown>;
}
const auditLog = async (app: FastifyInstance, query = '') => {
  const response = await call(app, 'GET', `/admin/audit${query}`, VIEWER);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ data: AuditItem[]; next_cursor: string | null }>();
};

interface TypeItem {
  type: string;
  paused: { by: string; reason: string; at: string } | null;
  counts: Record<string, number>;
  queued: number;
  running: number;
  live_workers: number;
  alarm: boolean;
}
const typesOf = async (app: FastifyInstance) => {
  const response = await call(app, 'GET', '/admin/types', VIEWER);
  expect(response.statusCode, response.body).toBe(200);
  return Object.fromEntries(response.json<{ data: TypeItem[] }>().data.map((item) => [item.type, item]));
};

/** Claims every queued echo job (they are running then), to finish some as failed. */
async function claimAll(store: JobStore): Promise<void> {
  await store.claim({
    types: ['echo'],
    max: 100,
    workerId: 'test-worker',
    leaseId: 'lease-1',
    leaseMs: 60_000,
    now: Date.now(),
  });
}
async function fail(store: JobStore, id: string): Promise<void> {
  const result = await store.finish(
    { jobId: id, leaseId: 'lease-1' },
    { kind: 'failed', error: { code: 'boom', message: 'it broke', retryable: false } },
    Date.now(),
  );
  expect(result).toMatchObject({ status: 'failed' });
}

describe('admin ops: job types', () => {
  it('pause and resume are kept with who and why, shown in the types list, and audited', async () => {
    const { app, ops } = await scope.open({ adminKeys });
    const before = Date.now();
    const paused = await call(app, 'POST', '/admin/types/sleep/pause', ADMIN, { reason: '  downstream API is down  ' });
    expect(paused.statusCode, paused.body).toBe(200);
    const body = paused.json<{ type: string; paused: { by: string; reason: string; at: string }; changed: boolean }>();
    expect(body).toMatchObject({
      type: 'sleep',
      changed: true,
      paused: { by: keyId(ADMIN), reason: 'downstream API is down' },
    });
    expect(Date.parse(body.paused.at)).toBeGreaterThanOrEqual(before - 1);
    expect(await ops.pausedTypes()).toEqual({
      sleep: { by: keyId(ADMIN), reason: 'downstream API is down', at: Date.parse(body.paused.at) },
    });

    const types = await typesOf(app);
    expect(types.sleep!.paused).toEqual(body.paused);
    expect(types.echo!.paused).toBeNull();

    const resumed = await call(app, 'POST', '/admin/types/sleep/resume', ADMIN);
    expect(resumed.statusCode, resumed.body).toBe(200);
    expect(resumed.json()).toEqual({ type: 'sleep', paused: null, changed: true });
    expect((await call(app, 'POST', '/admin/types/sleep/resume', ADMIN)).json()).toMatchObject({ changed: false });
    expect((await typesOf(app)).sleep!.paused).toBeNull();
    expect(await ops.pausedTypes()).toEqual({});

    const { data } = await auditLog(app);
    expect(data.map((entry) => [entry.action, entry.target, entry.count])).toEqual([
      ['type.resume', 'sleep', 0],
      ['type.resume', 'sleep', 1],
      ['type.pause', 'sleep', 1],
    ]);
    expect(data[2]!.actor).toEqual({ key_id: keyId(ADMIN), role: 'admin' });
    expect(data[2]!.detail).toEqual({ reason: 'downstream API is down' });
    expect(data[1]!.detail).toEqual({ paused_by: keyId(ADMIN), reason: 'downstream API is down' });
  });

  it('pausing needs the admin role and a reason', async () => {
    const { app, ops } = await scope.open({ adminKeys });
    for (const key of [VIEWER, OPERATOR]) {
      const refused = await call(app, 'POST', '/admin/types/echo/pause', key, { reason: 'x' });
      expect(expectProblem(refused, 403, 'forbidden').detail).toMatch(/needs the admin role/);
      expectProblem(await call(app, 'POST', '/admin/types/echo/resume', key), 403, 'forbidden');
    }
    const blank = expectProblem(
      await call(app, 'POST', '/admin/types/echo/pause', ADMIN, { reason: '   ' }),
      422,
      'validation-failed',
    );
    expect(blank.errors?.[0]?.pointer).toBe('/reason');
    expectProblem(
      await call(app, 'POST', '/admin/types/echo/pause', ADMIN, { reason: 'r'.repeat(501) }),
      422,
      'validation-failed',
    );
    expectProblem(await call(app, 'POST', '/admin/types/echo/pause', ADMIN, {}), 422, 'validation-failed');
    expect(await ops.pausedTypes()).toEqual({});
    expect((await auditLog(app)).data).toEqual([]);
  });

  it('lists every type with counts, and raises the alarm for a backlog no live worker serves', async () => {
    const { app, ops } = await scope.open({ adminKeys });
    await createJob(app, { type: 'echo', input: { value: 1 } });
    await createJob(app, { type: 'echo', input: { value: 2 } });
    let types = await typesOf(app);
    expect(Object.keys(types)).toEqual(['echo', 'sleep']);
    expect(types.echo).toMatchObject({
      queued: 2,
      running: 0,
      live_workers: 0,
      alarm: true,
      counts: { queued: 2, running: 0, succeeded: 0, failed: 0, canceled: 0 },
    });
    expect(types.sleep).toMatchObject({ queued: 0, live_workers: 0, alarm: false });

    // A stale worker (no beat for a minute), a draining one and one for another type do not serve it.
    await ops.beat(workerRecord({ id: 'stale', types: ['echo'], beat_at: Date.now() - 60_000 }));
    await ops.beat(workerRecord({ id: 'draining', types: ['echo'], draining: true }));
    await ops.beat(workerRecord({ id: 'sleeper', types: ['sleep'] }));
    types = await typesOf(app);
    expect(types.echo).toMatchObject({ live_workers: 0, alarm: true });
    expect(types.sleep).toMatchObject({ live_workers: 1, alarm: false });

    await ops.beat(workerRecord({ id: 'live', types: ['echo', 'sleep'] }));
    types = await typesOf(app);
    expect(types.echo).toMatchObject({ queued: 2, live_workers: 1, alarm: false });
    expect(types.sleep).toMatchObject({ live_workers: 2 });
  });
});

describe('admin ops: workers', () => {
  interface WorkerItem {
    id: string;
    state: string;
    beat_age_s: number;
    draining: boolean;
    slots_busy: number;
    beat_at: string;
    started_at: string;
    job_ids: string[];
  }
  const workersOf = async (app: FastifyInstance) => {
    const response = await call(app, 'GET', '/admin/workers', VIEWER);
    expect(response.statusCode, response.body).toBe(200);
    return response.json<{ data: WorkerItem[] }>().data;
  };

  it('lists the registry with state and beat age; operators drain and resume a worker', async () => {
    const { app, ops } = await scope.open({ adminKeys });
    const now = Date.now();
    await ops.beat(workerRecord({ id: 'w-live', beat_at: now - 2000, slots_busy: 3 }));
    await ops.beat(workerRecord({ id: 'w-stale', beat_at: now - 120_000 }));
    await ops.beat(workerRecord({ id: 'w-dead', beat_at: now - 600_000 }));
    const listed = await workersOf(app);
    expect(listed.map((worker) => [worker.id, worker.state, worker.draining])).toEqual([
      ['w-dead', 'dead', false],
      ['w-live', 'live', false],
      ['w-stale', 'stale', false],
    ]);
    const live = listed.find((worker) => worker.id === 'w-live')!;
    expect(live.beat_age_s).toBeGreaterThanOrEqual(2);
    expect(live.beat_age_s).toBeLessThan(10);
    expect(live).toMatchObject({
      slots_busy: 3,
      beat_at: new Date(now - 2000).toISOString(),
      job_ids: ['01JD3M5W6SX1T4KQ8V0ZC2N7GH'],
    });
    expect(listed.find((worker) => worker.id === 'w-stale')!.beat_age_s).toBeGreaterThanOrEqual(120);

    expectProblem(await call(app, 'POST', '/admin/workers/w-live/drain', VIEWER), 403, 'forbidden');
    const drained = await call(app, 'POST', '/admin/workers/w-live/drain', OPERATOR);
    expect(drained.statusCode, drained.body).toBe(200);
    expect(drained.json()).toEqual({ id: 'w-live', draining: true });
    expect(await ops.isDraining('w-live')).toBe(true);
    // Its next beat does not undo the drain.
    await ops.beat(workerRecord({ id: 'w-live', draining: false }));
    expect((await workersOf(app)).find((worker) => worker.id === 'w-live')!.draining).toBe(true);

    const resumed = await call(app, 'POST', '/admin/workers/w-live/resume', OPERATOR);
    expect(resumed.json()).toEqual({ id: 'w-live', draining: false });
    expect(await ops.isDraining('w-live')).toBe(false);
    expect((await workersOf(app)).find((worker) => worker.id === 'w-live')!.draining).toBe(false);

    const unknown = expectProblem(
      await call(app, 'POST', '/admin/workers/nobody/drain', OPERATOR),
      404,
      'worker-not-found',
    );
    expect(unknown.detail).toMatch(/nobody/);
    expectProblem(await call(app, 'POST', '/admin/workers/nobody/resume', OPERATOR), 404, 'worker-not-found');

    const { data } = await auditLog(app);
    expect(data.map((entry) => [entry.action, entry.target, entry.count, entry.actor.role])).toEqual([
      ['worker.resume', 'w-live', 1, 'operator'],
      ['worker.drain', 'w-live', 1, 'operator'],
    ]);
  });
});

describe('admin ops: bulk actions', () => {
  it('a viewer cannot act in bulk, not even a dry run', async () => {
    const { app } = await scope.open({ adminKeys });
    const job = await createJob(app, { type: 'echo' });
    expectProblem(
      await call(app, 'POST', '/admin/bulk', VIEWER, { action: 'cancel', ids: [job.id] }),
      403,
      'forbidden',
    );
    expectProblem(
      await call(app, 'POST', '/admin/bulk', VIEWER, { action: 'delete', filter: {}, dry_run: true }),
      403,
      'forbidden',
    );
    expect((await getJob(app, job.id)).status).toBe('queued');
  });

  it('by ids: acts at once, skipping jobs the action does not apply to and unknown ids', async () => {
    const { app } = await scope.open({ adminKeys });
    const [a, b, c] = [
      await createJob(app, { type: 'echo' }),
      await createJob(app, { type: 'echo' }),
      await createJob(app, { type: 'echo' }),
    ];
    const cancel = await call(app, 'POST', '/admin/bulk', OPERATOR, {
      action: 'cancel',
      ids: [a.id, b.id, a.id, '01JD3M5W6SX1T4KQ8V0ZC2N7GH', 'not-an-id'],
    });
    expect(cancel.statusCode, cancel.body).toBe(200);
    expect(cancel.json()).toEqual({ action: 'cancel', affected: 2, skipped: 2 });
    expect((await getJob(app, a.id)).status).toBe('canceled');
    expect((await getJob(app, c.id)).status).toBe('queued');

    // retry: only failed or canceled jobs; the queued one is skipped.
    const retry = await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', ids: [a.id, b.id, c.id] });
    expect(retry.json()).toEqual({ action: 'retry', affected: 2, skipped: 1 });
    expect((await getJob(app, a.id)).status).toBe('queued');

    const remove = await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'delete', ids: [c.id] });
    expect(remove.json()).toEqual({ action: 'delete', affected: 1, skipped: 0 });
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${c.id}` }), 410, 'job-gone');

    const { data } = await auditLog(app);
    expect(data.map((entry) => [entry.action, entry.target, entry.count, entry.detail.skipped])).toEqual([
      ['bulk.delete', c.id, 1, 0],
      ['bulk.retry', 'ids', 2, 1],
      ['bulk.cancel', 'ids', 2, 2],
    ]);
  });

  it('by filter: a dry run snapshots the matching jobs; acting touches exactly those, once', async () => {
    const { app, store } = await scope.open({ adminKeys });
    const a = await createJob(app, { type: 'echo', input: { value: 'a' } });
    const b = await createJob(app, { type: 'echo', input: { value: 'b' } });
    await claimAll(store);
    await fail(store, a.id);

    const dryRun = await call(app, 'POST', '/admin/bulk', OPERATOR, {
      action: 'retry',
      filter: { status: 'failed', type: 'echo' },
      dry_run: true,
    });
    expect(dryRun.statusCode, dryRun.body).toBe(200);
    const {
      snapshot,
      count,
      truncated,
      expires_at: expiresAt,
    } = dryRun.json<{ snapshot: string; count: number; truncated: boolean; expires_at: string }>();
    expect({ count, truncated }).toEqual({ count: 1, truncated: false });
    expect(snapshot).toMatch(/^[\w-]{22,}$/);
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(9 * 60_000);
    // A dry run changes nothing and is not an audited write.
    expect((await getJob(app, a.id)).status).toBe('failed');
    expect((await auditLog(app)).data).toEqual([]);

    // b fails after the dry run: it matches the filter now, but is not in the snapshot.
    await fail(store, b.id);
    const mismatch = await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'delete', snapshot });
    expect(expectProblem(mismatch, 409, 'snapshot-mismatch').errors?.[0]?.pointer).toBe('/snapshot');

    const again = await call(app, 'POST', '/admin/bulk', OPERATOR, {
      action: 'retry',
      filter: { status: 'failed', type: 'echo' },
      dry_run: true,
    });
    const token = again.json<{ snapshot: string; count: number }>();
    expect(token.count).toBe(2);
    // a is retried by someone else meanwhile: no longer failed, so the act skips it.
    expect((await call(app, 'POST', `/admin/jobs/${a.id}/retry`, OPERATOR)).statusCode).toBe(200);

    const acted = await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', snapshot: token.snapshot });
    expect(acted.statusCode, acted.body).toBe(200);
    expect(acted.json()).toEqual({ action: 'retry', affected: 1, skipped: 1 });
    expect((await getJob(app, b.id)).status).toBe('queued');

    // A snapshot acts once.
    const used = await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', snapshot: token.snapshot });
    expect(expectProblem(used, 410, 'snapshot-gone').errors?.[0]?.pointer).toBe('/snapshot');
    expectProblem(
      await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', snapshot: 'made-up-token-0123456789' }),
      410,
      'snapshot-gone',
    );

    const [entry] = (await auditLog(app)).data.filter((each) => each.action === 'bulk.retry');
    expect(entry).toMatchObject({ target: 'filter', count: 1, actor: { key_id: keyId(OPERATOR), role: 'operator' } });
    expect(entry!.detail).toMatchObject({ skipped: 1, snapshot_size: 2, dry_run_by: keyId(OPERATOR) });
  });

  it('a job that becomes failed after the dry run is not retried by the act', async () => {
    const { app, store } = await scope.open({ adminKeys });
    const early = await createJob(app, { type: 'echo', input: { value: 'early' } });
    const late = await createJob(app, { type: 'echo', input: { value: 'late' } });
    await claimAll(store);
    await fail(store, early.id);
    const dryRun = await call(app, 'POST', '/admin/bulk', OPERATOR, {
      action: 'retry',
      filter: { status: ['failed'] },
      dry_run: true,
    });
    const { snapshot, count } = dryRun.json<{ snapshot: string; count: number }>();
    expect(count).toBe(1);
    await fail(store, late.id);
    const acted = await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', snapshot });
    expect(acted.json()).toEqual({ action: 'retry', affected: 1, skipped: 0 });
    expect((await getJob(app, early.id)).status).toBe('queued');
    expect((await getJob(app, late.id)).status).toBe('failed');
  });

  it('by filter, cancel skips a job that finished after the dry run', async () => {
    const { app } = await scope.open({ adminKeys });
    const jobs = [
      await createJob(app, { type: 'sleep', input: { ms: 1 } }),
      await createJob(app, { type: 'sleep', input: { ms: 2 } }),
    ];
    const dryRun = await call(app, 'POST', '/admin/bulk', ADMIN, {
      action: 'cancel',
      filter: { status: 'queued', type: 'sleep' },
      dry_run: true,
    });
    const { snapshot, count } = dryRun.json<{ snapshot: string; count: number }>();
    expect(count).toBe(2);
    await app.inject({ method: 'POST', url: `/v1/jobs/${jobs[0]!.id}/cancel` });
    const acted = await call(app, 'POST', '/admin/bulk', ADMIN, { action: 'cancel', snapshot });
    expect(acted.json()).toEqual({ action: 'cancel', affected: 1, skipped: 1 });
    expect((await getJob(app, jobs[1]!.id)).status).toBe('canceled');
  });

  it('refuses a filter without a dry run, and a body naming none or several of ids, filter, snapshot', async () => {
    const { app } = await scope.open({ adminKeys });
    const job = await createJob(app, { type: 'echo' });
    const noDryRun = expectProblem(
      await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'delete', filter: { type: 'echo' } }),
      422,
      'validation-failed',
    );
    expect(noDryRun.errors?.[0]?.pointer).toBe('/dry_run');
    expectProblem(await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'delete' }), 422, 'validation-failed');
    const both = expectProblem(
      await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'delete', ids: [job.id], filter: {} }),
      422,
      'validation-failed',
    );
    expect(both.errors?.map((error) => error.pointer)).toEqual(['/ids', '/filter']);
    expectProblem(
      await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'purge', ids: [job.id] }),
      422,
      'validation-failed',
    );
    expectProblem(
      await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'delete', filter: { colour: 'red' }, dry_run: true }),
      422,
      'validation-failed',
    );
    expectProblem(
      await call(app, 'POST', '/admin/bulk', OPERATOR, {
        action: 'delete',
        ids: Array.from({ length: 1001 }, () => job.id),
      }),
      422,
      'validation-failed',
    );
    expect((await getJob(app, job.id)).status).toBe('queued');
  });

  it('by ids with a dry run: counts the jobs that exist and snapshots them', async () => {
    const { app } = await scope.open({ adminKeys });
    const job = await createJob(app, { type: 'echo' });
    const dryRun = await call(app, 'POST', '/admin/bulk', OPERATOR, {
      action: 'delete',
      ids: [job.id, '01JD3M5W6SX1T4KQ8V0ZC2N7GH'],
      dry_run: true,
    });
    const { snapshot, count } = dryRun.json<{ snapshot: string; count: number }>();
    expect(count).toBe(1);
    expect((await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'delete', snapshot })).json()).toEqual({
      action: 'delete',
      affected: 1,
      skipped: 0,
    });
  });
});

describe('admin ops: history and audit', () => {
  it('history returns recorded samples per bucket and type, with percentiles', async () => {
    const { app, ops } = await scope.open({ adminKeys });
    const now = Date.now();
    await ops.recordFinished([
      ...Array.from({ length: 19 }, () => ({
        type: 'echo',
        status: 'succeeded' as const,
        waitMs: 50,
        runMs: 200,
        at: now,
      })),
      { type: 'echo', status: 'failed', waitMs: 50, runMs: 4000, at: now },
      { type: 'echo', status: 'canceled', waitMs: null, runMs: null, at: now - 20 * 60_000 },
    ]);
    await ops.recordDepth(now, { echo: 12 });

    const response = await call(app, 'GET', '/admin/stats/history?window=1h', VIEWER);
    expect(response.statusCode, response.body).toBe(200);
    const history = response.json<{
      window: string;
      bucket_s: number;
      from: string;
      to: string;
      buckets: {
        at: string;
        types: Record<
          string,
          {
            succeeded: number;
            failed: number;
            canceled: number;
            finished: number;
            depth: number | null;
            run_ms: { p50: number; p95: number; p99: number; count: number } | null;
            wait_ms: { p50: number } | null;
          }
        >;
      }[];
    }>();
    expect(history).toMatchObject({ window: '1h', bucket_s: 60 });
    expect(history.buckets).toHaveLength(60);
    expect(Date.parse(history.to) - Date.parse(history.from)).toBe(3_600_000);
    const last = history.buckets[59]!;
    expect(last.at).toBe(new Date(Math.floor(now / 60_000) * 60_000).toISOString());
    expect(last.types.echo).toMatchObject({ succeeded: 19, failed: 1, canceled: 0, finished: 20, depth: 12 });
    const run = last.types.echo!.run_ms!;
    expect(run.count).toBe(20);
    expect(Math.abs(run.p50 - 200) / 200).toBeLessThan(0.1);
    expect(Math.abs(run.p95 - 200) / 200).toBeLessThan(0.1);
    expect(Math.abs(run.p99 - 4000) / 4000).toBeLessThan(0.1);
    expect(Math.abs(last.types.echo!.wait_ms!.p50 - 50) / 50).toBeLessThan(0.1);
    const earlier = history.buckets.filter((bucket) => bucket.types.echo?.canceled === 1);
    expect(earlier).toHaveLength(1);
    expect(earlier[0]!.types.echo).toMatchObject({ finished: 1, depth: null, run_ms: null, wait_ms: null });

    const day = (await call(app, 'GET', '/admin/stats/history?window=24h', VIEWER)).json<{
      bucket_s: number;
      buckets: unknown[];
    }>();
    expect(day.bucket_s).toBe(600);
    expect(day.buckets).toHaveLength(144);
    const week = (await call(app, 'GET', '/admin/stats/history?window=7d', VIEWER)).json<{
      bucket_s: number;
      buckets: { types: Record<string, { finished: number }> }[];
    }>();
    expect(week.bucket_s).toBe(3600);
    expect(week.buckets.reduce((total, bucket) => total + (bucket.types.echo?.finished ?? 0), 0)).toBe(21);
    expect((await call(app, 'GET', '/admin/stats/history', VIEWER)).json()).toMatchObject({ window: '1h' });
    expectProblem(await call(app, 'GET', '/admin/stats/history?window=2h', VIEWER), 400, 'bad-request');
  });

  it('the audit log lists writes newest first with their counts, paged by cursor', async () => {
    const { app } = await scope.open({ adminKeys });
    const jobs = [
      await createJob(app, { type: 'echo' }),
      await createJob(app, { type: 'echo' }),
      await createJob(app, { type: 'echo' }),
    ];
    await call(app, 'POST', '/admin/types/echo/pause', ADMIN, { reason: 'one' });
    await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'cancel', ids: jobs.map((job) => job.id) });
    await call(app, 'POST', '/admin/types/echo/resume', ADMIN);

    const first = await auditLog(app, '?limit=2');
    expect(first.data.map((entry) => [entry.action, entry.count, entry.actor.role])).toEqual([
      ['type.resume', 1, 'admin'],
      ['bulk.cancel', 3, 'operator'],
    ]);
    expect(Date.parse(first.data[0]!.at)).toBeGreaterThanOrEqual(Date.parse(first.data[1]!.at));
    expect(first.next_cursor).not.toBeNull();
    const second = await auditLog(app, `?limit=2&cursor=${first.next_cursor}`);
    expect(second.data.map((entry) => [entry.action, entry.target, entry.count])).toEqual([['type.pause', 'echo', 1]]);
    expect(second.next_cursor).toBeNull();
    expectProblem(await call(app, 'GET', '/admin/audit?cursor=abc', VIEWER), 400, 'bad-request');
    expectProblem(await call(app, 'GET', '/admin/audit?limit=0', VIEWER), 400, 'bad-request');
  });
});

describe('admin ops on Redis (the ops store beside the job store, one prefix)', () => {
  it('pauses, snapshots and acts once, audits, and keeps history', async () => {
    const store = await RedisJobStore.connect({
      url: inject('redisUrl'),
      keyPrefix: `t${randomUUID().slice(0, 8)}`,
      jobTtlMs: 60_000,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 1000,
    });
    const ops = new RedisOpsStore(store.redis, store.keys.base);
    const { app } = await scope.open({ adminKeys, store, ops });

    expect((await call(app, 'POST', '/admin/types/echo/pause', ADMIN, { reason: 'maintenance' })).statusCode).toBe(200);
    expect((await typesOf(app)).echo!.paused).toMatchObject({ by: keyId(ADMIN), reason: 'maintenance' });

    const early = await createJob(app, { type: 'echo', input: { value: 'early' } });
    const late = await createJob(app, { type: 'echo', input: { value: 'late' } });
    expect((await typesOf(app)).echo).toMatchObject({ queued: 2, alarm: true });
    await claimAll(store);
    await fail(store, early.id);
    const { snapshot, count } = (
      await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', filter: { status: 'failed' }, dry_run: true })
    ).json<{ snapshot: string; count: number }>();
    expect(count).toBe(1);
    await fail(store, late.id);
    expect((await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', snapshot })).json()).toEqual({
      action: 'retry',
      affected: 1,
      skipped: 0,
    });
    expect((await getJob(app, early.id)).status).toBe('queued');
    expect((await getJob(app, late.id)).status).toBe('failed');
    expectProblem(
      await call(app, 'POST', '/admin/bulk', OPERATOR, { action: 'retry', snapshot }),
      410,
      'snapshot-gone',
    );

    expect((await auditLog(app)).data.map((entry) => [entry.action, entry.target, entry.count])).toEqual([
      ['bulk.retry', 'filter', 1],
      ['type.pause', 'echo', 1],
    ]);

    await ops.recordFinished([{ type: 'echo', status: 'failed', waitMs: 5, runMs: 40, at: Date.now() }]);
    const history = (await call(app, 'GET', '/admin/stats/history?window=24h', VIEWER)).json<{
      buckets: { types: Record<string, { failed: number }> }[];
    }>();
    expect(history.buckets.at(-1)!.types.echo).toMatchObject({ failed: 1 });
  });
});
