import { describe, expect, it } from 'vitest';
import { MISSED_AFTER_MS } from '../../src/schedules/schedule.js';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { waitFor } from '../helpers/wait-for.js';
import { delay, useServiceCleanup } from '../e2e/helpers.js';
import {
  createSchedule,
  iso,
  ms,
  scheduleJobs,
  secondsSince,
  sleepUntil,
  startFleet,
  type ScheduledJob,
} from './fleet.js';

/*
 * catch_up on a real server process: three schedules (catch_up none, latest, all) fire once, the service is
 * stopped (SIGTERM) for five of their fire times and started again; over HTTP, the jobs made for the fire times
 * of the down window are 0, 1 (the latest of them) and 5. Issue #14.
 *
 * The timing: with fire times start_at + k·E, the restarted instance's first firing must come after the fifth
 * missed time is more than MISSED_AFTER_MS (2 s) late (else that one is on time, and even `none` makes its job)
 * and before the sixth is due (else that one is on time, and `latest` makes no job for a missed one). That window
 * is E − 2 s wide and must hold the start of a Node process (1.4–2.2 s measured on the 2-core machine), so E is
 * 6 s: 4 s of room, and about 40 s in all.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

const EVERY_S = 6;
const INTERVAL_MS = EVERY_S * 1000;
/** Fire times the service is down for. */
const MISSED = 5;
const CATCH_UPS = ['none', 'latest', 'all'] as const;

describe('catch_up after the service was down', () => {
  it('stopped for 5 fire times: none, latest and all make 0, 1 and 5 jobs for them', { timeout: 75_000 }, async () => {
    const began = performance.now();
    const fleet = await startFleet(redis, 1, { ROLE: 'all' });
    const api = fleet.apis[0]!;
    const member = fleet.members[0]!;
    const idOf = (catchUp: string) => `catch-up-${catchUp}`;
    const startAt = Math.ceil((Date.now() + 1000) / 1000) * 1000;
    for (const catchUp of CATCH_UPS) {
      await createSchedule(api, {
        id: idOf(catchUp),
        every_s: EVERY_S,
        start_at: iso(startAt),
        catch_up: catchUp,
        type: 'echo',
        input: { value: catchUp },
      });
    }

    // Each fires at start_at while the service runs.
    await waitFor(
      async () =>
        (await Promise.all(CATCH_UPS.map((catchUp) => scheduleJobs(api, idOf(catchUp))))).every(
          (jobs) => jobs.length === 1,
        ),
      { timeoutMs: startAt + 3000 - Date.now(), intervalMs: 100, what: 'each schedule to fire at start_at' },
    );
    // Stopped cleanly, well before the next fire time.
    await member.service.kill('SIGTERM', 5000);
    const stoppedAt = Date.now();
    expect(stoppedAt, 'stopped before the second fire time').toBeLessThan(startAt + INTERVAL_MS);

    // Down for start_at + 1..5 E; started again once the fifth is more than MISSED_AFTER_MS late.
    const missedTimes = Array.from({ length: MISSED }, (_, index) => startAt + (index + 1) * INTERVAL_MS);
    const lastMissed = missedTimes.at(-1)!;
    const nextDue = lastMissed + INTERVAL_MS;
    await sleepUntil(lastMissed + MISSED_AFTER_MS + 250);
    const restartedAt = Date.now();
    await fleet.restart(0);
    const liveAt = Date.now();
    await delay(1000); // its first firings

    const jobsOf = new Map<string, ScheduledJob[]>(
      await Promise.all(CATCH_UPS.map(async (catchUp) => [catchUp, await scheduleJobs(api, idOf(catchUp))] as const)),
    );
    const downWindow = (jobs: ScheduledJob[]) =>
      jobs
        .filter((job) => ms(job.scheduled_for) > startAt && ms(job.scheduled_for) < nextDue)
        .sort((a, b) => ms(a.scheduled_for) - ms(b.scheduled_for));
    const rel = (at: number) => `+${((at - startAt) / 1000).toFixed(1)} s`;
    const caughtUp = downWindow(jobsOf.get('all')!);
    const firstFiringAt = Math.min(...caughtUp.map((job) => ms(job.created_at)));
    console.log(
      `[scale] schedules-catch-up: every ${EVERY_S} s from start_at; stopped at ${rel(stoppedAt)}, started at` +
        ` ${rel(restartedAt)}, live at ${rel(liveAt)}, first firing after it at ${rel(firstFiringAt)}` +
        ` (missed ${rel(missedTimes[0]!)}..${rel(lastMissed)}, next due ${rel(nextDue)}); jobs in the down window:` +
        ` ${CATCH_UPS.map((catchUp) => `${catchUp} ${downWindow(jobsOf.get(catchUp)!).length}`).join(', ')};` +
        ` ${secondsSince(began)} s in all`,
    );

    // Each kept its on-time job for start_at.
    for (const catchUp of CATCH_UPS) {
      expect(
        jobsOf.get(catchUp)!.filter((job) => ms(job.scheduled_for) === startAt),
        `${catchUp}: start_at's job`,
      ).toHaveLength(1);
    }
    // The timing this test relies on: the restarted instance fired when the fifth missed time was more than
    // MISSED_AFTER_MS late and the sixth was not yet due.
    expect(firstFiringAt - lastMissed, 'first firing after the restart, past the last missed time').toBeGreaterThan(
      MISSED_AFTER_MS,
    );
    expect(firstFiringAt, 'first firing after the restart, before the next fire time').toBeLessThan(nextDue);

    const scheduledFor = (catchUp: string) => downWindow(jobsOf.get(catchUp)!).map((job) => job.scheduled_for);
    expect(scheduledFor('none'), 'none: no job for a missed fire time').toEqual([]);
    expect(scheduledFor('latest'), 'latest: one job, for the latest missed fire time').toEqual([iso(lastMissed)]);
    expect(scheduledFor('all'), 'all: one job per missed fire time').toEqual(missedTimes.map(iso));
  });
});
