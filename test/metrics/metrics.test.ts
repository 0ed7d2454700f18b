import { randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { buildApp, type AppDeps } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { builtInHandlers, HandlerRegistry } from '../../src/handlers/registry.js';
import { newJobId } from '../../src/jobs/job-id.js';
import { ServiceMetrics } from '../../src/metrics/service-metrics.js';
import { MemoryScheduleStore } from '../../src/schedules/memory-schedule-store.js';
import type { ScheduleRecord } from '../../src/schedules/schedule.js';
import { Scheduler } from '../../src/schedules/scheduler.js';
import { StoreUnavailableError, type JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { WorkerPool } from '../../src/worker/worker-pool.js';
import { blockingHandler, createJob, expectProblem, waitForStatus } from '../routes/helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/** One sample of the text format: `name{label="value",…} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  samples: Sample[];
  /** `# TYPE name kind` lines. */
  types: Map<string, string>;
}

/** A small parser of the Prometheus text format (0.0.4): enough to read back what the service wrote. */
function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? '';
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let consumed = 0;
    for (let label = labelPattern.exec(body); label; label = labelPattern.exec(body)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = labelPattern.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`bad labels: ${line}`);
    // Floats as Go's ParseFloat reads them: NaN and Inf in any case (prom-client writes `Nan`).
    const raw = match[3]!.toLowerCase();
    const value =
      raw === '+inf' || raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : raw === 'nan' ? NaN : Number(raw);
    if (Number.isNaN(value) && raw !== 'nan') throw new Error(`bad value: ${line}`);
    samples.push({ name: match[1]!, labels, value });
  }
  return { samples, types };
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([key, value]) => a[key] === value);

/** The value of the one sample with exactly these labels; undefined when there is none. */
function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = exposition.samples.filter((sample) => sample.name === name && sameLabels(sample.labels, labels));
  expect(found.length, `${name}${JSON.stringify(labels)} appears more than once`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

interface Instance {
  app: FastifyInstance;
  store: JobStore;
  pool: WorkerPool;
  metrics: ServiceMetrics;
}

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const instance of opened.splice(0)) await instance.close();
});

/** An app with a real worker pool over a memory store, both reporting to one ServiceMetrics, as server.ts wires them. */
async function openInstance(
  options: { store?: JobStore; concurrency?: number } & Partial<
    Omit<AppDeps, 'store' | 'handlers' | 'pool' | 'metrics'>
  > = {},
) {
  const { store = new MemoryJobStore({ jobTtlMs: 60_000 }), concurrency = 4, ...deps } = options;
  const block = blockingHandler();
  const handlers = new HandlerRegistry([...builtInHandlers, block.handler]);
  const metrics = new ServiceMetrics({ jobTypes: handlers.types });
  const pool = new WorkerPool({
    store,
    handlers,
    log: pino({ level: 'silent' }),
    concurrency,
    leaseMs: 5_000,
    backoff: { baseMs: 10, maxMs: 20 },
    progressIntervalMs: 10,
    observer: metrics,
  });
  const app = await buildApp({ ...deps, store, handlers, pool, metrics });
  await app.ready();
  await pool.start();
  let closed = false;
  opened.push({
    async close() {
      if (closed) return;
      closed = true;
      await pool.drain(1000);
      await app.close();
      await store.close();
    },
  });
  return { app, store, pool, metrics, block } satisfies Instance & { block: ReturnType<typeof blockingHandler> };
}

async function scrape(
  app: FastifyInstance,
  headers: Record<string, string> = {},
): Promise<{ response: LightMyRequestResponse; exposition: Exposition }> {
  const response = await app.inject({ method: 'GET', url: '/metrics', headers });
  expect(response.statusCode, response.body).toBe(200);
  return { response, exposition: parseExposition(response.body) };
}

const TOKEN = 'metrics-token-0123456789';

describe('GET /metrics', () => {
  it('counts what the jobs and the workers did, per type and status', async () => {
    const { app, pool, block } = await openInstance();

    // echo: three that succeed, one more created with an Idempotency-Key and replayed (counted once).
    const echoes = await Promise.all([1, 2, 3].map((value) => createJob(app, { type: 'echo', input: { value } })));
    const keyed = {
      method: 'POST' as const,
      url: '/v1/jobs',
      headers: { 'idempotency-key': 'metrics-test-1' },
      payload: { type: 'echo', input: { value: 'once' } },
    };
    const first = await app.inject(keyed);
    expect(first.statusCode).toBe(202);
    const replay = await app.inject(keyed);
    expect([200, 202]).toContain(replay.statusCode); // 200 once the job already finished
    expect(replay.headers['idempotent-replayed']).toBe('true');
    // sleep: one fails on its only attempt; one fails once, is retried and succeeds (two attempts).
    const failing = await createJob(app, { type: 'sleep', input: { ms: 1, steps: 1, fail_times: 1 }, max_attempts: 1 });
    const retried = await createJob(app, { type: 'sleep', input: { ms: 1, steps: 1, fail_times: 1 }, max_attempts: 2 });
    // A delayed echo that stays queued.
    const delayed = await createJob(app, { type: 'echo', input: {}, delay_s: 3600 });
    // block: runs until canceled.
    const blocked = await createJob(app, { type: 'block' });

    for (const job of [...echoes, first.json<{ id: string }>()]) await waitForStatus(app, job.id, 'succeeded');
    await waitForStatus(app, failing.id, 'failed');
    await waitForStatus(app, retried.id, 'succeeded');
    await waitFor(() => block.started.has(blocked.id), { what: 'the block handler to start' });

    // While the block job runs: one busy slot, one running block job, the delayed echo queued.
    const during = (await scrape(app)).exposition;
    expect(valueOf(during, 'worker_slots', { state: 'busy' })).toBe(1);
    expect(valueOf(during, 'worker_slots', { state: 'idle' })).toBe(3);
    expect(valueOf(during, 'jobs_in_state', { state: 'running', type: 'block' })).toBe(1);
    expect(valueOf(during, 'jobs_in_state', { state: 'queued', type: 'echo' })).toBe(1);
    expect(valueOf(during, 'jobs_in_state', { state: 'delayed', type: 'echo' })).toBe(1);
    expect(valueOf(during, 'jobs_in_state', { state: 'delayed', type: 'sleep' })).toBe(0);
    expect(valueOf(during, 'jobs_in_state', { state: 'delayed', type: '' })).toBeUndefined();
    expect(valueOf(during, 'jobs_in_state', { state: 'running', type: 'echo' })).toBe(0);
    expect(valueOf(during, 'jobs_in_state', { state: 'queued', type: 'sleep' })).toBe(0);

    expect((await app.inject({ method: 'POST', url: `/v1/jobs/${blocked.id}/cancel` })).statusCode).toBe(202);
    await waitForStatus(app, blocked.id, 'canceled');
    // The pool counts an outcome once the store took it; the metrics are told in the same step.
    await waitFor(() => pool.counters.succeeded === 5 && pool.counters.failed === 1 && pool.counters.canceled === 1, {
      what: 'the pool to count every outcome',
    });

    const { response, exposition } = await scrape(app);
    expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-store');

    expect(valueOf(exposition, 'jobs_created_total', { type: 'echo' })).toBe(5);
    expect(valueOf(exposition, 'jobs_created_total', { type: 'sleep' })).toBe(2);
    expect(valueOf(exposition, 'jobs_created_total', { type: 'block' })).toBe(1);

    expect(valueOf(exposition, 'jobs_finished_total', { type: 'echo', status: 'succeeded' })).toBe(4);
    expect(valueOf(exposition, 'jobs_finished_total', { type: 'echo', status: 'failed' })).toBe(0);
    expect(valueOf(exposition, 'jobs_finished_total', { type: 'sleep', status: 'succeeded' })).toBe(1);
    expect(valueOf(exposition, 'jobs_finished_total', { type: 'sleep', status: 'failed' })).toBe(1);
    expect(valueOf(exposition, 'jobs_finished_total', { type: 'block', status: 'canceled' })).toBe(1);

    expect(valueOf(exposition, 'job_attempts_total', { type: 'echo' })).toBe(4);
    expect(valueOf(exposition, 'job_attempts_total', { type: 'sleep' })).toBe(3);
    expect(valueOf(exposition, 'job_attempts_total', { type: 'block' })).toBe(1);
    for (const [type, attempts] of [
      ['echo', 4],
      ['sleep', 3],
      ['block', 1],
    ] as const) {
      expect(valueOf(exposition, 'job_wait_seconds_count', { type }), `job_wait_seconds_count ${type}`).toBe(attempts);
      expect(valueOf(exposition, 'job_run_seconds_count', { type }), `job_run_seconds_count ${type}`).toBe(attempts);
      expect(valueOf(exposition, 'job_run_seconds_bucket', { type, le: '+Inf' })).toBe(attempts);
      expect(valueOf(exposition, 'job_run_seconds_sum', { type })).toBeGreaterThanOrEqual(0);
    }
    // The canceled block job ran for as long as the scrape above and the cancel took: more than nothing.
    expect(valueOf(exposition, 'job_run_seconds_sum', { type: 'block' })).toBeGreaterThan(0);

    expect(valueOf(exposition, 'worker_slots', { state: 'busy' })).toBe(0);
    expect(valueOf(exposition, 'worker_slots', { state: 'idle' })).toBe(4);
    expect(valueOf(exposition, 'jobs_in_state', { state: 'running', type: 'block' })).toBe(0);
    expect(valueOf(exposition, 'worker_leases_lost_total')).toBe(0);
    expect(valueOf(exposition, 'store_up')).toBe(1);
    expect(valueOf(exposition, 'store_command_seconds_count', { command: 'ping' })).toBe(2);
    expect(valueOf(exposition, 'store_command_seconds_count', { command: 'stats' })).toBe(2);
    expect(valueOf(exposition, 'store_command_seconds_count', { command: 'finishAndClaim' })).toBeGreaterThanOrEqual(1);

    expect(exposition.types.get('jobs_created_total')).toBe('counter');
    expect(exposition.types.get('jobs_finished_total')).toBe('counter');
    expect(exposition.types.get('job_run_seconds')).toBe('histogram');
    expect(exposition.types.get('job_wait_seconds')).toBe('histogram');
    expect(exposition.types.get('jobs_in_state')).toBe('gauge');
    expect(exposition.types.get('http_request_duration_seconds')).toBe('histogram');

    // Node process metrics.
    expect(valueOf(exposition, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(exposition, 'nodejs_heap_size_total_bytes')).toBeGreaterThan(0);
    expect(exposition.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');

    // HTTP: by route template, never a raw URL; a scrape does not count itself.
    const http = exposition.samples.filter((sample) => sample.name === 'http_request_duration_seconds_count');
    const routes = new Set(http.map((sample) => sample.labels.route));
    expect(routes).toContain('/v1/jobs/:id');
    expect(routes).toContain('/v1/jobs/:id/cancel');
    expect(routes).not.toContain('/metrics');
    // Nine submits: 202, but the replay is 200 when its job finished already.
    const submits = (status: string) =>
      valueOf(exposition, 'http_request_duration_seconds_count', {
        method: 'POST',
        route: '/v1/jobs',
        status_code: status,
      }) ?? 0;
    expect(submits('202') + submits('200')).toBe(9);
    expect(
      valueOf(exposition, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: '/v1/jobs/:id',
        status_code: '200',
      }),
    ).toBeGreaterThanOrEqual(7); // each job but the delayed one polled at least once
    const ids = [...echoes, failing, retried, delayed, blocked].map((job) => job.id);
    for (const sample of exposition.samples) {
      for (const value of Object.values(sample.labels)) {
        for (const id of ids) expect(value, `${sample.name} has a job id in a label`).not.toContain(id);
      }
    }
  });

  it('labels requests no route matched as "unmatched", not by their URL', async () => {
    const { app } = await openInstance();
    expect((await app.inject({ method: 'GET', url: '/no/such/route/01JD3M5W6SX1T4KQ8V0ZC2N7GH' })).statusCode).toBe(
      404,
    );
    expect((await app.inject({ method: 'GET', url: '/v1/jobs/01JD3M5W6SX1T4KQ8V0ZC2N7GH' })).statusCode).toBe(404);
    const { exposition } = await scrape(app);
    expect(
      valueOf(exposition, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: 'unmatched',
        status_code: '404',
      }),
    ).toBe(1);
    expect(
      valueOf(exposition, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: '/v1/jobs/:id',
        status_code: '404',
      }),
    ).toBe(1);
    expect(
      exposition.samples.some((sample) =>
        Object.values(sample.labels).some((value) => value.includes('01JD3M5W6SX1T4KQ8V0ZC2N7GH')),
      ),
    ).toBe(false);
  });

  it('has every job type series at 0 before any job, and no CORS headers', async () => {
    const { app } = await openInstance({ corsOrigins: '*' });
    const response = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { origin: 'https://app.example.com' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
    // The /v1 API does answer that origin: CORS is on, just not here.
    const api = await app.inject({
      method: 'GET',
      url: '/v1/job-types',
      headers: { origin: 'https://app.example.com' },
    });
    expect(api.headers['access-control-allow-origin']).toBe('*');
    const exposition = parseExposition(response.body);
    for (const type of ['echo', 'sleep', 'block']) {
      expect(valueOf(exposition, 'jobs_created_total', { type })).toBe(0);
      expect(valueOf(exposition, 'job_attempts_total', { type })).toBe(0);
      expect(valueOf(exposition, 'jobs_finished_total', { type, status: 'canceled' })).toBe(0);
      expect(valueOf(exposition, 'job_wait_seconds_count', { type })).toBe(0);
      expect(valueOf(exposition, 'jobs_in_state', { state: 'queued', type })).toBe(0);
      expect(valueOf(exposition, 'jobs_in_state', { state: 'delayed', type })).toBe(0);
    }
  });

  it('reports store_up 0 (and no jobs_in_state) when the store does not answer, and still answers 200', async () => {
    class UnreachableStore extends MemoryJobStore {
      override async ping(): Promise<number> {
        throw new StoreUnavailableError('redis: connection refused');
      }
    }
    const { app } = await openInstance({ store: new UnreachableStore({ jobTtlMs: 60_000 }) });
    const { exposition } = await scrape(app);
    expect(valueOf(exposition, 'store_up')).toBe(0);
    expect(valueOf(exposition, 'store_command_seconds_count', { command: 'ping' })).toBe(1);
    expect(exposition.samples.filter((sample) => sample.name === 'jobs_in_state')).toEqual([]);
  });

  it('with METRICS_TOKEN: 401 problem+json with WWW-Authenticate without it or with a wrong one, 200 with it', async () => {
    const { app } = await openInstance({ metricsToken: TOKEN });
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Basic ${TOKEN}` },
      { authorization: `Bearer ${TOKEN}x` },
    ]) {
      const response = await app.inject({ method: 'GET', url: '/metrics', headers });
      expectProblem(response, 401, 'unauthorized');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="metrics"');
      expect(response.body).not.toContain('jobs_created_total');
    }
    const { exposition } = await scrape(app, { authorization: `Bearer ${TOKEN}` });
    expect(valueOf(exposition, 'store_up')).toBe(1);
    // The token guards /metrics only.
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/job-types' })).statusCode).toBe(200);
  });

  it('is served by a worker-only instance too', async () => {
    const { app } = await openInstance({ role: 'worker' });
    const { exposition } = await scrape(app);
    expect(valueOf(exposition, 'worker_slots', { state: 'idle' })).toBe(4);
  });

  it('keeps apps in one process apart (a registry each)', async () => {
    const one = await openInstance();
    const two = await openInstance();
    await createJob(one.app, { type: 'echo', input: {} });
    expect(valueOf((await scrape(one.app)).exposition, 'jobs_created_total', { type: 'echo' })).toBe(1);
    expect(valueOf((await scrape(two.app)).exposition, 'jobs_created_total', { type: 'echo' })).toBe(0);
  });
});

describe.each([
  { name: 'memory', open: async (): Promise<JobStore> => new MemoryJobStore({ jobTtlMs: 60_000 }) },
  {
    name: 'redis',
    open: (): Promise<JobStore> =>
      RedisJobStore.connect({
        url: inject('redisUrl'),
        keyPrefix: `t${randomUUID().slice(0, 8)}`,
        jobTtlMs: 60_000,
        connectTimeoutMs: 2000,
        commandTimeoutMs: 1000,
      }),
  },
])('jobs_in_state{state="delayed"} on the $name store', ({ open }) => {
  it('counts delayed jobs per type, apart from the ready ones, and drops them once they run', async () => {
    const store = await open();
    // No workers: what is queued stays queued.
    const app = await buildApp({
      store,
      handlers: new HandlerRegistry(builtInHandlers),
      pool: null,
      metrics: new ServiceMetrics({ jobTypes: ['echo', 'sleep'], processMetrics: false }),
    });
    await app.ready();
    opened.push({
      close: async () => {
        await app.close();
        await store.close();
      },
    });
    const delayedEchoes = await Promise.all(
      [1, 2].map((value) => createJob(app, { type: 'echo', input: { value }, delay_s: 3600 })),
    );
    await createJob(app, { type: 'echo', input: { value: 'now' } });
    await createJob(app, { type: 'sleep', input: { ms: 1 }, delay_s: 600 });
    await createJob(app, { type: 'sleep', input: { ms: 1 } });
    await createJob(app, { type: 'sleep', input: { ms: 1 } });

    let { exposition } = await scrape(app);
    expect(valueOf(exposition, 'jobs_in_state', { state: 'delayed', type: 'echo' })).toBe(2);
    expect(valueOf(exposition, 'jobs_in_state', { state: 'delayed', type: 'sleep' })).toBe(1);
    expect(valueOf(exposition, 'jobs_in_state', { state: 'queued', type: 'echo' })).toBe(3);
    expect(valueOf(exposition, 'jobs_in_state', { state: 'queued', type: 'sleep' })).toBe(3);
    // The per-type series add up to the store's total.
    const delayedSum = exposition.samples
      .filter((sample) => sample.name === 'jobs_in_state' && sample.labels.state === 'delayed')
      .reduce((sum, sample) => sum + sample.value, 0);
    expect(delayedSum).toBe((await store.stats(Date.now())).delayed);

    // Run one delayed echo now: it is ready, no longer delayed.
    const ran = await app.inject({ method: 'POST', url: `/admin/jobs/${delayedEchoes[0]!.id}/run-now` });
    expect(ran.statusCode, ran.body).toBe(200);
    ({ exposition } = await scrape(app));
    expect(valueOf(exposition, 'jobs_in_state', { state: 'delayed', type: 'echo' })).toBe(1);
    expect(valueOf(exposition, 'jobs_in_state', { state: 'queued', type: 'echo' })).toBe(3);
  });
});

describe('jobs_keys_at_cap', () => {
  it('counts per type the concurrency keys whose ready jobs wait at key_concurrency, 0 for the known types', async () => {
    const store = new MemoryJobStore({ jobTtlMs: 60_000 });
    const app = await buildApp({
      store,
      handlers: new HandlerRegistry(builtInHandlers),
      pool: null,
      metrics: new ServiceMetrics({ jobTypes: ['echo'], processMetrics: false }),
    });
    await app.ready();
    opened.push({
      close: async () => {
        await app.close();
        await store.close();
      },
    });
    let { exposition } = await scrape(app);
    expect(exposition.types.get('jobs_keys_at_cap')).toBe('gauge');
    expect(valueOf(exposition, 'jobs_keys_at_cap', { type: 'echo' })).toBe(0);

    // Two jobs of one key, and a claim that may run one of them at a time: the other waits at the cap.
    for (let n = 0; n < 2; n += 1) {
      const now = Date.now();
      await store.create({
        id: newJobId(now),
        type: 'keyed',
        tenant: '-',
        input: {},
        metadata: {},
        priority: 0,
        maxAttempts: 1,
        timeoutS: null,
        createdAt: now,
        runAt: now,
        concurrencyKey: 'customer-1',
      });
    }
    const claimed = await store.claim({
      types: ['keyed'],
      limits: { keyed: { keyConcurrency: 1 } },
      max: 2,
      workerId: 'w',
      leaseId: 'l',
      leaseMs: 30_000,
      now: Date.now(),
    });
    expect(claimed).toHaveLength(1);
    ({ exposition } = await scrape(app));
    expect(valueOf(exposition, 'jobs_keys_at_cap', { type: 'keyed' })).toBe(1);
    expect(valueOf(exposition, 'jobs_keys_at_cap', { type: 'echo' })).toBe(0);
  });
});

describe('schedule_fires_total and schedule_fire_lag_seconds', () => {
  it("count each fire time by the schedule's type and outcome, and time created ones from their fire time", async () => {
    const store = new MemoryJobStore({ jobTtlMs: 60_000 });
    const schedules = new MemoryScheduleStore();
    const metrics = new ServiceMetrics({ jobTypes: ['echo', 'sleep'], processMetrics: false });
    const app = await buildApp({ store, handlers: new HandlerRegistry(builtInHandlers), pool: null, metrics });
    await app.ready();
    opened.push({
      close: async () => {
        await app.close();
        await store.close();
      },
    });
    let { exposition } = await scrape(app);
    expect(exposition.types.get('schedule_fires_total')).toBe('counter');
    expect(exposition.types.get('schedule_fire_lag_seconds')).toBe('histogram');
    for (const outcome of ['created', 'skipped', 'missed'])
      expect(valueOf(exposition, 'schedule_fires_total', { schedule_type: 'echo', outcome })).toBe(0);
    expect(valueOf(exposition, 'schedule_fire_lag_seconds_count', { schedule_type: 'sleep' })).toBe(0);

    const scheduler = new Scheduler({
      schedules,
      jobs: store,
      log: pino({ level: 'silent' }),
      idempotencyTtlMs: 60_000,
      observer: metrics.schedules,
      newJob: (schedule, scheduledFor, now) => ({
        id: newJobId(now),
        type: schedule.type,
        tenant: schedule.tenant,
        input: schedule.input,
        metadata: {},
        priority: 0,
        maxAttempts: 1,
        timeoutS: null,
        createdAt: now,
        runAt: now,
        scheduleId: schedule.id,
        scheduledFor,
      }),
    });
    // Every second since `start`, fired once at start + 10.5 s: 10 fire times are due, the last two on time (at
    // most 2 s late: 1.5 s and 0.5 s), the 8 before them missed (catch_up none). With overlap skip, the second
    // on-time one finds the first one's job still queued.
    const start = Date.now() - 60_000;
    const record = (id: string, type: string, overlap: 'allow' | 'skip'): ScheduleRecord => ({
      id,
      tenant: 'acme',
      cron: null,
      everyS: 1,
      timezone: 'UTC',
      type,
      input: {},
      metadata: {},
      priority: 0,
      maxAttempts: null,
      timeoutS: null,
      concurrencyKey: null,
      webhook: null,
      overlap,
      catchUp: 'none',
      startAt: null,
      endAt: null,
      paused: false,
      nextRunAt: start + 1000,
      lastRunAt: null,
      lastJobId: null,
      fires: { created: 0, skipped: 0, missed: 0 },
      createdAt: start,
      updatedAt: start,
      version: 1,
    });
    expect(await schedules.save(record('echoes', 'echo', 'allow'), 0)).toBe('saved');
    expect(await schedules.save(record('sleeps', 'sleep', 'skip'), 0)).toBe('saved');
    await scheduler.tick(start + 10_500);

    ({ exposition } = await scrape(app));
    const fires = (schedule_type: string, outcome: string) =>
      valueOf(exposition, 'schedule_fires_total', { schedule_type, outcome });
    expect([fires('echo', 'created'), fires('echo', 'skipped'), fires('echo', 'missed')]).toEqual([2, 0, 8]);
    expect([fires('sleep', 'created'), fires('sleep', 'skipped'), fires('sleep', 'missed')]).toEqual([1, 1, 8]);
    expect(valueOf(exposition, 'schedule_fire_lag_seconds_count', { schedule_type: 'echo' })).toBe(2);
    expect(valueOf(exposition, 'schedule_fire_lag_seconds_sum', { schedule_type: 'echo' })).toBeCloseTo(2, 6);
    expect(valueOf(exposition, 'schedule_fire_lag_seconds_bucket', { schedule_type: 'echo', le: '0.5' })).toBe(1);
    expect(valueOf(exposition, 'schedule_fire_lag_seconds_bucket', { schedule_type: 'echo', le: '2.5' })).toBe(2);
    expect(valueOf(exposition, 'schedule_fire_lag_seconds_sum', { schedule_type: 'sleep' })).toBeCloseTo(1.5, 6);
    // The schedules record the same counts.
    expect((await schedules.get('acme', 'sleeps'))!.fires).toEqual({ created: 1, skipped: 1, missed: 8 });
    // A type first seen on a schedule gets its series then (the other schedules are not due again yet).
    expect(await schedules.save(record('other', 'report', 'allow'), 0)).toBe('saved');
    await scheduler.tick(start + 10_600);
    ({ exposition } = await scrape(app));
    expect([fires('report', 'created'), fires('report', 'skipped'), fires('report', 'missed')]).toEqual([2, 0, 8]);
    expect(fires('echo', 'created')).toBe(2);
  });
});

describe('METRICS_TOKEN', () => {
  it('is optional, and needs at least 16 characters when set (never echoed)', () => {
    expect(loadConfig({}).METRICS_TOKEN).toBeUndefined();
    expect(loadConfig({ METRICS_TOKEN: TOKEN }).METRICS_TOKEN).toBe(TOKEN);
    let error: unknown;
    try {
      loadConfig({ METRICS_TOKEN: 'short-secret' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('METRICS_TOKEN');
    expect((error as Error).message).not.toContain('short-secret');
  });
});
