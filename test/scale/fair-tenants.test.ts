import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { waitFor } from '../helpers/wait-for.js';
import { startService, useServiceCleanup, type Api } from '../e2e/helpers.js';
import { fleetEnv, listAll, ms, runBounded, secondsSince, startFleet, type ScaleJob } from './fleet.js';

/*
 * Fair claims between tenants (API keys), on a real server process: a tenant that submits a few jobs behind
 * another tenant's backlog of thousands waits for about one job of the other tenant per job of its own, not for
 * the backlog; and TENANT_WEIGHTS shares the claims in the ratio of the weights while both have a backlog.
 * Measured from the Jobs' own timestamps as the API shows them (created_at, started_at).
 */

useServiceCleanup();

const redis = useSpawnedRedis();

const KEY_A = 'key-of-tenant-a-0123456789';
const KEY_B = 'key-of-tenant-b-0123456789';
const API_KEYS = `${KEY_A}:a,${KEY_B}:b`;

type AdminJob = ScaleJob & { tenant: string };

/** POSTs `bodies` as the tenant of `key`, `inFlight` at once; returns the created jobs in the order of `bodies`. */
async function submitAs(api: Api, key: string, bodies: Record<string, unknown>[], inFlight = 50): Promise<ScaleJob[]> {
  const jobs = new Array<ScaleJob>(bodies.length);
  await runBounded(bodies.length, inFlight, async (index) => {
    const answer = await api.request<ScaleJob>('POST', '/v1/jobs', {
      body: bodies[index],
      headers: { authorization: `Bearer ${key}` },
      timeoutMs: 10_000,
    });
    if (answer.status !== 202)
      throw new Error(`POST /v1/jobs answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    jobs[index] = answer.body;
  });
  return jobs;
}

const sleepBodies = (count: number, sleepMs: number) =>
  Array.from({ length: count }, () => ({ type: 'sleep', input: { ms: sleepMs, steps: 1 } }));

describe('fair claims between tenants', () => {
  it(
    "a tenant's 10 jobs behind another's backlog of 5,000 all start before that tenant starts 100 more",
    { timeout: 90_000 },
    async () => {
      const fleet = await startFleet(redis, 1, { API_KEYS, WORKER_CONCURRENCY: '10' });
      const api = fleet.apis[0]!;
      const began = performance.now();
      // 100 ms each on 10 slots: at most 100 a second, well below the submit rate even on a busy machine, so A's
      // backlog builds up (the test ends once B's jobs started; the rest of A's are killed with the process).
      await submitAs(api, KEY_A, sleepBodies(5000, 100), 50);
      const aSubmittedIn = secondsSince(began);
      const bJobs = await submitAs(api, KEY_B, sleepBodies(10, 100), 10);

      const bStarted = await waitFor(
        async () => {
          const jobs = await Promise.all(
            bJobs.map(async (job) => {
              const answer = await api.request<ScaleJob>('GET', `/v1/jobs/${job.id}`, {
                headers: { authorization: `Bearer ${KEY_B}` },
              });
              return answer.body;
            }),
          );
          return jobs.every((job) => job.started_at !== null) ? jobs : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: "B's 10 jobs to start" },
      );
      const bStartedIn = secondsSince(began);

      const all = (await listAll(api, '/admin/jobs', '', 200)) as AdminJob[];
      const aJobs = all.filter((job) => job.tenant === 'a');
      expect(aJobs).toHaveLength(5000);
      const from = Math.min(...bStarted.map((job) => ms(job.created_at)));
      const until = Math.max(...bStarted.map((job) => ms(job.started_at)));
      const aStartedMeanwhile = aJobs.filter(
        (job) => job.started_at !== null && ms(job.started_at) >= from && ms(job.started_at) <= until,
      ).length;
      // A's backlog at B's last start: what B would have waited behind in submit order.
      const aBacklog = aJobs.filter((job) => job.started_at === null || ms(job.started_at) > until).length;

      console.log(
        `[scale] fairness: A's 5000 jobs submitted in ${aSubmittedIn} s; B's 10 all started ${until - from} ms after B's first submit (${bStartedIn} s in); ` +
          `A started ${aStartedMeanwhile} jobs meanwhile and still had ${aBacklog} waiting`,
      );
      expect(aBacklog, "A's backlog when B's last job started (too small to show anything)").toBeGreaterThan(500);
      expect(aStartedMeanwhile, "A's jobs started between B's first submit and B's last start").toBeLessThan(100);
    },
  );

  it(
    'TENANT_WEIGHTS=a:3,b:1: while both have a backlog, a gets 3 starts to each of b',
    { timeout: 90_000 },
    async () => {
      // The api instance takes both backlogs before any worker runs, so both are there from the first claim.
      const env = { API_KEYS, TENANT_WEIGHTS: 'a:3,b:1', WORKER_CONCURRENCY: '10' };
      const fleet = await startFleet(redis, 1, { ...env, ROLE: 'api' });
      const api = fleet.apis[0]!;
      const began = performance.now();
      await Promise.all([submitAs(api, KEY_A, sleepBodies(600, 5), 25), submitAs(api, KEY_B, sleepBodies(300, 5), 25)]);
      await startService(fleetEnv(redis, fleet.prefix, { ...env, ROLE: 'worker' }), { readyTimeoutMs: 20_000 });

      // The first 400 starts (and any others in the same millisecond as the 400th): a has at most 600 and b 300,
      // so both still have a backlog at its end.
      const WINDOW = 400;
      const started = await waitFor(
        async () => {
          const jobs = (await listAll(api, '/admin/jobs', '', 20)) as AdminJob[];
          const withStart = jobs.filter((job) => job.started_at !== null);
          return withStart.length >= WINDOW + 50 ? withStart : undefined;
        },
        { timeoutMs: 40_000, intervalMs: 250, what: `${WINDOW + 50} jobs to start` },
      );
      started.sort((x, y) => ms(x.started_at) - ms(y.started_at));
      const cutoff = ms(started[WINDOW - 1]!.started_at);
      const window = started.filter((job) => ms(job.started_at) <= cutoff);
      const a = window.filter((job) => job.tenant === 'a').length;
      const b = window.filter((job) => job.tenant === 'b').length;
      const ratio = a / b;
      console.log(
        `[scale] weights a:3,b:1: of the first ${window.length} starts a had ${a} and b ${b} (${ratio.toFixed(2)}:1), ${secondsSince(began)} s in`,
      );
      expect(a, 'a used up its backlog inside the window').toBeLessThan(600);
      expect(b, 'b used up its backlog inside the window').toBeLessThan(300);
      expect(ratio).toBeGreaterThanOrEqual(2.7);
      expect(ratio).toBeLessThanOrEqual(3.3);
    },
  );
});
