import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { StoreUnavailableError } from '../../src/store/job-store.js';
import { healthSchema } from '../../src/routes/schemas.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { harnessScope } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

class UnreachableStore extends MemoryJobStore {
  override async ping(): Promise<number> {
    throw new StoreUnavailableError('redis: connection refused');
  }
}

const HEALTH_JSON = /^application\/health\+json/;

describe('GET /health/live', () => {
  it('200 pass as application/health+json', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'GET', url: '/health/live' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(HEALTH_JSON);
    expect(response.json()).toEqual({ status: 'pass' });
  });

  it('stays 200 while the store is down or the instance shuts down', async () => {
    const { app } = await scope.open({ store: new UnreachableStore({ jobTtlMs: 60_000 }), isShuttingDown: () => true });
    const response = await app.inject({ method: 'GET', url: '/health/live' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'pass' });
  });
});

describe('GET /health', () => {
  it('200 pass with the store and worker checks', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(HEALTH_JSON);
    expect(response.headers['cache-control']).toBe('no-store');
    const health = healthSchema.parse(response.json());
    expect(health).toEqual({
      status: 'pass',
      checks: {
        store: { kind: 'memory', fallback: false, status: 'pass', latency_ms: expect.any(Number) as number },
        workers: { concurrency: 0, busy: 0, status: 'pass', live: 0, unserved_types: [] },
        auth: { mode: 'open' },
      },
    });
  });

  it("reports the pool's concurrency and busy slots", async () => {
    const { app } = await scope.open({ workers: true, concurrency: 2 });
    const health = healthSchema.parse((await app.inject({ method: 'GET', url: '/health' })).json());
    expect(health.status).toBe('pass');
    expect(health.checks.workers).toMatchObject({ concurrency: 2, busy: 0 });
  });

  it('200 warn when jobs wait of a type no live worker runs, naming it', async () => {
    const ops = new MemoryOpsStore();
    const { app } = await scope.open({ ops });
    await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo', input: {} } });
    let health = healthSchema.parse((await app.inject({ method: 'GET', url: '/health' })).json());
    expect(health.status).toBe('warn');
    expect(health.checks.workers).toMatchObject({ status: 'warn', live: 0, unserved_types: ['echo'] });
    expect(health.checks.workers.output).toMatch(/echo/);
    // A live worker for echo (another instance, say) clears it.
    const now = Date.now();
    await ops.beat({
      id: 'other:1',
      host: 'other',
      pid: 1,
      version: '1',
      role: 'worker',
      started_at: now,
      beat_at: now,
      types: ['echo'],
      slots_total: 4,
      slots_busy: 0,
      job_ids: [],
      leases_lost: 0,
      draining: false,
    });
    // The registry is read at most every 2 s.
    await expect
      .poll(
        async () => healthSchema.parse((await app.inject({ method: 'GET', url: '/health' })).json()).checks.workers,
        { timeout: 5000, interval: 250 },
      )
      .toMatchObject({ status: 'pass', live: 1, unserved_types: [] });
    health = healthSchema.parse((await app.inject({ method: 'GET', url: '/health' })).json());
    expect(health.status).toBe('pass');
  });

  it('200 warn when the store is the memory fallback', async () => {
    const { app } = await scope.open({ storeFallback: true });
    const response = await app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(HEALTH_JSON);
    const health = healthSchema.parse(response.json());
    expect(health.status).toBe('warn');
    expect(health.description).toEqual(expect.any(String));
    expect(health.checks.store).toMatchObject({ kind: 'memory', fallback: true, status: 'warn' });
  });

  it('503 fail while shutting down', async () => {
    const { app } = await scope.open({ isShuttingDown: () => true });
    const response = await app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(HEALTH_JSON);
    const health = healthSchema.parse(response.json());
    expect(health.status).toBe('fail');
    expect(health.description).toBe('shutting down');
    expect(health.checks.store.status).toBe('pass');
  });

  it('503 fail when the store cannot be reached', async () => {
    const { app } = await scope.open({ store: new UnreachableStore({ jobTtlMs: 60_000 }) });
    const response = await app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(HEALTH_JSON);
    const health = healthSchema.parse(response.json());
    expect(health.status).toBe('fail');
    expect(health.checks.store).toEqual({
      kind: 'memory',
      fallback: false,
      status: 'fail',
      latency_ms: null,
      output: expect.any(String) as string,
    });
  });

  it('is documented with the health schema for 200 and 503', async () => {
    const { app } = await scope.open();
    const document = z
      .object({
        paths: z.record(z.string(), z.record(z.string(), z.object({ responses: z.record(z.string(), z.unknown()) }))),
      })
      .parse(app.swagger());
    expect(Object.keys(document.paths['/health']?.get?.responses ?? {}).sort()).toEqual(['200', '503']);
  });
});
