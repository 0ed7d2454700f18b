import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../../src/handlers/handler.js';
import { builtInHandlers, HandlerRegistry } from '../../src/handlers/registry.js';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { MemoryScheduleStore } from '../../src/schedules/memory-schedule-store.js';
import { RedisScheduleStore } from '../../src/schedules/redis-schedule-store.js';
import { nextFireAfter } from '../../src/schedules/schedule.js';
import type { ScheduleStore } from '../../src/schedules/schedule-store.js';
import { Scheduler } from '../../src/schedules/scheduler.js';
import { scheduledJobMaker } from '../../src/routes/schedule-definition.js';
import { scheduleListSchema, scheduleSchema, type ScheduleResource } from '../../src/routes/schedule-view.js';
import { jobListSchema } from '../../src/routes/schemas.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  createJob,
  expectProblem,
  getJob,
  harnessScope,
  parseJob,
  type Harness,
  type HarnessOptions,
} from './helpers.js';

/*
 * /v1/schedules over HTTP: create (idempotent with an id), replace, change, pause, resume, trigger, delete, list;
 * validation naming each field; tenants; MAX_SCHEDULES_PER_TENANT; the audit log; and the jobs firing makes, listed
 * by GET /v1/jobs?schedule_id=.
 */

const scope = harnessScope();
const schedulers: Scheduler[] = [];
afterEach(async () => {
  for (const scheduler of schedulers.splice(0)) await scheduler.stop();
  await scope.closeAll();
});

interface ScheduleHarness extends Harness {
  schedules: ScheduleStore;
  scheduler: Scheduler;
}

/** The app over a memory (or Redis) job store with its schedule store, and the scheduler that fires them (not started). */
async function open(
  options: HarnessOptions & { redis?: boolean; schedules?: ScheduleStore } = {},
): Promise<ScheduleHarness> {
  const { redis = false, schedules: given, extraHandlers = [], ...deps } = options;
  let store: JobStore;
  let schedules: ScheduleStore;
  if (given) {
    store = new MemoryJobStore({ jobTtlMs: 60_000 });
    schedules = given;
  } else if (redis) {
    const jobs = await RedisJobStore.connect({
      url: inject('redisUrl'),
      keyPrefix: `t${Math.random().toString(36).slice(2, 10)}`,
      jobTtlMs: 60_000,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 1000,
    });
    // As server.ts does: the job store's connection and key base.
    schedules = new RedisScheduleStore(jobs.redis, jobs.keys.base, { commandTimeoutMs: 1000 });
    store = jobs;
  } else {
    store = new MemoryJobStore({ jobTtlMs: 60_000 });
    schedules = new MemoryScheduleStore();
  }
  const scheduler = new Scheduler({
    schedules,
    jobs: store,
    log: pino({ level: 'silent' }),
    newJob: scheduledJobMaker({
      handlers: new HandlerRegistry([...builtInHandlers, ...extraHandlers]),
      declaredTypes: undefined,
      scheduling: () => ({}),
      webhookPolicy: undefined,
    }),
    idempotencyTtlMs: 90_000_000,
  });
  schedulers.push(scheduler);
  const harness = await scope.open({ store, schedules, scheduler, extraHandlers, ...deps });
  return { ...harness, schedules, scheduler };
}

const ACME_KEY = 'acme-key-0123456789abcdef';
const GLOBEX_KEY = 'globex-key-0123456789abcdef';
const apiKeys = parseApiKeys([
  { key: ACME_KEY, tenant: 'acme' },
  { key: GLOBEX_KEY, tenant: 'globex' },
]);
const as = (key: string) => ({ authorization: `Bearer ${key}` });

function parseSchedule(response: LightMyRequestResponse, status: number): ScheduleResource {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  return scheduleSchema.parse(response.json());
}

const post = (app: FastifyInstance, payload: Record<string, unknown>, headers = {}) =>
  app.inject({ method: 'POST', url: '/v1/schedules', payload, headers });
const put = (app: FastifyInstance, id: string, payload: Record<string, unknown>, headers = {}) =>
  app.inject({ method: 'PUT', url: `/v1/schedules/${id}`, payload, headers });
const get = (app: FastifyInstance, id: string, headers = {}) =>
  app.inject({ method: 'GET', url: `/v1/schedules/${id}`, headers });
const act = (app: FastifyInstance, id: string, verb: 'pause' | 'resume' | 'trigger', headers = {}) =>
  app.inject({ method: 'POST', url: `/v1/schedules/${id}/${verb}`, headers });

const hourly = { every_s: 3600, type: 'echo', input: { value: 'tick' } };
const nightly = { cron: '30 2 * * *', timezone: 'Europe/Berlin', type: 'sleep', input: { ms: 0 } };

/** The field pointers of a 422 validation-failed problem. */
function pointersOf(response: LightMyRequestResponse, code = 'validation-failed'): string[] {
  return (expectProblem(response, 422, code).errors ?? []).map((error) => error.pointer);
}

describe('POST /v1/schedules and GET', () => {
  it('creates a schedule (201, Location) with every field shown and its next fire time, and reads it back', async () => {
    const { app } = await open();
    const before = Date.now();
    const response = await post(app, { ...hourly, metadata: { team: 'ops' }, priority: 5, overlap: 'skip' });
    const created = parseSchedule(response, 201);
    expect(created.id).toMatch(/^sch_[A-Za-z0-9_-]{16}$/);
    expect(response.headers.location).toBe(`/v1/schedules/${created.id}`);
    expect(created).toMatchObject({
      cron: null,
      every_s: 3600,
      timezone: 'UTC',
      type: 'echo',
      input: { value: 'tick' },
      metadata: { team: 'ops' },
      priority: 5,
      max_attempts: null,
      timeout_s: null,
      concurrency_key: null,
      webhook: null,
      overlap: 'skip',
      catch_up: 'latest',
      start_at: null,
      end_at: null,
      paused: false,
      last_run_at: null,
      last_job: null,
      fires: { created: 0, skipped: 0, missed: 0 },
      version: 1,
    });
    const nextRunAt = Date.parse(created.next_run_at!);
    expect(nextRunAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(nextRunAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(parseSchedule(await get(app, created.id), 200)).toEqual(created);
  });

  it('reads a cron expression in its timezone: 02:30 Europe/Berlin is 00:30 or 01:30 UTC', async () => {
    const { app } = await open();
    const created = parseSchedule(await post(app, { id: 'nightly', ...nightly }), 201);
    expect(created).toMatchObject({ id: 'nightly', cron: '30 2 * * *', every_s: null, timezone: 'Europe/Berlin' });
    expect(created.next_run_at).toMatch(/T0[01]:30:00\.000Z$/);
    const createdAt = Date.parse(created.created_at);
    const expected = nextFireAfter(
      {
        ...{ cron: nightly.cron, everyS: null, timezone: nightly.timezone, startAt: null, endAt: null },
        ...{ type: 'sleep', input: {}, metadata: {}, priority: 0, maxAttempts: null, timeoutS: null },
        ...{ concurrencyKey: null, webhook: null, overlap: 'allow', catchUp: 'latest', createdAt },
      },
      createdAt,
    );
    expect(Date.parse(created.next_run_at!)).toBe(expected);
  });

  it('starts at start_at and shows start_at and end_at', async () => {
    const { app } = await open();
    const startAt = new Date(Date.now() + 86_400_000).toISOString();
    const endAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const created = parseSchedule(await post(app, { ...hourly, start_at: startAt, end_at: endAt }), 201);
    expect(created).toMatchObject({ start_at: startAt, end_at: endAt, next_run_at: startAt });
  });

  it('creates a paused schedule with no next fire time', async () => {
    const { app } = await open();
    expect(parseSchedule(await post(app, { ...hourly, paused: true }), 201)).toMatchObject({
      paused: true,
      next_run_at: null,
    });
  });

  it('answers 404 schedule-not-found for an unknown id', async () => {
    const { app } = await open();
    expectProblem(await get(app, 'nope'), 404, 'schedule-not-found');
    expectProblem(await get(app, '..%2F..'), 404, 'schedule-not-found');
  });
});

describe('idempotent creates: POST with an id, PUT', () => {
  it('POST with an id: the same definition again answers 200 with the schedule unchanged; another one 409', async () => {
    const { app, schedules } = await open();
    const first = parseSchedule(await post(app, { id: 'reports', ...hourly }), 201);
    // The same definition, its defaults spelled out and its keys in another order.
    const again = await post(app, {
      input: { value: 'tick' },
      type: 'echo',
      every_s: 3600,
      id: 'reports',
      timezone: 'UTC',
      catch_up: 'latest',
      overlap: 'allow',
      priority: 0,
      metadata: {},
    });
    expect(parseSchedule(again, 200)).toEqual(first);
    expect(again.headers.location).toBe('/v1/schedules/reports');
    const other = expectProblem(await post(app, { id: 'reports', ...hourly, every_s: 60 }), 409, 'schedule-exists');
    expect(other.errors).toEqual([{ pointer: '/id', detail: expect.any(String) as string }]);
    expect((await schedules.list({ tenant: '-', limit: 10 })).schedules).toHaveLength(1);
  });

  it('PUT creates (201), then the same definition changes nothing: same version and next_run_at', async () => {
    const { app } = await open();
    const created = await put(app, 'nightly', nightly);
    const first = parseSchedule(created, 201);
    expect(created.headers.location).toBe('/v1/schedules/nightly');
    for (let deploy = 0; deploy < 3; deploy++) {
      const again = parseSchedule(await put(app, 'nightly', nightly), 200);
      expect(again).toEqual(first);
    }
    const list = scheduleListSchema.parse((await app.inject({ method: 'GET', url: '/v1/schedules' })).json());
    expect(list.data.map((schedule) => schedule.id)).toEqual(['nightly']);
  });

  it('PUT of an every_s schedule keeps its timing on a redeploy, and times a changed definition from now', async () => {
    const { app } = await open();
    const first = parseSchedule(await put(app, 'tick', { ...hourly, every_s: 2 }), 201);
    await waitFor(() => Date.now() > Date.parse(first.created_at) + 5, { intervalMs: 1 });
    expect(parseSchedule(await put(app, 'tick', { ...hourly, every_s: 2 }), 200)).toEqual(first);

    const before = Date.now();
    const changed = parseSchedule(await put(app, 'tick', { ...hourly, every_s: 3600, priority: 3 }), 200);
    expect(changed).toMatchObject({ every_s: 3600, priority: 3, version: 2, created_at: first.created_at });
    expect(Date.parse(changed.next_run_at!)).toBeGreaterThan(before);
    expect(Date.parse(changed.updated_at)).toBeGreaterThanOrEqual(before);
    // PUT is the whole definition: what it leaves out goes back to its default.
    expect(parseSchedule(await put(app, 'tick', { every_s: 3600, type: 'echo' }), 200)).toMatchObject({
      input: {},
      priority: 0,
      version: 3,
    });
  });

  it('PUT leaves paused as it is when left out, and pauses or resumes when given', async () => {
    const { app } = await open();
    parseSchedule(await put(app, 'p', hourly), 201);
    const paused = parseSchedule(await act(app, 'p', 'pause'), 200);
    expect(parseSchedule(await put(app, 'p', hourly), 200)).toEqual(paused);
    const resumed = parseSchedule(await put(app, 'p', { ...hourly, paused: false }), 200);
    expect(resumed).toMatchObject({ paused: false, version: paused.version + 1 });
    expect(resumed.next_run_at).not.toBeNull();
  });
});

describe('PATCH /v1/schedules/{id}', () => {
  it('changes the fields given, clears those given null, and switches between cron and every_s', async () => {
    const { app } = await open();
    parseSchedule(await put(app, 's', { ...hourly, max_attempts: 5, concurrency_key: 'k' }), 201);
    const patch = (body: Record<string, unknown>) =>
      app.inject({ method: 'PATCH', url: '/v1/schedules/s', payload: body });

    const changed = parseSchedule(await patch({ priority: 7, max_attempts: null, metadata: { a: 'b' } }), 200);
    expect(changed).toMatchObject({
      every_s: 3600,
      input: { value: 'tick' },
      priority: 7,
      max_attempts: null,
      concurrency_key: 'k',
      metadata: { a: 'b' },
      version: 2,
    });
    const toCron = parseSchedule(await patch({ cron: '0 * * * *' }), 200);
    expect(toCron).toMatchObject({ cron: '0 * * * *', every_s: null, version: 3 });
    expect(toCron.next_run_at).toMatch(/:00:00\.000Z$/);
    expect(parseSchedule(await patch({ every_s: 60 }), 200)).toMatchObject({ cron: null, every_s: 60 });
    // Nothing changed: nothing saved.
    expect(parseSchedule(await patch({ every_s: 60 }), 200).version).toBe(4);
    // The result is checked whole.
    expect(pointersOf(await patch({ cron: '0 * * * *', every_s: 60 }))).toEqual(['/every_s']);
    expect(pointersOf(await patch({ every_s: null }))).toEqual(['/cron']);
    expect(pointersOf(await patch({ input: { nope: 1 } }))).toEqual(['/input/nope']);
    expectProblem(
      await app.inject({ method: 'PATCH', url: '/v1/schedules/missing', payload: { priority: 1 } }),
      404,
      'schedule-not-found',
    );
  });
});

describe('validation: 422 naming the field', () => {
  const cases: [string, Record<string, unknown>, string[], string?][] = [
    ['a bad cron expression', { cron: '61 * * * *', type: 'echo' }, ['/cron']],
    ['a cron expression with too few fields', { cron: '* *', type: 'echo' }, ['/cron']],
    ['an unknown timezone', { cron: '0 3 * * *', timezone: 'Mars/Olympus', type: 'echo' }, ['/timezone']],
    ['cron and every_s together', { cron: '0 3 * * *', every_s: 60, type: 'echo' }, ['/every_s']],
    ['neither cron nor every_s', { type: 'echo' }, ['/cron']],
    ['every_s 0', { every_s: 0, type: 'echo' }, ['/every_s']],
    ['every_s not an integer', { every_s: 1.5, type: 'echo' }, ['/every_s']],
    [
      'end_at before start_at',
      { ...hourly, start_at: '2030-01-02T00:00:00Z', end_at: '2030-01-01T00:00:00Z' },
      ['/end_at'],
    ],
    [
      'end_at equal to start_at',
      { ...hourly, start_at: '2030-01-01T00:00:00Z', end_at: '2030-01-01T00:00:00Z' },
      ['/end_at'],
    ],
    ['an invalid id', { ...hourly, id: '-starts-with-a-dash' }, ['/id']],
    ['an id too long', { ...hourly, id: 'a'.repeat(129) }, ['/id']],
    ['an unknown field', { ...hourly, color: 'red' }, ['/color']],
    ['an unknown type', { every_s: 60, type: 'nope' }, ['/type'], 'unknown-job-type'],
    ['an input that does not fit the type', { every_s: 60, type: 'sleep', input: { ms: 'long' } }, ['/input/ms']],
    ['a concurrency_key with a control character', { ...hourly, concurrency_key: 'a\u0007b' }, ['/concurrency_key']],
    ['a webhook without WEBHOOK_SECRET', { ...hourly, webhook: { url: 'https://example.com/hook' } }, ['/webhook']],
    ['an unknown overlap', { ...hourly, overlap: 'queue' }, ['/overlap']],
    ['an unknown catch_up', { ...hourly, catch_up: 'some' }, ['/catch_up']],
  ];

  it.each(cases)('%s', async (_name, body, pointers, code) => {
    const { app } = await open();
    expect(pointersOf(await post(app, body), code)).toEqual(pointers);
    const { id: _id, ...definition } = body;
    if (_id === undefined) expect(pointersOf(await put(app, 'v', definition), code)).toEqual(pointers);
    expect((await app.inject({ method: 'GET', url: '/v1/schedules' })).json()).toEqual({ data: [], next_cursor: null });
  });

  it("names croner's reason for a bad cron expression", async () => {
    const { app } = await open();
    const problem = expectProblem(await post(app, { cron: '61 * * * *', type: 'echo' }), 422, 'validation-failed');
    expect(problem.errors![0]!.detail).toMatch(/^is not a valid cron expression \(.+\)$/);
    expect(problem.detail).toContain('cron');
  });

  it('PUT refuses an id that does not fit the pattern (422 naming id)', async () => {
    const { app } = await open();
    expect(pointersOf(await put(app, '.hidden', hourly))).toEqual(['id']);
  });
});

describe('tenants and MAX_SCHEDULES_PER_TENANT', () => {
  it("keeps each tenant's schedules apart: the same id twice, and another's answer as unknown", async () => {
    const { app } = await open({ apiKeys });
    expectProblem(await post(app, hourly), 401, 'unauthorized');
    const acme = parseSchedule(await put(app, 'nightly', nightly, as(ACME_KEY)), 201);
    const globex = parseSchedule(await put(app, 'nightly', { ...hourly }, as(GLOBEX_KEY)), 201);
    expect(acme.type).toBe('sleep');
    expect(globex.type).toBe('echo');
    parseSchedule(await post(app, { id: 'acme-only', ...hourly }, as(ACME_KEY)), 201);
    for (const [method, url] of [
      ['GET', '/v1/schedules/acme-only'],
      ['POST', '/v1/schedules/acme-only/pause'],
      ['POST', '/v1/schedules/acme-only/resume'],
      ['POST', '/v1/schedules/acme-only/trigger'],
    ] as const) {
      expectProblem(await app.inject({ method, url, headers: as(GLOBEX_KEY) }), 404, 'schedule-not-found');
    }
    expectProblem(
      await app.inject({
        method: 'PATCH',
        url: '/v1/schedules/acme-only',
        payload: { priority: 1 },
        headers: as(GLOBEX_KEY),
      }),
      404,
      'schedule-not-found',
    );
    const deleted = await app.inject({ method: 'DELETE', url: '/v1/schedules/acme-only', headers: as(GLOBEX_KEY) });
    expect(deleted.statusCode).toBe(204);
    parseSchedule(await get(app, 'acme-only', as(ACME_KEY)), 200); // untouched
    const list = async (key: string) =>
      scheduleListSchema
        .parse((await app.inject({ method: 'GET', url: '/v1/schedules', headers: as(key) })).json())
        .data.map((schedule) => `${schedule.id}:${schedule.type}`);
    expect(await list(ACME_KEY)).toEqual(['acme-only:echo', 'nightly:sleep']);
    expect(await list(GLOBEX_KEY)).toEqual(['nightly:echo']);
  });

  it('refuses a create over MAX_SCHEDULES_PER_TENANT with 409 too-many-schedules; replacing still works', async () => {
    const { app } = await open({ apiKeys, maxSchedulesPerTenant: 2 });
    parseSchedule(await post(app, { id: 'a', ...hourly }, as(ACME_KEY)), 201);
    parseSchedule(await put(app, 'b', hourly, as(ACME_KEY)), 201);
    const over = expectProblem(await post(app, { id: 'c', ...hourly }, as(ACME_KEY)), 409, 'too-many-schedules');
    expect(over.detail).toContain('MAX_SCHEDULES_PER_TENANT');
    expect(over.limit).toBe(2);
    expectProblem(await put(app, 'c', hourly, as(ACME_KEY)), 409, 'too-many-schedules');
    // An existing one is replaced, a repeat answered; another tenant has its own count.
    parseSchedule(await put(app, 'b', { ...hourly, every_s: 60 }, as(ACME_KEY)), 200);
    parseSchedule(await post(app, { id: 'a', ...hourly }, as(ACME_KEY)), 200);
    parseSchedule(await post(app, hourly, as(GLOBEX_KEY)), 201);
    // Room again once one is deleted.
    await app.inject({ method: 'DELETE', url: '/v1/schedules/a', headers: as(ACME_KEY) });
    parseSchedule(await post(app, { id: 'c', ...hourly }, as(ACME_KEY)), 201);
  });
});

describe('pause, resume, trigger, delete', () => {
  it('pauses (no next fire time) and resumes (the next fire time after now); repeating either changes nothing', async () => {
    const { app } = await open();
    const created = parseSchedule(await put(app, 's', hourly), 201);
    const paused = parseSchedule(await act(app, 's', 'pause'), 200);
    expect(paused).toMatchObject({ paused: true, next_run_at: null, version: created.version + 1 });
    expect(parseSchedule(await act(app, 's', 'pause'), 200)).toEqual(paused);
    const before = Date.now();
    const resumed = parseSchedule(await act(app, 's', 'resume'), 200);
    expect(resumed).toMatchObject({ paused: false, version: paused.version + 1 });
    expect(Date.parse(resumed.next_run_at!)).toBeGreaterThan(before);
    expect(parseSchedule(await act(app, 's', 'resume'), 200)).toEqual(resumed);
    const listed = async (query: string) =>
      scheduleListSchema
        .parse((await app.inject({ method: 'GET', url: `/v1/schedules?${query}` })).json())
        .data.map((schedule) => schedule.id);
    parseSchedule(await put(app, 'q', hourly), 201);
    await act(app, 'q', 'pause');
    expect(await listed('paused=true')).toEqual(['q']);
    expect(await listed('paused=false')).toEqual(['s']);
  });

  it('refuses a trigger over MAX_ACTIVE_JOBS_PER_TENANT (429), as a submit', async () => {
    const { app } = await open({ maxActiveJobsPerTenant: 1, workers: false });
    parseSchedule(await put(app, 'busy', hourly), 201);
    expect((await act(app, 'busy', 'trigger')).statusCode).toBe(201);
    const refused = await act(app, 'busy', 'trigger');
    expectProblem(refused, 429, 'too-many-active-jobs');
  });

  it('triggers one job now (201, Location) carrying the schedule, shown as its last job, also while paused', async () => {
    const { app } = await open();
    parseSchedule(await put(app, 'report', { ...hourly, max_attempts: 7, metadata: { from: 'schedule' } }), 201);
    await act(app, 'report', 'pause');
    const before = Date.now();
    const response = await act(app, 'report', 'trigger');
    expect(response.statusCode, response.body).toBe(201);
    const job = parseJob(response);
    expect(response.headers.location).toBe(`/v1/jobs/${job.id}`);
    expect(job).toMatchObject({
      type: 'echo',
      status: 'queued',
      input: { value: 'tick' },
      metadata: { from: 'schedule' },
      max_attempts: 7,
      schedule_id: 'report',
    });
    expect(Date.parse(job.scheduled_for!)).toBeGreaterThanOrEqual(before);
    expect(await getJob(app, job.id)).toMatchObject({ schedule_id: 'report', scheduled_for: job.scheduled_for });
    const schedule = parseSchedule(await get(app, 'report'), 200);
    expect(schedule).toMatchObject({
      paused: true,
      last_job: { id: job.id, status: 'queued' },
      last_run_at: job.scheduled_for,
      fires: { created: 0, skipped: 0, missed: 0 },
    });
    // The job deleted: the schedule still names it, as gone.
    await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
    expect(parseSchedule(await get(app, 'report'), 200).last_job).toEqual({ id: job.id, status: 'gone' });
  });

  it('deletes (204, also when repeated); the jobs it made stay', async () => {
    const { app } = await open();
    parseSchedule(await put(app, 'gone', hourly), 201);
    const job = parseJob(await act(app, 'gone', 'trigger'));
    expect((await app.inject({ method: 'DELETE', url: '/v1/schedules/gone' })).statusCode).toBe(204);
    expectProblem(await get(app, 'gone'), 404, 'schedule-not-found');
    expect((await app.inject({ method: 'DELETE', url: '/v1/schedules/gone' })).statusCode).toBe(204);
    expectProblem(await act(app, 'gone', 'trigger'), 404, 'schedule-not-found');
    expect((await getJob(app, job.id)).schedule_id).toBe('gone');
  });

  it('writes an audit entry for every change, as the API key’s tenant (or open), and none for a repeat', async () => {
    const keyed = await open({ apiKeys });
    await put(keyed.app, 'a', hourly, as(ACME_KEY));
    await put(keyed.app, 'a', hourly, as(ACME_KEY)); // unchanged: not audited
    await act(keyed.app, 'a', 'pause', as(ACME_KEY));
    const trigger = parseJob(await act(keyed.app, 'a', 'trigger', as(ACME_KEY)));
    await keyed.app.inject({
      method: 'PATCH',
      url: '/v1/schedules/a',
      payload: { priority: 2 },
      headers: as(ACME_KEY),
    });
    await keyed.app.inject({ method: 'DELETE', url: '/v1/schedules/a', headers: as(ACME_KEY) });
    const entries = (await keyed.ops.auditLog({ limit: 20 })).entries.reverse();
    expect(entries.map((entry) => [entry.action, entry.target, entry.actor])).toEqual(
      ['schedule.create', 'schedule.pause', 'schedule.trigger', 'schedule.update', 'schedule.delete'].map((action) => [
        action,
        'a',
        { key_id: 'acme', role: 'api' },
      ]),
    );
    expect(entries[2]!.detail).toEqual({ job_id: trigger.id });

    const unkeyed = await open();
    await post(unkeyed.app, { id: 'b', ...hourly });
    expect((await unkeyed.ops.auditLog({ limit: 5 })).entries[0]).toMatchObject({
      action: 'schedule.create',
      target: 'b',
      actor: { key_id: 'open', role: 'api' },
    });
  });
});

describe('GET /v1/schedules paging and filters', () => {
  it('pages in id order with next_cursor, and filters by type', async () => {
    const { app } = await open();
    for (const id of ['e', 'a', 'd', 'b', 'c']) await put(app, id, id < 'c' ? hourly : nightly);
    const page = async (query: string) => {
      const response = await app.inject({ method: 'GET', url: `/v1/schedules?${query}` });
      expect(response.statusCode, response.body).toBe(200);
      return scheduleListSchema.parse(response.json());
    };
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const current = await page(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(current.data.length).toBeLessThanOrEqual(2);
      seen.push(...current.data.map((schedule) => schedule.id));
      cursor = current.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect((await page('type=sleep')).data.map((schedule) => schedule.id)).toEqual(['c', 'd', 'e']);
    expect((await page('type=sleep&limit=1')).next_cursor).not.toBeNull();
    expectProblem(await app.inject({ method: 'GET', url: '/v1/schedules?cursor=bogus' }), 400, 'bad-request');
    expectProblem(await app.inject({ method: 'GET', url: '/v1/schedules?paused=maybe' }), 400, 'bad-request');
  });
});

describe('jobs made by firing', () => {
  it('the running scheduler makes a job per fire time; GET /v1/jobs?schedule_id= lists exactly those', async () => {
    const { app, scheduler } = await open();
    const every = parseSchedule(await put(app, 'every-second', { ...hourly, every_s: 1, catch_up: 'all' }), 201);
    parseSchedule(await put(app, 'other', { ...hourly, every_s: 1, input: { value: 'other' } }), 201);
    const submitted = await createJob(app, { type: 'echo' });
    scheduler.start();
    const listed = await waitFor(
      async () => {
        const response = await app.inject({ method: 'GET', url: '/v1/jobs?schedule_id=every-second&order=asc' });
        const jobs = jobListSchema.parse(response.json()).data;
        return jobs.length >= 2 ? jobs : undefined;
      },
      { what: 'two fires of every-second', timeoutMs: 5000 },
    );
    await scheduler.stop();
    expect(listed.every((job) => job.schedule_id === 'every-second' && job.type === 'echo')).toBe(true);
    expect(listed.map((job) => job.input)).toEqual(listed.map(() => ({ value: 'tick' })));
    expect(listed.some((job) => job.id === submitted.id)).toBe(false);
    // One job per fire time, at its fire times: the first one due, then a second later.
    const fireTimes = listed.map((job) => Date.parse(job.scheduled_for!));
    expect(fireTimes[0]).toBe(Date.parse(every.next_run_at!));
    expect(fireTimes[1]! - fireTimes[0]!).toBe(1000);
    expect(new Set(fireTimes).size).toBe(fireTimes.length);
    expect(listed[0]!.max_attempts).toBe(3); // the type's default, as a submit gets it

    const schedule = parseSchedule(await get(app, 'every-second'), 200);
    expect(schedule.fires.created).toBeGreaterThanOrEqual(2);
    expect(schedule.last_job?.id).toBe(
      (await app.inject({ method: 'GET', url: '/v1/jobs?schedule_id=every-second&limit=1' })).json<{
        data: { id: string }[];
      }>().data[0]!.id,
    );
    // Submitted jobs carry no schedule.
    expect(await getJob(app, submitted.id)).toMatchObject({ schedule_id: null, scheduled_for: null });
    const none = await app.inject({ method: 'GET', url: '/v1/jobs?schedule_id=nope' });
    expect(jobListSchema.parse(none.json()).data).toEqual([]);
  });

  it("does not list another tenant's jobs for a schedule id both tenants use", async () => {
    const { app, scheduler } = await open({ apiKeys });
    parseSchedule(await put(app, 'same', hourly, as(ACME_KEY)), 201);
    parseSchedule(await put(app, 'same', hourly, as(GLOBEX_KEY)), 201);
    const acmeJob = parseJob(await act(app, 'same', 'trigger', as(ACME_KEY)));
    expect(scheduler).toBeDefined();
    const list = async (key: string) =>
      jobListSchema
        .parse((await app.inject({ method: 'GET', url: '/v1/jobs?schedule_id=same', headers: as(key) })).json())
        .data.map((job) => job.id);
    expect(await list(ACME_KEY)).toEqual([acmeJob.id]);
    expect(await list(GLOBEX_KEY)).toEqual([]);
  });
});

describe('a definition that no longer submits', () => {
  it('is refused by a trigger with the 422 a submit gets, and skipped by a fire', async () => {
    const report = defineHandler({ type: 'report', input: z.object({}).strict(), run: async () => null });
    const schedules = new MemoryScheduleStore();
    const before = await open({ schedules, extraHandlers: [report] });
    const created = parseSchedule(await put(before.app, 'r', { every_s: 1, type: 'report' }), 201);
    // The same schedules, served by an instance where the type is no longer enabled.
    const after = await open({ schedules });
    expectProblem(await act(after.app, 'r', 'trigger'), 422, 'unknown-job-type');
    await after.scheduler.tick(Date.parse(created.next_run_at!) + 100);
    const fired = parseSchedule(await get(after.app, 'r'), 200);
    expect(fired).toMatchObject({ fires: { created: 0, skipped: 1, missed: 0 }, last_job: null });
    expect(Date.parse(fired.next_run_at!)).toBe(Date.parse(created.next_run_at!) + 1000);
  });
});

describe('on Redis', () => {
  it('creates idempotently, replaces, pages, counts MAX_SCHEDULES_PER_TENANT and triggers', async () => {
    const { app } = await open({ redis: true, maxSchedulesPerTenant: 3 });
    const first = parseSchedule(await put(app, 'nightly', nightly), 201);
    expect(parseSchedule(await put(app, 'nightly', nightly), 200)).toEqual(first);
    expect(parseSchedule(await post(app, { id: 'nightly', ...nightly }), 200)).toEqual(first);
    expectProblem(await post(app, { id: 'nightly', ...hourly }), 409, 'schedule-exists');
    const replaced = parseSchedule(await put(app, 'nightly', { ...nightly, cron: '0 4 * * *' }), 200);
    expect(replaced).toMatchObject({ cron: '0 4 * * *', version: 2 });
    parseSchedule(await post(app, { id: 'a', ...hourly }), 201);
    parseSchedule(await post(app, { id: 'b', ...hourly }), 201);
    expectProblem(await post(app, { id: 'c', ...hourly }), 409, 'too-many-schedules');
    const page = scheduleListSchema.parse((await app.inject({ method: 'GET', url: '/v1/schedules?limit=2' })).json());
    expect(page.data.map((schedule) => schedule.id)).toEqual(['a', 'b']);
    const rest = scheduleListSchema.parse(
      (await app.inject({ method: 'GET', url: `/v1/schedules?limit=2&cursor=${page.next_cursor}` })).json(),
    );
    expect(rest).toMatchObject({ data: [{ id: 'nightly' }], next_cursor: null });
    const job = parseJob(await act(app, 'a', 'trigger'));
    const listed = jobListSchema.parse((await app.inject({ method: 'GET', url: '/v1/jobs?schedule_id=a' })).json());
    expect(listed.data.map((each) => [each.id, each.schedule_id])).toEqual([[job.id, 'a']]);
    expect(parseSchedule(await get(app, 'a'), 200).last_job).toEqual({ id: job.id, status: 'queued' });
  });
});
