import { afterEach, describe, expect, it } from 'vitest';
import { spawnRedis, type SpawnedRedis } from '../helpers/redis-server.js';
import { Api, portIsClosed, randomPrefix, startService, useServiceCleanup } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * Redis going away while the service runs: a paused Redis (SIGSTOP) turns requests into quick 503s
 * instead of hangs, liveness stays up, and the service recovers by itself when Redis answers again,
 * also after Redis was killed and restarted.
 */

useServiceCleanup();

let redis: SpawnedRedis | undefined;
afterEach(async () => {
  await redis?.stop(); // SIGCONT + SIGKILL: never leaves a stopped redis-server behind
  redis = undefined;
});

interface ProblemBody {
  type: string;
  status: number;
  code: string;
  detail: string;
}

describe('Redis outage while the service runs', () => {
  it(
    'answers 503 quickly while Redis is paused, and recovers after SIGCONT and after a Redis crash + restart',
    { timeout: 40_000 },
    async () => {
      // No persistence: a Redis crash loses its data, which this test relies on; /health says `warn` for it.
      const server = await spawnRedis();
      redis = server;
      const service = await startService({
        REDIS_URL: server.url,
        REDIS_REQUIRED: 'true',
        REDIS_KEY_PREFIX: randomPrefix(),
        WORKER_CONCURRENCY: '2',
      });
      const api = Api.of(service);

      const before = await api.submit({ type: 'echo', input: { value: 'before' } });
      await api.waitForJob(before.id, 'succeeded', (j) => j.status === 'succeeded', 5000);
      const first = (await api.health()).body;
      expect(first).toMatchObject({
        status: 'warn',
        checks: { store: { status: 'pass' }, persistence: { status: 'warn', aof: false, rdb: false } },
      });

      // ---- Redis paused: connections stay open but nothing answers.
      server.signal('SIGSTOP');

      const get = await api.request<ProblemBody>('GET', `/v1/jobs/${before.id}`, { timeoutMs: 10_000 });
      expect(get.status).toBe(503);
      expect(get.elapsedMs).toBeLessThan(2500);
      expect(get.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(get.body).toMatchObject({ code: 'store-unavailable', status: 503, type: '/problems/store-unavailable' });
      expect(Number(get.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

      const health = await api.health(10_000);
      expect(health.status).toBe(503);
      expect(health.elapsedMs).toBeLessThan(2500);
      expect(health.body).toMatchObject({
        status: 'fail',
        checks: { store: { kind: 'redis', status: 'fail', latency_ms: null } },
      });

      const live = await api.request('GET', '/health/live', { timeoutMs: 2000 });
      expect(live.status).toBe(200);
      expect(live.elapsedMs).toBeLessThan(1000);

      // ---- Redis resumes: reads work again and new work runs.
      server.signal('SIGCONT');
      await waitFor(async () => (await api.request('GET', `/v1/jobs/${before.id}`)).status === 200, {
        timeoutMs: 5000,
        intervalMs: 100,
        what: 'GET to answer 200 after SIGCONT',
      });
      const afterPause = await api.submit({ type: 'echo', input: { value: 'after pause' } });
      const ranAfterPause = await api.waitForJob(afterPause.id, 'succeeded', (j) => j.done, 5000);
      expect(ranAfterPause).toMatchObject({ status: 'succeeded', result: { value: 'after pause' } });
      await waitFor(async () => (await api.health()).body.checks.store.status === 'pass', {
        timeoutMs: 5000,
        intervalMs: 100,
        what: '/health to pass after SIGCONT',
      });

      // ---- Redis crashes (its data is gone: no persistence) and comes back on the same port.
      server.signal('SIGKILL');
      await waitFor(() => portIsClosed(server.port), {
        timeoutMs: 5000,
        intervalMs: 50,
        what: 'the killed redis-server to release its port',
      });
      const down = await waitFor(
        async () => {
          const answer = await api.health(5000);
          return answer.status === 503 ? answer : undefined;
        },
        { timeoutMs: 5000, intervalMs: 100, what: '/health to fail while Redis is down' },
      );
      expect(down.elapsedMs).toBeLessThan(2500);
      const whileDown = await api.request<ProblemBody>('GET', `/v1/jobs/${before.id}`, { timeoutMs: 5000 });
      expect(whileDown.status).toBe(503);
      expect(whileDown.body.code).toBe('store-unavailable');
      expect((await api.request('GET', '/health/live')).status).toBe(200);

      await server.restart();
      const restartedAt = performance.now();
      const healthy = await waitFor(
        async () => {
          const answer = await api.health(5000);
          return answer.status === 200 ? answer.body : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 100, what: '/health to pass after the Redis restart' },
      );
      expect(healthy.checks.store.status).toBe('pass');
      expect(healthy.status).toBe('warn'); // still no persistence
      expect(performance.now() - restartedAt).toBeLessThan(10_000);

      // The old job went with Redis's memory; a new one is stored and run.
      expect((await api.request('GET', `/v1/jobs/${before.id}`)).status).toBe(404);
      const afterRestart = await api.submit({ type: 'echo', input: { value: 'after restart' } });
      const ranAfterRestart = await api.waitForJob(afterRestart.id, 'succeeded', (j) => j.done, 5000);
      expect(ranAfterRestart).toMatchObject({ status: 'succeeded', result: { value: 'after restart' } });
      expect(service.running).toBe(true);
    },
  );

  it('lets a job running through a short Redis pause finish as its first attempt', { timeout: 30_000 }, async () => {
    const server = await spawnRedis();
    redis = server;
    const service = await startService({
      REDIS_URL: server.url,
      REDIS_REQUIRED: 'true',
      REDIS_KEY_PREFIX: randomPrefix(),
      LEASE_S: '10',
    });
    const api = Api.of(service);
    // It ends ~1 s after it started: inside the pause, so writing its outcome has to wait for Redis.
    const job = await api.submit({ type: 'sleep', input: { ms: 1000, steps: 2 } });
    await api.waitForJob(job.id, 'running', (j) => j.status === 'running', 5000, 20);

    server.signal('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the outage itself: nothing to poll for
    server.signal('SIGCONT');

    const done = await api.waitForJob(job.id, 'done', (j) => j.done, 10_000, 100);
    expect(done).toMatchObject({
      status: 'succeeded',
      attempt: 1,
      result: { slept_ms: 1000, attempt: 1 },
      error: null,
    });
    expect(service.logs().filter((line) => line.level >= 50 && line.jobId === job.id)).toEqual([]);
  });
});
