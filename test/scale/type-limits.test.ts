import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { useSpawnedCluster } from '../helpers/redis-cluster.js';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { useServiceCleanup } from '../e2e/helpers.js';
import {
  expectAllSucceeded,
  listAll,
  maxInWindow,
  ms,
  overlap,
  sampleRunning,
  secondsSince,
  sleepJobs,
  startFleet,
  submitAll,
  waitUntilSettled,
} from './fleet.js';

/*
 * TYPE_LIMITS hold across the fleet, not per process: three instances with 10 worker slots each never
 * run more than `max_concurrency` jobs of a type at once, nor start more than `rate` of them per window.
 * Measured from the jobs themselves (started_at / completed_at as the store recorded them). On one Redis the claim
 * script checks the limits; on a Cluster the jobs are spread over 12 partitions and the limits are held across them
 * (grants and places in the base partition: redis-job-store.ts).
 */

useServiceCleanup();

const redis = useSpawnedRedis();
describeTypeLimits('TYPE_LIMITS across three instances', () => redis, {});

describe('on a 3-master Redis Cluster', () => {
  const cluster = useSpawnedCluster();
  describeTypeLimits('TYPE_LIMITS across three instances and 12 partitions', () => cluster, { REDIS_CLUSTER: 'true' });
});

function describeTypeLimits(name: string, target: () => { url: string }, env: Record<string, string>): void {
  describe(name, () => {
    it(
      'max_concurrency=5: never more than 5 sleep jobs running at once in the whole fleet',
      { timeout: 60_000 },
      async () => {
        const fleet = await startFleet(target(), 3, {
          ...env,
          TYPE_LIMITS: 'sleep:max_concurrency=5',
          WORKER_CONCURRENCY: '10',
        });
        const began = performance.now();
        let turn = 0;
        let submitted: string[];
        // One Redis: its running index, read at once. Partitioned: the stats add up partitions read one after another
        // (a job ending in one and another starting in the next can both be counted), so the fleet's places under the
        // limit are read instead: one sorted set, every running job holding a place until its attempt ends.
        const places = env.REDIS_CLUSTER
          ? new Cluster([{ host: '127.0.0.1', port: Number(new URL(target().url).port) }])
          : undefined;
        const sampler = sampleRunning(
          fleet.apis[2]!,
          'sleep',
          20,
          places && (() => places.zcount(`{${fleet.prefix}}:fleet-running:sleep`, `(${Date.now()}`, '+inf')),
        );
        let sampled;
        try {
          const { ids, unknownOutcomes } = await submitAll(() => fleet.apis[turn++ % 3]!, sleepJobs(200, 50, 100), {
            inFlight: 50,
          });
          expect(unknownOutcomes).toBe(0);
          await waitUntilSettled(() => fleet.apis[0]!, ids.length, 40_000);
          submitted = ids;
        } finally {
          sampled = await sampler.stop();
          places?.disconnect();
        }

        // Redis's own view, sampled: never more than 5 in its running index (or holding places).
        expect(sampled.max, `running jobs in Redis, sampled ${sampled.samples} times`).toBeLessThanOrEqual(5);
        expect(sampled.samples).toBeGreaterThan(20);

        const listed = await listAll(fleet.apis[1]!);
        expectAllSucceeded(listed, submitted);
        const intervals = listed.map((job): [number, number] => [ms(job.started_at), ms(job.completed_at)]);
        const { max, longestOverLimitMs } = overlap(intervals, 5);
        console.log(
          `[scale] max_concurrency=5: 200 jobs done in ${secondsSince(began)} s; most running at once ${max} (over 5 for up to ${longestOverLimitMs} ms); sampled in Redis at most ${sampled.max} (${sampled.samples} samples)`,
        );
        // A 6th for a few ms points at the recorded times (each instance stamps its own Date.now(), taken before
        // Redis runs the change); a 6th for a job's whole length points at the limit itself.
        expect(
          max,
          `more than 5 sleep jobs running at once, for up to ${longestOverLimitMs} ms at a stretch`,
        ).toBeLessThanOrEqual(5);
        expect(max, 'the jobs did not run in parallel at all').toBeGreaterThan(1);
      },
    );

    it('rate=20/1: no 1-second window holds more than 20 starts across the fleet', { timeout: 60_000 }, async () => {
      const fleet = await startFleet(target(), 3, { ...env, TYPE_LIMITS: 'sleep:rate=20/1', WORKER_CONCURRENCY: '10' });
      const began = performance.now();
      let turn = 0;
      const { ids, unknownOutcomes } = await submitAll(() => fleet.apis[turn++ % 3]!, sleepJobs(100, 0, 0), {
        inFlight: 50,
      });
      expect(unknownOutcomes).toBe(0);
      await waitUntilSettled(() => fleet.apis[0]!, ids.length, 30_000);
      const tookMs = performance.now() - began;

      const listed = await listAll(fleet.apis[1]!);
      expectAllSucceeded(listed, ids);
      const starts = listed.map((job) => ms(job.started_at)).sort((a, b) => a - b);
      const busiest = maxInWindow(starts, 1000);
      const spanMs = starts.at(-1)! - starts[0]!;
      console.log(
        `[scale] rate=20/1: 100 jobs done in ${(tookMs / 1000).toFixed(1)} s; starts span ${spanMs} ms; busiest 1 s window ${busiest}`,
      );
      expect(busiest).toBeLessThanOrEqual(20);
      // 100 starts at 20 per second: the 81st cannot come before 4 s after the first.
      expect(spanMs).toBeGreaterThanOrEqual(4000);
      expect(tookMs).toBeGreaterThanOrEqual(3900);
    });
  });
}
