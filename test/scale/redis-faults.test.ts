import { afterEach, describe, expect, it } from 'vitest';
import { spawnRedis, type SpawnedRedis } from '../helpers/redis-server.js';
import { delay, portIsClosed, useServiceCleanup } from '../e2e/helpers.js';
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
} from './fleet.js';

/*
 * Redis failing under a fleet in the middle of a run: killed and restarted from its AOF, or paused.
 * Afterwards every job has succeeded, none is lost or stuck; during a pause the API fails fast (503).
 */

useServiceCleanup();

let redis: SpawnedRedis | undefined;
afterEach(async () => {
  await redis?.stop(); // SIGCONT + SIGKILL: never leaves a stopped redis-server behind
  redis = undefined;
});

const PAUSE_MS = 5000;
const COMMAND_TIMEOUT_MS = 1000;

interface ProblemBody {
  code: string;
  status: number;
}

describe('Redis faults in the middle of a run on several instances', () => {
  it(
    'Redis SIGKILLed and restarted from its AOF: all 500 jobs succeed, none lost, none stuck',
    { timeout: 90_000 },
    async () => {
      const server = await spawnRedis({ appendonly: true });
      redis = server;
      const fleet = await startFleet(server, 2, { LEASE_S: '3', WORKER_CONCURRENCY: '10' });
      const began = performance.now();
      let turn = 0;
      // Jobs of 200-400 ms on 20 slots take over 5 s to run: the kill below lands mid-run even when submitting is slow
      // on a loaded machine (with 50-200 ms jobs, 424 of 500 were once done before the fifth was seen).
      const { ids, unknownOutcomes } = await submitAll(() => fleet.apis[turn++ % 2]!, sleepJobs(500, 200, 400), {
        inFlight: 50,
      });
      expect(unknownOutcomes).toBe(0);

      // Mid-run: some done, most still to go.
      const before = await waitFor(
        async () => {
          const { counts } = await stats(fleet.apis[0]!);
          return counts.succeeded >= 100 ? counts : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'a fifth of the jobs to be done' },
      );
      expect(before.succeeded).toBeLessThan(400);
      server.signal('SIGKILL');
      const killedAt = secondsSince(began);
      await waitFor(() => portIsClosed(server.port), {
        timeoutMs: 5000,
        intervalMs: 50,
        what: 'the killed redis-server to release its port',
      });
      await delay(1000); // down for a moment: handlers finish and try to record their outcomes meanwhile
      await server.restart();
      const restartedAt = secondsSince(began);

      const counts = await waitUntilSettled(() => fleet.apis[0]!, ids.length, 45_000);
      console.log(
        `[scale] redis SIGKILL at ${killedAt} s (${before.succeeded} done), restarted at ${restartedAt} s, all done at ${secondsSince(began)} s: ${JSON.stringify(counts)}`,
      );
      const listed = await listAll(fleet.apis[1]!);
      const byId = expectAllSucceeded(listed, ids);
      expect(listed).toHaveLength(500);
      expect(await stuckJobs(fleet.apis[0]!)).toEqual([]);
      console.log(
        `[scale] redis SIGKILL: ${[...byId.values()].filter((job) => job.attempt > 1).length} jobs needed more than one attempt`,
      );
    },
  );

  it(
    'Redis paused 5 s: GET answers 503 store-unavailable within 2 s, then all jobs succeed',
    { timeout: 90_000 },
    async () => {
      const server = await spawnRedis();
      redis = server;
      // Lease 3 s, shorter than the pause: commands that timed out on the client still run once Redis
      // resumes (a claim among them leases jobs nobody runs), and those jobs must come back by themselves.
      const fleet = await startFleet(server, 2, {
        LEASE_S: '3',
        WORKER_CONCURRENCY: '10',
        REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
      });
      const began = performance.now();
      let turn = 0;
      const { ids, unknownOutcomes } = await submitAll(() => fleet.apis[turn++ % 2]!, sleepJobs(300, 100, 300), {
        inFlight: 50,
      });
      expect(unknownOutcomes).toBe(0);
      const probeId = ids[0]!;

      await waitFor(async () => ((await stats(fleet.apis[0]!)).counts.succeeded >= 30 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'some jobs to be done',
      });
      server.signal('SIGSTOP');
      const pausedAt = performance.now();
      const probes: { instance: number; atMs: number; tookMs: number }[] = [];
      try {
        // Probe both instances, back to back, for as long as a probe still fits in the pause.
        await Promise.all(
          fleet.apis.map(async (api, instance) => {
            while (performance.now() - pausedAt < PAUSE_MS - 2100) {
              const atMs = Math.round(performance.now() - pausedAt);
              const answer = await api.request<ProblemBody>('GET', `/v1/jobs/${probeId}`, { timeoutMs: 10_000 });
              const tookMs = Math.round(answer.elapsedMs);
              probes.push({ instance, atMs, tookMs });
              expect(answer.status, `GET on instance ${instance} ${atMs} ms into the pause`).toBe(503);
              expect(answer.body).toMatchObject({ code: 'store-unavailable', status: 503 });
              expect(Number(answer.headers.get('retry-after')), 'Retry-After (seconds)').toBeGreaterThanOrEqual(1);
            }
          }),
        );
        expect(performance.now() - pausedAt, 'the probes outlasted the pause').toBeLessThan(PAUSE_MS);
        await delay(PAUSE_MS - (performance.now() - pausedAt)); // the rest of the pause: the fault itself lasts a fixed time
      } finally {
        server.signal('SIGCONT');
      }
      console.log(
        `[scale] pause: 503 answers (instance, ms into the pause, ms taken): ${probes.map((p) => `${p.instance}@${p.atMs}:${p.tookMs}`).join(' ')}`,
      );
      expect(probes.length).toBeGreaterThanOrEqual(4);
      const slowest = Math.max(...probes.map((p) => p.tookMs));
      expect.soft(slowest, 'the slowest 503 during the pause (ms)').toBeLessThan(2000);
      // README, "Redis outages": 503 "within about REDIS_COMMAND_TIMEOUT_MS". Soft, so the recovery below is still checked.
      expect
        .soft(slowest, `the slowest 503 (ms) against REDIS_COMMAND_TIMEOUT_MS=${COMMAND_TIMEOUT_MS}`)
        .toBeLessThan(COMMAND_TIMEOUT_MS + 500);

      const resumedAt = performance.now();
      await waitFor(async () => (await fleet.apis[1]!.request('GET', `/v1/jobs/${probeId}`)).status === 200, {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: 'GET to answer 200 again',
      });
      const recoveredMs = Math.round(performance.now() - resumedAt);

      const counts = await waitUntilSettled(() => fleet.apis[0]!, ids.length, 45_000);
      const listed = await listAll(fleet.apis[1]!);
      const byId = expectAllSucceeded(listed, ids);
      expect(listed).toHaveLength(300);
      expect(await stuckJobs(fleet.apis[0]!)).toEqual([]);
      console.log(
        `[scale] pause: GET 200 again ${recoveredMs} ms after SIGCONT; all done at ${secondsSince(began)} s: ${JSON.stringify(counts)}; ${[...byId.values()].filter((job) => job.attempt > 1).length} jobs needed more than one attempt`,
      );
    },
  );
});
