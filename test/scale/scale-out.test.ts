import { describe, expect, it } from 'vitest';
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
 * Scale-out: several processes on one Redis share the work, each job runs to success once, and
 * processes dying mid-run (SIGKILL) lose nothing: their jobs run again elsewhere once the lease lapses.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

const JOBS = 2000;
const MIN_KILLS = 3;

describe('three instances on one Redis', () => {
  it('run 2,000 jobs submitted across them, each once, and each instance runs some', { timeout: 90_000 }, async () => {
    const fleet = await startFleet(redis, 3);
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
  });

  it('lose nothing while one of them is SIGKILLed and restarted every 2-3 s', { timeout: 120_000 }, async () => {
    // Lease 2 s: a killed instance's jobs come back quickly. max_attempts 10: a job may be caught by
    // several kills in a row; the proof is that none is lost, not that the default budget of 3 suffices.
    const fleet = await startFleet(redis, 3, { LEASE_S: '2', WORKER_CONCURRENCY: '10' });
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
