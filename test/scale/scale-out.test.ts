import { Cluster, type Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { useSpawnedCluster } from '../helpers/redis-cluster.js';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { delay, useServiceCleanup } from '../e2e/helpers.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  expectAllSucceeded,
  listAll,
  secondsSince,
  sleepJobs,
  startFleet,
  stats,
  stuckJobs,
  submitAll,
  waitUntilSettled,
  type StatsView,
} from './fleet.js';

/*
 * Scale-out: several processes on one Redis (and on a 3-master Redis Cluster, jobs spread over its partitions) share
 * the work, each job runs to success once, and processes dying mid-run (SIGKILL) lose nothing: their jobs run again
 * elsewhere once the lease lapses.
 */

useServiceCleanup();

const JOBS = 2000;
const MIN_KILLS = 3;

const redis = useSpawnedRedis();
describeScaleOut('three instances on one Redis', () => redis, {});

describe('on a 3-master Redis Cluster', () => {
  const cluster = useSpawnedCluster();
  // The Cluster's default: 4 partitions per master, so one queue's jobs and claims spread over the 3 masters.
  describeScaleOut('three instances, jobs in 12 partitions', () => cluster, { REDIS_CLUSTER: 'true' });

  it('spreads the job keys and the commands over every master', { timeout: 60_000 }, async () => {
    const client = new Cluster([{ host: '127.0.0.1', port: Number(new URL(cluster.url).port) }]);
    try {
      await client.info(); // connects and reads the slot map
      const masters = client.nodes('master');
      expect(masters).toHaveLength(3);
      await Promise.all(masters.map((node) => node.config('RESETSTAT')));
      const fleet = await startFleet(cluster, 2, { REDIS_CLUSTER: 'true' });
      const { unknownOutcomes } = await submitAll(() => fleet.apis[0]!, sleepJobs(600, 0, 5), { inFlight: 50 });
      expect(unknownOutcomes).toBe(0);
      await waitUntilSettled(() => fleet.apis[1]!, 600, 60_000);
      const keys = await Promise.all(masters.map((node) => countKeys(node, `{${fleet.prefix}*:job:*`)));
      const calls = await Promise.all(masters.map(async (node) => commandCalls(await node.info('commandstats'))));
      const share = (counts: number[]) => counts.map((count) => count / counts.reduce((a, b) => a + b, 0));
      console.log(
        `[scale] cluster spread over 3 masters: job keys ${keys.join('/')}, commands ${calls.join('/')} (shares ${share(
          calls,
        )
          .map((part) => part.toFixed(2))
          .join('/')})`,
      );
      expect(keys.reduce((a, b) => a + b, 0)).toBe(600);
      // A third each is the aim; the base partition's master also holds the fleet's shared state (operator state,
      // schedules, the partition table), so commands lean to it a little. Under a fifth would mean no spread.
      for (const part of share(keys)) expect(part).toBeGreaterThan(0.2);
      for (const part of share(calls)) expect(part).toBeGreaterThan(0.2);
    } finally {
      client.disconnect();
    }
  });
});

async function countKeys(node: Redis, pattern: string): Promise<number> {
  let count = 0;
  let cursor = '0';
  do {
    const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    count += found.length;
  } while (cursor !== '0');
  return count;
}

/** Every command's calls, from INFO commandstats. */
function commandCalls(info: string): number {
  return [...info.matchAll(/calls=(\d+)/g)].reduce((total, match) => total + Number(match[1]), 0);
}

function describeScaleOut(name: string, target: () => { url: string }, env: Record<string, string>): void {
  describe(name, () => {
    it(
      'run 2,000 jobs submitted across them, each once, and each instance runs some',
      { timeout: 90_000 },
      async () => {
        const fleet = await startFleet(target(), 3, env);
        const began = performance.now();
        let turn = 0;
        const { ids, unknownOutcomes } = await submitAll(() => fleet.apis[turn++ % 3]!, sleepJobs(JOBS, 0, 50), {
          inFlight: 50,
        });
        expect(unknownOutcomes).toBe(0);
        const submittedS = secondsSince(began);

        await waitUntilSettled(() => fleet.apis[0]!, JOBS, 60_000);
        const settledS = secondsSince(began);

        const listed = await listAll(fleet.apis[1]!, '/v1/jobs', 'status=succeeded');
        expect(listed).toHaveLength(JOBS);
        const byId = expectAllSucceeded(listed, ids);
        expect([...byId.values()].filter((job) => job.attempt !== 1).map((job) => job.id)).toEqual([]);

        // The pools' counters are bumped just after the outcome is stored: give them a moment to catch up.
        let pools: StatsView['pool'][] = [];
        // Bounded (2 s), as before: should they not catch up, the expect below judges and shows the counts.
        await waitFor(
          async () => {
            pools = await Promise.all(fleet.apis.map(async (api) => (await stats(api)).pool));
            return pools.reduce((sum, pool) => sum + pool.succeeded, 0) >= JOBS;
          },
          { timeoutMs: 2000, intervalMs: 100, what: "the pools' success counters to reach the job count" },
        ).catch(() => undefined);
        const sum = (key: 'started' | 'succeeded' | 'failed') => pools.reduce((total, pool) => total + pool[key], 0);
        console.log(
          `[scale] ${JOBS} jobs on 3 instances: submitted in ${submittedS} s, all done at ${settledS} s; started per instance ${pools.map((p) => p.started).join('/')}`,
        );
        expect({ started: sum('started'), succeeded: sum('succeeded'), failed: sum('failed') }).toEqual({
          started: JOBS,
          succeeded: JOBS,
          failed: 0,
        });
        for (const pool of pools) expect(pool.started, `instance ${pool.worker_id} ran none`).toBeGreaterThan(0);
        expect(new Set(pools.map((pool) => pool.worker_id)).size).toBe(3);
      },
    );

    it('lose nothing while one of them is SIGKILLed and restarted every 2-3 s', { timeout: 120_000 }, async () => {
      // Lease 2 s: a killed instance's jobs come back quickly. max_attempts 10: a job may be caught by
      // several kills in a row; the proof is that none is lost, not that the default budget of 3 suffices.
      const fleet = await startFleet(target(), 3, { ...env, LEASE_S: '2', WORKER_CONCURRENCY: '10' });
      const began = performance.now();

      let chaosOver = false;
      let chaosError: Error | undefined;
      const kills: string[] = [];
      const chaos = (async () => {
        // A kill every 2-3 s (a fixed pattern, not chance), counted from the previous kill (a restart takes
        // part of the gap). At least MIN_KILLS happen even when the jobs settle early: a proof needs them.
        const gapMs = (round: number) => 2000 + (round % 3) * 500;
        let nextKillAt = performance.now() + gapMs(0);
        for (let round = 0; performance.now() - began < 15_000 || kills.length < MIN_KILLS; round++) {
          await delay(nextKillAt - performance.now());
          if (chaosOver && kills.length >= MIN_KILLS) break;
          const index = round % 3;
          await fleet.kill(index);
          kills.push(`${secondsSince(began)}s:#${index}`);
          nextKillAt = performance.now() + gapMs(round + 1);
          await fleet.restart(index);
        }
      })().catch((error: unknown) => {
        chaosError = error instanceof Error ? error : new Error(String(error)); // a failed restart: thrown once the run is stopped
      });

      let submitted;
      try {
        // Spread over ~10 s so the kills land while jobs are being submitted and run.
        submitted = await submitAll(() => fleet.liveApi(), sleepJobs(JOBS, 0, 50, { max_attempts: 10 }), {
          inFlight: 50,
          perSecond: 200,
        });
        const submittedS = secondsSince(began);
        await waitUntilSettled(() => fleet.liveApi(), JOBS, 60_000);
        console.log(
          `[scale] chaos: ${JOBS} submitted by ${submittedS} s, all done at ${secondsSince(began)} s; kills ${kills.join(' ')}`,
        );
      } finally {
        chaosOver = true;
        await chaos;
      }
      if (chaosError) throw chaosError;
      // Every instance is up again: settle once more, since a kill may have come after the first settle.
      const { ids, unknownOutcomes } = submitted;
      await waitUntilSettled(() => fleet.liveApi(), JOBS, 60_000);
      expect(kills.length, 'the chaos killed too few instances to prove anything').toBeGreaterThanOrEqual(MIN_KILLS);

      const listed = await listAll(fleet.liveApi());
      const byId = expectAllSucceeded(listed, ids, unknownOutcomes);
      expect(await stuckJobs(fleet.liveApi())).toEqual([]);
      const rerun = [...byId.values()].filter((job) => job.attempt > 1).length;
      console.log(
        `[scale] chaos: ${listed.length} jobs listed (${unknownOutcomes} POSTs without an answer), ${rerun} needed more than one attempt`,
      );
      expect(rerun, 'no kill caught a running job: the chaos proved nothing').toBeGreaterThan(0);
    });
  });
}
