import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { Api, useServiceCleanup } from '../e2e/helpers.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  expectAllSucceeded,
  listAll,
  sleepJobs,
  startFleet,
  stats,
  submitAll,
  waitUntilSettled,
  type ScaleJob,
} from './fleet.js';

/*
 * ROLE splits a deployment: `api` instances serve HTTP and run no handlers, `worker` instances run jobs
 * and serve only the health probes. Jobs and cancels go through the api and reach the worker via Redis.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

describe('ROLE=api and ROLE=worker', () => {
  it(
    'the api instance takes the jobs, the worker instance runs them, and a cancel crosses over within a second',
    { timeout: 60_000 },
    async () => {
      // WORKER_CONCURRENCY is set on the api instance too: its ROLE alone must keep it from running jobs.
      const fleet = await startFleet(redis, 2, { WORKER_CONCURRENCY: '10' }, (index) => ({
        ROLE: index === 0 ? 'api' : 'worker',
      }));
      const [api, worker] = fleet.apis as [Api, Api];

      // The worker instance: probes only.
      expect((await worker.request('GET', '/health/live')).status).toBe(200);
      const health = await worker.request<{ status: string; checks: { store: { status: string } } }>('GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body.checks.store.status).toBe('pass'); // overall `warn`: the test Redis keeps nothing on disk
      expect((await worker.request('POST', '/v1/jobs', { body: { type: 'sleep', input: { ms: 1 } } })).status).toBe(
        404,
      );
      expect((await worker.request('GET', '/admin/stats')).status).toBe(404);

      // Jobs submitted to the api instance are run, and not by it.
      const { ids, unknownOutcomes } = await submitAll(() => api, sleepJobs(50, 0, 20), { inFlight: 10 });
      expect(unknownOutcomes).toBe(0);
      await waitUntilSettled(() => api, ids.length, 20_000);
      expectAllSucceeded(await listAll(api), ids);
      expect((await stats(api)).pool.started).toBe(0);

      // A cancel sent to the api instance reaches the handler running on the worker instance.
      const long = await api.submit({ type: 'sleep', input: { ms: 60_000, steps: 600 } });
      await api.waitForJob(long.id, 'running', (job) => job.status === 'running', 10_000, 50);
      const cancelAt = performance.now();
      const cancel = await api.request('POST', `/v1/jobs/${long.id}/cancel`);
      expect(cancel.status).toBe(202);
      let last: ScaleJob | undefined;
      // Bounded, as before: should the job not be done within 3 s, the expects below judge (and show its status).
      await waitFor(async () => (last = (await api.request<ScaleJob>('GET', `/v1/jobs/${long.id}`)).body).done, {
        timeoutMs: 3000,
        intervalMs: 50,
        what: `job ${long.id} to be done after the cancel`,
      }).catch(() => undefined);
      const tookMs = Math.round(performance.now() - cancelAt);
      console.log(
        `[scale] roles: the job running on the worker was ${last?.status} ${tookMs} ms after the cancel sent to the api`,
      );
      expect(last?.status).toBe('canceled');
      expect(tookMs).toBeLessThan(1500);
      expect((await stats(api)).pool.started).toBe(0);
    },
  );
});
