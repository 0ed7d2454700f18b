import { createHash } from 'node:crypto';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { MemoryScheduleStore } from '../../src/schedules/memory-schedule-store.js';
import { scheduleRecord } from '../schedules/schedule-fixtures.js';
import { expectProblem, harnessScope } from './helpers.js';

/* GET/POST/DELETE /admin/schedules: every tenant's schedules for operators, by role, each change audited. */

const scope = harnessScope();
afterEach(() => scope.closeAll());

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const ACME = 'acme-api-key-0123456789abcdef';
const GLOBEX = 'globex-api-key-0123456789abcdef';
const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator` }).ADMIN_KEYS!;
const apiKeys = parseApiKeys([
  { key: ACME, tenant: 'acme' },
  { key: GLOBEX, tenant: 'globex' },
]);
const keyId = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 8);

interface AdminSchedule {
  id: string;
  tenant: string;
  type: string;
  paused: boolean;
  next_run_at: string | null;
  last_run_at: string | null;
  last_job: { id: string; status: string } | null;
  fires: { created: number; skipped: number; missed: number };
  version: number;
}
interface Page<T> {
  data: T[];
  next_cursor: string | null;
}
interface AuditEntry {
  actor: { key_id: string; role: string };
  action: string;
  target: string;
  count: number;
  detail: Record<string, unknown>;
}

const call = (app: FastifyInstance, method: InjectOptions['method'], url: string, key: string) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${key}` } });

/** A schedule made by its tenant through the client API. */
async function createSchedule(app: FastifyInstance, key: string, body: Record<string, unknown>): Promise<void> {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/schedules',
    headers: { authorization: `Bearer ${key}` },
    payload: { every_s: 3600, type: 'echo', input: {}, ...body },
  });
  expect(response.statusCode, response.body).toBe(201);
}

async function openWithSchedules() {
  const harness = await scope.open({ adminKeys, apiKeys });
  await createSchedule(harness.app, ACME, {
    id: 'nightly',
    cron: '0 3 * * *',
    every_s: undefined,
    timezone: 'Europe/Paris',
  });
  await createSchedule(harness.app, ACME, { id: 'hourly', type: 'sleep', input: { ms: 1 } });
  await createSchedule(harness.app, GLOBEX, { id: 'nightly', paused: true });
  return harness;
}

const adminAudit = async (app: FastifyInstance) =>
  (await call(app, 'GET', '/admin/audit?limit=50', VIEWER))
    .json<Page<AuditEntry>>()
    .data.filter((entry) => entry.actor.role !== 'api');

describe('GET /admin/schedules', () => {
  it("lists every tenant's schedules in tenant and id order, with filters and cursor paging", async () => {
    const { app } = await openWithSchedules();
    const all = await call(app, 'GET', '/admin/schedules', VIEWER);
    expect(all.statusCode, all.body).toBe(200);
    const page = all.json<Page<AdminSchedule>>();
    expect(page.data.map((schedule) => `${schedule.tenant}/${schedule.id}`)).toEqual([
      'acme/hourly',
      'acme/nightly',
      'globex/nightly',
    ]);
    expect(page.next_cursor).toBeNull();
    const [hourly, nightly, paused] = page.data;
    expect(hourly).toMatchObject({ type: 'sleep', paused: false, last_job: null, last_run_at: null });
    expect(Date.parse(hourly!.next_run_at!)).toBeGreaterThan(Date.now());
    expect(nightly).toMatchObject({ cron: '0 3 * * *', timezone: 'Europe/Paris' });
    expect(paused).toMatchObject({ paused: true, next_run_at: null });

    const ids = async (query: string) =>
      (await call(app, 'GET', `/admin/schedules?${query}`, VIEWER))
        .json<Page<AdminSchedule>>()
        .data.map((schedule) => `${schedule.tenant}/${schedule.id}`);
    expect(await ids('tenant=acme')).toEqual(['acme/hourly', 'acme/nightly']);
    expect(await ids('type=sleep')).toEqual(['acme/hourly']);
    expect(await ids('paused=true')).toEqual(['globex/nightly']);
    expect(await ids('paused=false&tenant=globex')).toEqual([]);

    // Pages of two, across tenants; and within one tenant.
    const first = (await call(app, 'GET', '/admin/schedules?limit=2', VIEWER)).json<Page<AdminSchedule>>();
    expect(first.data.map((schedule) => schedule.id)).toEqual(['hourly', 'nightly']);
    const second = (await call(app, 'GET', `/admin/schedules?limit=2&cursor=${first.next_cursor!}`, VIEWER)).json<
      Page<AdminSchedule>
    >();
    expect(second.data.map((schedule) => `${schedule.tenant}/${schedule.id}`)).toEqual(['globex/nightly']);
    expect(second.next_cursor).toBeNull();
    const acmeFirst = (await call(app, 'GET', '/admin/schedules?limit=1&tenant=acme', VIEWER)).json<
      Page<AdminSchedule>
    >();
    const acmeSecond = (
      await call(app, 'GET', `/admin/schedules?limit=1&tenant=acme&cursor=${acmeFirst.next_cursor!}`, VIEWER)
    ).json<Page<AdminSchedule>>();
    expect(acmeSecond.data.map((schedule) => schedule.id)).toEqual(['nightly']);

    // A cursor of another tenant's listing, or none this API gave, is refused.
    expectProblem(
      await call(app, 'GET', `/admin/schedules?tenant=globex&cursor=${acmeFirst.next_cursor!}`, VIEWER),
      400,
      'bad-request',
    );
    expectProblem(await call(app, 'GET', '/admin/schedules?cursor=bm90LWEtY3Vyc29y', VIEWER), 400, 'bad-request');
    expectProblem(await call(app, 'GET', '/admin/schedules?colour=red', VIEWER), 400);
  });

  it('reads one schedule by tenant and id: 404 schedule-not-found for another tenant or an unknown id', async () => {
    const { app } = await openWithSchedules();
    const one = await call(app, 'GET', '/admin/schedules/globex/nightly', VIEWER);
    expect(one.statusCode, one.body).toBe(200);
    expect(one.json<AdminSchedule>()).toMatchObject({ tenant: 'globex', id: 'nightly', paused: true });
    expectProblem(await call(app, 'GET', '/admin/schedules/globex/hourly', VIEWER), 404, 'schedule-not-found');
    expectProblem(await call(app, 'GET', '/admin/schedules/nobody/nightly', VIEWER), 404, 'schedule-not-found');
  });
});

describe('POST /admin/schedules/{tenant}/{id}/pause|resume|trigger, DELETE', () => {
  it('pauses and resumes as the operator, audited with the admin key; a viewer is refused and changes nothing', async () => {
    const { app } = await openWithSchedules();
    const refused = await call(app, 'POST', '/admin/schedules/acme/nightly/pause', VIEWER);
    expect(expectProblem(refused, 403, 'forbidden').detail).toMatch(/needs the operator role/);

    const paused = await call(app, 'POST', '/admin/schedules/acme/nightly/pause', OPERATOR);
    expect(paused.statusCode, paused.body).toBe(200);
    expect(paused.json<AdminSchedule>()).toMatchObject({
      tenant: 'acme',
      id: 'nightly',
      paused: true,
      next_run_at: null,
    });
    // The tenant sees it paused too; the other tenant's "nightly" is untouched.
    const client = await app.inject({
      method: 'GET',
      url: '/v1/schedules/nightly',
      headers: { authorization: `Bearer ${ACME}` },
    });
    expect(client.json<AdminSchedule>().paused).toBe(true);
    expect((await call(app, 'GET', '/admin/schedules/globex/nightly', VIEWER)).json<AdminSchedule>().paused).toBe(true);

    const again = await call(app, 'POST', '/admin/schedules/acme/nightly/pause', OPERATOR);
    expect(again.json<AdminSchedule>().version).toBe(paused.json<AdminSchedule>().version);

    const resumed = await call(app, 'POST', '/admin/schedules/acme/nightly/resume', OPERATOR);
    expect(resumed.statusCode, resumed.body).toBe(200);
    const schedule = resumed.json<AdminSchedule>();
    expect(schedule.paused).toBe(false);
    expect(Date.parse(schedule.next_run_at!)).toBeGreaterThan(Date.now());
    expectProblem(await call(app, 'POST', '/admin/schedules/acme/nope/pause', OPERATOR), 404, 'schedule-not-found');

    const audit = await adminAudit(app);
    expect(audit.map(({ action, target, count }) => ({ action, target, count }))).toEqual([
      { action: 'schedule.resume', target: 'acme/nightly', count: 1 },
      { action: 'schedule.pause', target: 'acme/nightly', count: 0 },
      { action: 'schedule.pause', target: 'acme/nightly', count: 1 },
    ]);
    expect(audit[0]!.actor).toEqual({ key_id: keyId(OPERATOR), role: 'operator' });
  });

  it('runs a schedule now (also while paused): 201 with the job, which the search finds by tenant and schedule_id', async () => {
    const { app } = await openWithSchedules();
    const triggered = await call(app, 'POST', '/admin/schedules/globex/nightly/trigger', OPERATOR);
    expect(triggered.statusCode, triggered.body).toBe(201);
    const job = triggered.json<{
      id: string;
      tenant: string;
      schedule_id: string;
      scheduled_for: string;
      status: string;
    }>();
    expect(triggered.headers.location).toBe(`/admin/jobs/${job.id}`);
    expect(job).toMatchObject({ tenant: 'globex', schedule_id: 'nightly', status: 'queued' });
    expect(job.scheduled_for).not.toBeNull();

    const schedule = (await call(app, 'GET', '/admin/schedules/globex/nightly', VIEWER)).json<AdminSchedule>();
    expect(schedule).toMatchObject({ paused: true, last_job: { id: job.id, status: 'queued' } });
    expect(schedule.last_run_at).not.toBeNull();

    // acme's "nightly" made no job: the filter is exact, and with the tenant it is that tenant's schedule only.
    await call(app, 'POST', '/admin/schedules/acme/hourly/trigger', OPERATOR);
    const search = async (query: string) =>
      (await call(app, 'GET', `/admin/jobs?${query}`, VIEWER))
        .json<Page<{ id: string }>>()
        .data.map((found) => found.id);
    expect(await search('tenant=globex&schedule_id=nightly')).toEqual([job.id]);
    expect(await search('tenant=acme&schedule_id=nightly')).toEqual([]);
    expect(await search('schedule_id=night')).toEqual([]);
    expect(await search('schedule_id=hourly')).toHaveLength(1);

    const [entry] = await adminAudit(app);
    expect(entry).toMatchObject({ action: 'schedule.trigger', target: 'acme/hourly', count: 1 });
    expect(entry!.detail.job_id).toEqual(expect.any(String));
    expect(expectProblem(await call(app, 'POST', '/admin/schedules/acme/hourly/trigger', VIEWER), 403).code).toBe(
      'forbidden',
    );
  });

  it('answers 422 when the definition no longer submits (its type is gone)', async () => {
    const schedules = new MemoryScheduleStore();
    await schedules.save(scheduleRecord({ id: 'old', tenant: 'acme', type: 'retired-type' }), 0);
    const { app } = await scope.open({ adminKeys, apiKeys, schedules });
    const response = await call(app, 'POST', '/admin/schedules/acme/old/trigger', OPERATOR);
    expect(response.statusCode, response.body).toBe(422);
    expect((await adminAudit(app)).filter((entry) => entry.action === 'schedule.trigger')).toEqual([]);
  });

  it('deletes as the operator (404 once gone), audited; the jobs it made stay', async () => {
    const { app } = await openWithSchedules();
    const made = (await call(app, 'POST', '/admin/schedules/acme/hourly/trigger', OPERATOR)).json<{ id: string }>();
    expectProblem(await call(app, 'DELETE', '/admin/schedules/acme/hourly', VIEWER), 403, 'forbidden');
    const deleted = await call(app, 'DELETE', '/admin/schedules/acme/hourly', OPERATOR);
    expect(deleted.statusCode, deleted.body).toBe(204);
    expectProblem(await call(app, 'GET', '/admin/schedules/acme/hourly', VIEWER), 404, 'schedule-not-found');
    expectProblem(await call(app, 'DELETE', '/admin/schedules/acme/hourly', OPERATOR), 404, 'schedule-not-found');
    expect((await call(app, 'GET', `/admin/jobs/${made.id}`, VIEWER)).statusCode).toBe(200);
    const [entry] = await adminAudit(app);
    expect(entry).toMatchObject({
      action: 'schedule.delete',
      target: 'acme/hourly',
      count: 1,
      actor: { key_id: keyId(OPERATOR), role: 'operator' },
    });
  });
});
