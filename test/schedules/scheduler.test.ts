import pino from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import type { NewJob } from '../../src/jobs/job.js';
import { MISSED_AFTER_MS, type ScheduleRecord } from '../../src/schedules/schedule.js';
import { Scheduler, type FireOutcome } from '../../src/schedules/scheduler.js';
import { TooManyActiveJobsError } from '../../src/store/job-store.js';
import { scheduleRecord, storePair, type StorePair } from './schedule-fixtures.js';

const log = pino({ level: 'silent' });

/** The job of a fire, as the service builds it (without the type registry). */
const newJob = (schedule: ScheduleRecord, scheduledFor: number, now: number): NewJob => ({
  id: newJobId(now),
  type: schedule.type,
  tenant: schedule.tenant,
  input: schedule.input,
  metadata: schedule.metadata,
  priority: schedule.priority,
  maxAttempts: schedule.maxAttempts ?? 3,
  timeoutS: schedule.timeoutS,
  createdAt: now,
  runAt: now,
  concurrencyKey: schedule.concurrencyKey,
  scheduleId: schedule.id,
  scheduledFor,
});

for (const kind of ['memory', 'redis'] as const) {
  describe(`Scheduler on the ${kind} store`, () => {
    const pairs: StorePair[] = [];
    afterEach(async () => {
      while (pairs.length > 0) await pairs.pop()!.close();
    });

    async function setUp(
      prefix?: string,
      options: { maxActivePerTenant?: number } = {},
    ): Promise<{ pair: StorePair; scheduler: Scheduler; fired: [string, FireOutcome, number][] }> {
      const pair = await storePair(kind, inject('redisUrl'), prefix);
      pairs.push(pair);
      const fired: [string, FireOutcome, number][] = [];
      const scheduler = new Scheduler({
        schedules: pair.schedules,
        jobs: pair.jobs,
        log,
        newJob,
        idempotencyTtlMs: 86_400_000,
        observer: { fired: (type, outcome, count) => fired.push([type, outcome, count]) },
        ...options,
      });
      return { pair, scheduler, fired };
    }

    async function jobsOf(pair: StorePair, scheduleId: string) {
      const page = await pair.jobs.list({ limit: 1000, order: 'asc', match: (job) => job.scheduleId === scheduleId });
      // Jobs made in one firing share a creation time, so their ids do not order them: the fire time does.
      return page.jobs.sort((a, b) => a.scheduledFor! - b.scheduledFor!);
    }

    it('makes one job per fire time, carrying the schedule and the fire time, and advances', async () => {
      const { pair, scheduler, fired } = await setUp();
      const start = Date.now() - 10_000;
      const record = scheduleRecord({
        id: 'every2',
        everyS: 2,
        createdAt: start,
        nextRunAt: start + 2000,
        catchUp: 'all',
      });
      await pair.schedules.save(record, 0);
      for (let t = start + 2000; t <= start + 8000; t += 1000) await scheduler.tick(t + 100);
      const jobs = await jobsOf(pair, 'every2');
      expect(jobs.map((job) => job.scheduledFor)).toEqual([2000, 4000, 6000, 8000].map((ms) => start + ms));
      expect(jobs.every((job) => job.status === 'queued' && job.type === 'echo')).toBe(true);
      const advanced = (await pair.schedules.get('-', 'every2'))!;
      expect(advanced).toMatchObject({ nextRunAt: start + 10_000, lastRunAt: start + 8000, lastJobId: jobs[3]!.id });
      expect(advanced.fires).toEqual({ created: 4, skipped: 0, missed: 0 });
      expect(fired.filter(([, outcome]) => outcome === 'created')).toHaveLength(4);
    });

    it('three schedulers firing at once still make exactly one job per fire time', async () => {
      const first = await setUp();
      const prefix =
        kind === 'redis'
          ? (first.pair.jobs as unknown as { keys: { base: string } }).keys.base.slice(1, -2)
          : undefined;
      const others = kind === 'redis' ? [await setUp(prefix), await setUp(prefix)] : [];
      // Memory: one store, so the three schedulers share it.
      const schedulers = [first.scheduler, ...others.map((other) => other.scheduler)];
      if (kind === 'memory')
        for (let i = 0; i < 2; i++)
          schedulers.push(
            new Scheduler({
              schedules: first.pair.schedules,
              jobs: first.pair.jobs,
              log,
              newJob,
              idempotencyTtlMs: 86_400_000,
            }),
          );
      const start = Date.now() - 20_000;
      await first.pair.schedules.save(
        scheduleRecord({ id: 'race', everyS: 1, createdAt: start, nextRunAt: start + 1000 }),
        0,
      );
      for (let t = start + 1000; t <= start + 10_000; t += 500)
        await Promise.all(schedulers.map((scheduler) => scheduler.tick(t + 50)));
      const jobs = await jobsOf(first.pair, 'race');
      expect(jobs.map((job) => job.scheduledFor)).toEqual(Array.from({ length: 10 }, (_, i) => start + (i + 1) * 1000));
    });

    it('replays the job of a fire time made by an instance that died before advancing the schedule', async () => {
      const { pair, scheduler } = await setUp();
      const start = Date.now() - 5000;
      const record = scheduleRecord({ id: 'crash', everyS: 1, createdAt: start, nextRunAt: start + 1000 });
      await pair.schedules.save(record, 0);
      // The dead instance's half: the job made with the fire time's key; the schedule not advanced.
      const made = await pair.jobs.createOnce(newJob(record, start + 1000, start + 1000), {
        key: `schedule:crash:${start + 1000}`,
        fingerprint: 'schedule-fire',
        ttlMs: 86_400_000,
      });
      await scheduler.tick(start + 1100);
      const jobs = await jobsOf(pair, 'crash');
      expect(jobs.map((job) => job.id)).toEqual([(made as { job: { id: string } }).job.id]);
      expect((await pair.schedules.get('-', 'crash'))!.nextRunAt).toBe(start + 2000);
    });

    it('overlap skip: no job while the previous one is queued or running, one again once it finished', async () => {
      const { pair, scheduler, fired } = await setUp();
      const start = Date.now() - 10_000;
      await pair.schedules.save(
        scheduleRecord({ id: 'skip', everyS: 1, overlap: 'skip', createdAt: start, nextRunAt: start + 1000 }),
        0,
      );
      await scheduler.tick(start + 1100);
      await scheduler.tick(start + 2100); // the first job is still queued: skipped
      const [claimed] = await pair.jobs.claim({
        types: ['echo'],
        max: 1,
        workerId: 'w',
        leaseId: 'l',
        leaseMs: 30_000,
        now: Date.now(),
      });
      await scheduler.tick(start + 3100); // running: skipped
      await pair.jobs.finish({ jobId: claimed!.id, leaseId: 'l' }, { kind: 'succeeded', result: 1 }, Date.now());
      await scheduler.tick(start + 4100);
      const jobs = await jobsOf(pair, 'skip');
      expect(jobs.map((job) => job.scheduledFor)).toEqual([start + 1000, start + 4000]);
      expect((await pair.schedules.get('-', 'skip'))!.fires).toEqual({ created: 2, skipped: 2, missed: 0 });
      expect(fired.filter(([, outcome]) => outcome === 'skipped').length).toBe(2);
    });

    it('makes no job for a tenant that has MAX_ACTIVE_JOBS_PER_TENANT active jobs (counted skipped); trigger is refused', async () => {
      const { pair, scheduler } = await setUp(undefined, { maxActivePerTenant: 1 });
      const start = Date.now() - 10_000;
      const record = scheduleRecord({
        id: 'busy',
        tenant: 'acme',
        everyS: 1,
        createdAt: start,
        nextRunAt: start + 1000,
      });
      await pair.schedules.save(record, 0);
      await pair.jobs.create(newJob({ ...record, id: 'other' }, start, start)); // acme's one active job
      await scheduler.tick(start + 1100);
      expect(await jobsOf(pair, 'busy')).toEqual([]);
      expect((await pair.schedules.get('acme', 'busy'))!).toMatchObject({
        fires: { created: 0, skipped: 1, missed: 0 },
        nextRunAt: start + 2000,
      });
      await expect(scheduler.trigger(record, Date.now(), { maxActive: 1 })).rejects.toBeInstanceOf(
        TooManyActiveJobsError,
      );
    });

    it('after five missed fire times: catch_up none, latest and all make 0, 1 and 5 jobs', async () => {
      const { pair, scheduler, fired } = await setUp();
      const start = Date.now() - 60_000;
      for (const catchUp of ['none', 'latest', 'all'] as const)
        await pair.schedules.save(
          scheduleRecord({ id: catchUp, everyS: 5, catchUp, createdAt: start, nextRunAt: start + 5000 }),
          0,
        );
      await scheduler.tick(start + 25_000 + MISSED_AFTER_MS + 500); // 5, 10, 15, 20, 25 s: all missed
      expect((await jobsOf(pair, 'none')).length).toBe(0);
      expect((await jobsOf(pair, 'latest')).map((job) => job.scheduledFor)).toEqual([start + 25_000]);
      expect((await jobsOf(pair, 'all')).map((job) => job.scheduledFor)).toEqual(
        [5, 10, 15, 20, 25].map((s) => start + s * 1000),
      );
      expect((await pair.schedules.get('-', 'none'))!.fires).toEqual({ created: 0, skipped: 0, missed: 5 });
      expect(fired).toContainEqual(['echo', 'missed', 5]);
    });

    it('does not fire a paused schedule; trigger makes one job now and records it as the last', async () => {
      const { pair, scheduler } = await setUp();
      const start = Date.now() - 10_000;
      const record = scheduleRecord({ id: 'held', everyS: 1, paused: true, createdAt: start, nextRunAt: null });
      await pair.schedules.save(record, 0);
      await scheduler.tick(Date.now());
      expect(await jobsOf(pair, 'held')).toEqual([]);
      const job = await scheduler.trigger(record, Date.now());
      expect(job).not.toBeInstanceOf(Error);
      expect((await jobsOf(pair, 'held')).map((each) => each.id)).toEqual([(job as { id: string }).id]);
      expect((await pair.schedules.get('-', 'held'))!.lastJobId).toBe((job as { id: string }).id);
    });

    it('sleeps while idle, and wakes for a schedule made meanwhile, firing it on time', async () => {
      const { pair, scheduler } = await setUp();
      let looks = 0;
      const due = pair.schedules.due.bind(pair.schedules);
      pair.schedules.due = (now, max) => {
        looks++;
        return due(now, max);
      };
      scheduler.start();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(looks).toBeLessThanOrEqual(2); // the first look, and none until something changes
      const start = Date.now();
      await pair.schedules.save(scheduleRecord({ id: 'new', everyS: 1, createdAt: start, nextRunAt: start + 500 }), 0);
      await expect
        .poll(async () => (await jobsOf(pair, 'new')).length, { timeout: 3000, interval: 50 })
        .toBeGreaterThanOrEqual(1);
      await scheduler.stop();
      const [first] = await jobsOf(pair, 'new');
      expect(first!.scheduledFor).toBe(start + 500);
      expect(first!.createdAt - first!.scheduledFor!).toBeLessThan(1000); // the issue: within 1 s
    });

    it('fires by itself once started, within a second of the fire time', async () => {
      const { pair, scheduler } = await setUp();
      const start = Date.now();
      await pair.schedules.save(
        scheduleRecord({ id: 'live', everyS: 1, createdAt: start, nextRunAt: start + 1000 }),
        0,
      );
      scheduler.start();
      await expect
        .poll(async () => (await jobsOf(pair, 'live')).length, { timeout: 4000, interval: 100 })
        .toBeGreaterThanOrEqual(2);
      await scheduler.stop();
      for (const job of await jobsOf(pair, 'live')) expect(job.createdAt - job.scheduledFor!).toBeLessThan(1000);
    });
  });
}
