import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { spawnRedis } from '../helpers/redis-server.js';
import { Api, randomPrefix, startService, useServiceCleanup, type JobView } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * Jobs in Redis outlive the process: a SIGKILLed instance loses nothing stored, a running job whose
 * worker died runs again once its lease lapses, and SIGTERM drains (or re-queues) what is running.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

const onRedis = (prefix: string, extra: Record<string, string> = {}): Record<string, string> => ({
  REDIS_URL: redis.url,
  REDIS_REQUIRED: 'true',
  REDIS_KEY_PREFIX: prefix,
  ...extra,
});

describe('durability across process crashes and restarts', () => {
  it('keeps finished and queued jobs across a SIGKILL and a restart', { timeout: 40_000 }, async () => {
    const prefix = randomPrefix();
    const first = await startService(onRedis(prefix, { WORKER_CONCURRENCY: '1' }));
    const api1 = Api.of(first);

    const echo = await api1.submit({ type: 'echo', input: { value: { hello: 'world', n: 42 } } });
    await api1.waitForJob(echo.id, 'succeeded', (job) => job.status === 'succeeded', 10_000);
    const delayed = await api1.submit({ type: 'sleep', input: { ms: 10 }, delay_s: 30 });
    expect(delayed.status).toBe('queued');

    const exit = await first.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');

    const second = await startService(onRedis(prefix, { WORKER_CONCURRENCY: '1' }));
    const api2 = Api.of(second);

    const finished = await api2.job(echo.id);
    expect(finished).toMatchObject({
      status: 'succeeded',
      done: true,
      attempt: 1,
      result: { value: { hello: 'world', n: 42 } },
    });
    const result = await api2.request('GET', `/v1/jobs/${echo.id}/result`);
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ value: { hello: 'world', n: 42 } });

    const queued = await api2.job(delayed.id);
    expect(queued).toMatchObject({ status: 'queued', done: false, attempt: 0 });

    const list = await api2.request<{ data: JobView[]; next_cursor: string | null }>('GET', '/v1/jobs?limit=100');
    expect(list.status).toBe(200);
    expect(list.body.data.map((job) => [job.id, job.status]).sort()).toEqual(
      [
        [echo.id, 'succeeded'],
        [delayed.id, 'queued'],
      ].sort(),
    );
  });

  it(
    'runs a job again, as attempt 2, after its worker was SIGKILLed and the lease lapsed',
    { timeout: 40_000 },
    async () => {
      const prefix = randomPrefix();
      const env = onRedis(prefix, { LEASE_S: '2', WORKER_CONCURRENCY: '2' });
      const first = await startService(env);
      const api1 = Api.of(first);

      const job = await api1.submit({ type: 'sleep', input: { ms: 3000, steps: 3 } });
      const running = await api1.waitForJob(job.id, 'running', (j) => j.status === 'running', 10_000);
      expect(running.attempt).toBe(1);
      await first.kill('SIGKILL');
      const killedAt = Date.now();

      const second = await startService(env);
      const api2 = Api.of(second);

      const done = await api2.waitForJob(job.id, 'succeeded', (j) => j.done, 15_000, 100);
      expect(done).toMatchObject({
        status: 'succeeded',
        attempt: 2,
        result: { slept_ms: 3000, attempt: 2 },
        error: null,
      });
      // Lease (≤ 2 s) + a full 3 s run: it cannot have been done sooner.
      expect(Date.now() - killedAt).toBeGreaterThan(3000);
    },
  );
});

describe('graceful shutdown (SIGTERM)', () => {
  it(
    're-queues a long running job, without counting the attempt, when the grace period is over',
    { timeout: 40_000 },
    async () => {
      const prefix = randomPrefix();
      const service = await startService(onRedis(prefix, { SHUTDOWN_GRACE_S: '1', WORKER_CONCURRENCY: '1' }));
      const api = Api.of(service);
      const job = await api.submit({ type: 'sleep', input: { ms: 10_000, steps: 10 } });
      await api.waitForJob(job.id, 'running', (j) => j.status === 'running', 10_000);

      const signalledAt = performance.now();
      const exit = await service.kill('SIGTERM', 10_000);
      const tookMs = performance.now() - signalledAt;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(tookMs).toBeLessThan(5000);
      expect(tookMs).toBeGreaterThanOrEqual(900); // it did wait for the grace period
      const messages = service.logs().map((line) => line.msg);
      expect(messages).toContain('grace period over: aborting running jobs and re-queueing them');
      expect(messages).toContain('shut down cleanly');

      // A reader instance that runs no workers, so the job stays as the first instance left it.
      const reader = await startService(onRedis(prefix, { WORKER_CONCURRENCY: '0' }));
      const after = await Api.of(reader).job(job.id);
      expect(after).toMatchObject({ status: 'queued', done: false, attempt: 0, error: null });
      expect(after.progress.percent).toBeNull();
    },
  );

  it('lets a short running job finish before the process exits', { timeout: 40_000 }, async () => {
    const prefix = randomPrefix();
    const service = await startService(onRedis(prefix, { SHUTDOWN_GRACE_S: '5', WORKER_CONCURRENCY: '1' }));
    const api = Api.of(service);
    const job = await api.submit({ type: 'sleep', input: { ms: 300, steps: 1 } });
    await api.waitForJob(job.id, 'running', (j) => j.status === 'running', 10_000, 20);

    const exit = await service.kill('SIGTERM', 10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    // The drain saw the job running, so the SIGTERM did arrive mid-run.
    const draining = service.logs().find((line) => line.msg === 'draining: waiting for running jobs');
    expect(draining).toMatchObject({ running: 1 });
    expect(service.logs().map((line) => line.msg)).not.toContain(
      'grace period over: aborting running jobs and re-queueing them',
    );

    const reader = await startService(onRedis(prefix, { WORKER_CONCURRENCY: '0' }));
    const after = await waitFor(() => Api.of(reader).job(job.id), { intervalMs: 50, what: 'the reader to answer' });
    expect(after).toMatchObject({ status: 'succeeded', attempt: 1, result: { slept_ms: 300, attempt: 1 } });
  });

  it('exits within its grace period even when Redis does not answer', { timeout: 40_000 }, async () => {
    // Redis of this test's own: it is paused.
    const paused = await spawnRedis();
    try {
      const prefix = randomPrefix();
      const service = await startService({ ...onRedis(prefix, { SHUTDOWN_GRACE_S: '1' }), REDIS_URL: paused.url });
      expect((await Api.of(service).health()).status).toBe(200);
      paused.signal('SIGSTOP');

      const signalledAt = performance.now();
      service.child.kill('SIGTERM');
      const exit = await service.waitForExit(20_000);
      const tookMs = performance.now() - signalledAt;
      // SHUTDOWN_GRACE_S=1 and REDIS_COMMAND_TIMEOUT_MS=1000: nothing should keep it much beyond that.
      expect(
        tookMs,
        `shutdown took ${Math.round(tookMs)} ms; last log line: ${service.logs().at(-1)?.msg}`,
      ).toBeLessThan(5000);
      expect(exit).toEqual({ code: 0, signal: null });
    } finally {
      await paused.stop();
    }
  });

  it('does not leave a job claimed during the shutdown "running" under a dead lease', { timeout: 40_000 }, async () => {
    // The claim for a delayed job is held in flight by pausing Redis around the job's run_at; SIGTERM
    // arrives while it is pending, and Redis answers it (with the job leased) after the drain began.
    const slow = await spawnRedis();
    try {
      const prefix = randomPrefix();
      const env = { ...onRedis(prefix, { SHUTDOWN_GRACE_S: '5', WORKER_CONCURRENCY: '1' }), REDIS_URL: slow.url };
      const service = await startService(env);
      const api = Api.of(service);
      const job = await api.submit({ type: 'sleep', input: { ms: 2000, steps: 2 }, delay_s: 1.5 });
      const runAt = Date.parse(job.run_at);

      // Timed steps, not polls: the point is to act while a claim is in flight, which nothing outside shows.
      await delayUntil(runAt - 300);
      slow.signal('SIGSTOP');
      await delayUntil(runAt + 300); // the pool woke at run_at and its claim is waiting on Redis
      service.child.kill('SIGTERM');
      await delayUntil(runAt + 500); // well before the claim's 1 s command timeout
      slow.signal('SIGCONT');
      const exit = await service.waitForExit(15_000);
      expect(exit.code).toBe(0);

      const reader = await startService({ ...env, WORKER_CONCURRENCY: '0' });
      const after = await Api.of(reader).job(job.id);
      // Released (queued, attempt 0) or finished within the grace period: both fine. Left `running` with
      // attempt 1 means the job was claimed after the drain and abandoned when the process exited.
      expect({ status: after.status, attempt: after.attempt }).toSatisfy(
        (state: { status: string; attempt: number }) =>
          (state.status === 'queued' && state.attempt === 0) || (state.status === 'succeeded' && state.attempt === 1),
      );
    } finally {
      await slow.stop();
    }
  });
});

const delayUntil = (at: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
