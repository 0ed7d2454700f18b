import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { delay, useServiceCleanup } from '../e2e/helpers.js';
import { createSchedule, iso, ms, scheduleJobs, secondsSince, sleepUntil, startFleet } from './fleet.js';

/*
 * A recurring schedule on a fleet: three real server processes (ROLE=all) on one Redis and one key prefix all
 * fire due schedules (each sleeping until the next fire time). An `every_s: 1` schedule runs for ten fire times while one instance
 * is SIGKILLed and started again in the middle; over HTTP, the jobs it made name ten consecutive fire times, each
 * once, each made within moments of its time. Issue #14.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

const SCHEDULE_ID = 'every-second';
const INTERVAL_MS = 1000;
/** Fire times in the measured window: start_at and the nine after it. */
const FIRES = 10;
/**
 * Most a job's created_at may trail its scheduled_for. Each instance looks for due schedules every 250 ms (three
 * look, so a fire time is usually met sooner), plus a few Redis round trips; the rest is room for the event-loop
 * stalls of a 2-core machine that is also booting a Node process (the restart). It stays below MISSED_AFTER_MS
 * (2 s): a later firing would count the time as missed and only catch_up would make its job, so under this bound
 * every job came from an on-time firing.
 */
const MAX_LAG_MS = 1500;

describe('a schedule fired by three instances', () => {
  it(
    'every_s 1 for 10 s: one job per fire time, consecutive and on time, through a SIGKILL and restart of one instance',
    { timeout: 60_000 },
    async () => {
      const began = performance.now();
      const fleet = await startFleet(redis, 3, { ROLE: 'all' });
      const [api0, , api2] = fleet.apis;
      // The first fire time: a whole second at least 1.5 s ahead, so every instance is up and firing before it.
      const startAt = Math.ceil((Date.now() + 1500) / INTERVAL_MS) * INTERVAL_MS;
      await createSchedule(api0!, {
        id: SCHEDULE_ID,
        every_s: INTERVAL_MS / 1000,
        start_at: iso(startAt),
        type: 'echo',
        input: { value: 'tick' },
      });

      // The middle of the window, 100 ms after fire time 6 (start_at + 5 s): the instances are likely firing it,
      // so instance 1 may die between making the job and advancing the schedule. It starts again on its port.
      await sleepUntil(startAt + 5 * INTERVAL_MS + 100);
      const killedAt = Date.now();
      await fleet.kill(1);
      await fleet.restart(1);
      const liveAgainAt = Date.now();

      // Past the window's last fire time (start_at + 9 s) with 700 ms to spare, the schedule is paused.
      await sleepUntil(startAt + (FIRES - 1) * INTERVAL_MS + 700);
      const paused = await api0!.request<Schedule>('POST', `/v1/schedules/${SCHEDULE_ID}/pause`);
      expect(paused.status, JSON.stringify(paused.body)).toBe(200);
      // A firing that read the schedule just before the pause may still be making its job.
      await delay(500);
      const schedule = await api2!.request<Schedule>('GET', `/v1/schedules/${SCHEDULE_ID}`);
      expect(schedule.status, JSON.stringify(schedule.body)).toBe(200);

      // Asked of another instance than the one that made the schedule.
      const jobs = await scheduleJobs(api2!, SCHEDULE_ID);
      const times = jobs.map((job) => ms(job.scheduled_for)).sort((a, b) => a - b);
      const lags = jobs.map((job) => ms(job.created_at) - ms(job.scheduled_for));
      const rel = (at: number) => `+${((at - startAt) / 1000).toFixed(1)} s`;
      console.log(
        `[scale] schedules-fleet: ${jobs.length} jobs for fire times ${rel(times[0] ?? NaN)}..${rel(times.at(-1) ?? NaN)}` +
          ` after start_at; created_at - scheduled_for: max ${Math.max(...lags)} ms, median ${median(lags)} ms;` +
          ` instance 1 SIGKILLed at ${rel(killedAt)}, live again at ${rel(liveAgainAt)}; ${secondsSince(began)} s in all`,
      );

      expect(jobs.filter((job) => job.schedule_id !== SCHEDULE_ID).map((job) => job.id)).toEqual([]);
      // No two jobs for one fire time.
      const repeated = times.filter((at, index) => index > 0 && at === times[index - 1]);
      expect(repeated.map(iso), 'fire times with more than one job').toEqual([]);
      // Only the schedule's own fire times: start_at + k s.
      const offGrid = times.filter((at) => at < startAt || (at - startAt) % INTERVAL_MS !== 0);
      expect(offGrid.map(iso), 'scheduled_for values that are not fire times of the schedule').toEqual([]);
      // The window [first, last] of scheduled_for, from start_at: every fire time in it has its job, none is missing
      // (a gap would be a time no instance fired; one instance was always up).
      expect(iso(times[0]!)).toBe(iso(startAt));
      const last = times.at(-1)!;
      const everyFireTime = Array.from(
        { length: (last - startAt) / INTERVAL_MS + 1 },
        (_, index) => startAt + index * INTERVAL_MS,
      );
      expect(times.map(iso)).toEqual(everyFireTime.map(iso));
      // Ten fire times in the 10 s (nine or eleven only at the window's edges: the pause is 700 ms after the tenth).
      expect(times.length).toBeGreaterThanOrEqual(FIRES - 1);
      expect(times.length).toBeLessThanOrEqual(FIRES + 1);
      // The schedule's own count agrees: every fire time made a job, none was missed.
      expect(schedule.body.fires).toEqual({ created: jobs.length, skipped: 0, missed: 0 });
      // Each made on time: never before its fire time, and within MAX_LAG_MS after it.
      const late = jobs.filter((job) => {
        const lag = ms(job.created_at) - ms(job.scheduled_for);
        return lag < 0 || lag >= MAX_LAG_MS;
      });
      expect(
        late.map((job) => ({ scheduled_for: job.scheduled_for, created_at: job.created_at })),
        `jobs not made within ${MAX_LAG_MS} ms of their fire time`,
      ).toEqual([]);
    },
  );
});

interface Schedule {
  id: string;
  paused: boolean;
  fires: { created: number; skipped: number; missed: number };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}
