import { expect } from 'vitest';
import type { SpawnedRedis } from '../helpers/redis-server.js';
import {
  Api,
  delay,
  randomPrefix,
  startService,
  type HttpAnswer,
  type JobView,
  type ServiceProcess,
} from '../e2e/helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * Scale-out helpers: a fleet of real server processes (`node dist/server.js`) sharing one Redis and
 * one key prefix, driven over HTTP. Processes are started through test/e2e/helpers.ts, so its
 * `useServiceCleanup()` SIGKILLs every one of them after each test.
 */

export interface SleepResult {
  slept_ms: number;
  attempt: number;
}

/** The Job resource with the fields these tests read beyond the e2e helpers' JobView. */
export interface ScaleJob extends JobView {
  result: SleepResult | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
}

export interface StatusCounts {
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  canceled: number;
}

export interface StatsView {
  counts: StatusCounts;
  by_type: Record<string, StatusCounts>;
  queue_depth: number;
  delayed: number;
  pool: { worker_id: string; concurrency: number; busy: number; started: number; succeeded: number; failed: number };
}

/** One member of the fleet: restarted members keep their port, so their Api stays valid. */
export interface Member {
  service: ServiceProcess;
  readonly api: Api;
  readonly env: Record<string, string>;
}

export interface Fleet {
  prefix: string;
  members: Member[];
  apis: Api[];
  /** The API of a member that is running now (chaos kills members). */
  liveApi(): Api;
  /** SIGKILLs member `index` and waits for its exit. */
  kill(index: number): Promise<void>;
  /** Starts member `index` again, same environment and port. */
  restart(index: number): Promise<void>;
}

/** The environment of a service on `redis`; TYPE_LIMITS and ROLE are blanked so the caller's shell cannot leak them. */
export function fleetEnv(
  redis: Pick<SpawnedRedis, 'url'>,
  prefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    REDIS_REQUIRED: 'true',
    REDIS_KEY_PREFIX: prefix,
    WORKER_CONCURRENCY: '10',
    // Thousands of request lines would cost CPU the fleet needs; warnings and errors still show.
    LOG_LEVEL: 'warn',
    TYPE_LIMITS: '',
    ROLE: '',
    ...extra,
  };
}

/** Starts `count` instances sharing `redis` and one fresh key prefix, all at once. `envOf(i)` adds per-instance settings. */
export async function startFleet(
  redis: Pick<SpawnedRedis, 'url'>,
  count: number,
  extra: Record<string, string> = {},
  envOf: (index: number) => Record<string, string> = () => ({}),
): Promise<Fleet> {
  const prefix = randomPrefix('scale');
  const members: Member[] = await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const env = fleetEnv(redis, prefix, { ...extra, ...envOf(index) });
      const service = await startService(env, { readyTimeoutMs: 20_000 });
      return { service, api: Api.of(service), env };
    }),
  );
  let next = 0;
  return {
    prefix,
    members,
    apis: members.map((member) => member.api),
    liveApi() {
      for (let i = 0; i < members.length; i++) {
        const member = members[(next + i) % members.length]!;
        if (member.service.running) {
          next = (next + i + 1) % members.length;
          return member.api;
        }
      }
      throw new Error('no fleet member is running');
    },
    async kill(index) {
      await members[index]!.service.kill('SIGKILL');
    },
    async restart(index) {
      const member = members[index]!;
      member.service = await startService(member.env, { port: member.service.port, readyTimeoutMs: 20_000 });
    },
  };
}

// ---------------------------------------------------------------- submitting

export interface SubmitOutcome {
  /** Ids of the jobs whose POST answered 202, in submission order. */
  ids: string[];
  /** POSTs that failed without an answer or with 503: each may still have stored a job nobody knows the id of. */
  unknownOutcomes: number;
}

export interface SubmitOptions {
  /** POSTs in flight at once. */
  inFlight?: number;
  /** At most this many POSTs started per second (spreads a batch over time). */
  perSecond?: number;
  /** Tries per job across the fleet's live instances before giving up. */
  tries?: number;
}

/**
 * Submits `bodies` over HTTP, round-robin across `targets()` (re-read on every try, so it follows a fleet
 * whose members come and go), with bounded concurrency. A POST that fails is retried on the next instance.
 */
export async function submitAll(
  targets: () => Api,
  bodies: Record<string, unknown>[],
  { inFlight = 50, perSecond, tries = 20 }: SubmitOptions = {},
): Promise<SubmitOutcome> {
  const ids = new Array<string>(bodies.length);
  let unknownOutcomes = 0;
  const startedAt = performance.now();
  await runBounded(bodies.length, inFlight, async (index) => {
    if (perSecond) {
      const due = startedAt + (index * 1000) / perSecond;
      if (due > performance.now()) await delay(due - performance.now());
    }
    let lastError = '';
    for (let attempt = 0; attempt < tries; attempt++) {
      const api = targets();
      try {
        const answer = await api.request<ScaleJob>('POST', '/v1/jobs', { body: bodies[index], timeoutMs: 5000 });
        if (answer.status === 202) {
          ids[index] = answer.body.id;
          return;
        }
        lastError = `${api.baseUrl} answered ${answer.status}: ${JSON.stringify(answer.body)}`;
        if (answer.status !== 503) break; // a 4xx is the test's fault: retrying would not help
        unknownOutcomes++;
      } catch (error) {
        unknownOutcomes++; // connection refused (nothing stored) or reset mid-request (maybe stored)
        lastError = `${api.baseUrl}: ${(error as Error).message}`;
      }
      await delay(100); // a pause between tries, not a wait for anything
    }
    throw new Error(`job ${index} could not be submitted: ${lastError}`);
  });
  return { ids, unknownOutcomes };
}

/** Runs `task(0..count-1)` with at most `limit` running at once; rejects with the first failure. */
export async function runBounded(count: number, limit: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
}

/** `count` sleep jobs of `minMs..maxMs` (uniform), one step each. */
export function sleepJobs(
  count: number,
  minMs: number,
  maxMs: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown>[] {
  return Array.from({ length: count }, () => ({
    type: 'sleep',
    input: { ms: minMs + Math.floor(Math.random() * (maxMs - minMs + 1)), steps: 1 },
    ...extra,
  }));
}

// ---------------------------------------------------------------- observing

export async function stats(api: Api): Promise<StatsView> {
  const answer = await api.request<StatsView>('GET', '/admin/stats', { timeoutMs: 5000 });
  if (answer.status !== 200)
    throw new Error(`GET /admin/stats on ${api.baseUrl} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/**
 * Samples Redis's own count of running jobs of `type` (one ZCARD, so exact at its instant) every
 * `intervalMs` until `stop()`; returns the largest count seen and how many samples were taken.
 */
export function sampleRunning(
  api: Api,
  type: string,
  intervalMs = 20,
  /** How to read the count instead of the stats' running count of `type`. */
  read?: () => Promise<number>,
): { stop(): Promise<{ max: number; samples: number }> } {
  let stopped = false;
  let max = 0;
  let samples = 0;
  const loop = (async () => {
    while (!stopped) {
      try {
        const running = read ? await read() : ((await stats(api)).by_type[type]?.running ?? 0);
        max = Math.max(max, running);
        samples++;
      } catch {
        // a missed sample; the count of samples says how many were taken
      }
      await delay(intervalMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { max, samples };
    },
  };
}

/**
 * Polls `/admin/stats` (every 200 ms) until at least `total` jobs exist and none is queued or running;
 * returns the counts. `api()` is asked for an instance on every poll.
 */
export async function waitUntilSettled(api: () => Api, total: number, timeoutMs: number): Promise<StatusCounts> {
  let last: unknown;
  try {
    return await waitFor(
      async () => {
        try {
          const { counts } = await stats(api());
          last = counts;
          const all = counts.queued + counts.running + counts.succeeded + counts.failed + counts.canceled;
          return all >= total && counts.queued === 0 && counts.running === 0 ? counts : undefined;
        } catch (error) {
          last = (error as Error).message; // e.g. the instance asked was just killed
          return undefined;
        }
      },
      { timeoutMs, intervalMs: 200, what: `${total} jobs to be done` },
    );
  } catch (error) {
    throw new Error(`${total} jobs were not all done within ${timeoutMs} ms; last counts: ${JSON.stringify(last)}`, {
      cause: error,
    });
  }
}

interface JobPage {
  data: ScaleJob[];
  next_cursor: string | null;
}

/** Every job of the fleet's prefix, oldest first, by paging `path` (`/v1/jobs` or `/admin/jobs`) 100 at a time. */
export async function listAll(api: Api, path = '/v1/jobs', query = '', maxPages = 200): Promise<ScaleJob[]> {
  const jobs: ScaleJob[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const url: string = `${path}?order=asc&limit=100${query ? `&${query}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const answer: HttpAnswer<JobPage> = await api.request<JobPage>('GET', url, { timeoutMs: 10_000 });
    if (answer.status !== 200) throw new Error(`GET ${url} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    jobs.push(...answer.body.data);
    cursor = answer.body.next_cursor;
    if (cursor === null) return jobs;
  }
  throw new Error(`GET ${path} had more than ${maxPages} pages`);
}

/**
 * The end state every scale proof shares: every acknowledged id is listed (none lost), every listed job
 * succeeded (also any a failed POST may have stored), with `attempt` ≥ 1, and its result written by its
 * last attempt (fencing: an earlier attempt whose lease lapsed cannot have written it). At most
 * `unknownOutcomes` listed jobs are not among the acknowledged ids. Returns the listed jobs by id.
 */
export function expectAllSucceeded(listed: ScaleJob[], ids: string[], unknownOutcomes = 0): Map<string, ScaleJob> {
  const byId = new Map(listed.map((job) => [job.id, job]));
  const missing = ids.filter((id) => !byId.has(id));
  expect(missing, `${missing.length} acknowledged jobs are missing`).toEqual([]);
  const extra = listed.length - new Set(ids).size;
  expect(extra, 'jobs listed beyond the acknowledged ones').toBeLessThanOrEqual(unknownOutcomes);

  const notSucceeded = listed.filter((job) => job.status !== 'succeeded');
  expect(
    notSucceeded.slice(0, 5).map((job) => ({ id: job.id, status: job.status, attempt: job.attempt, error: job.error })),
    `${notSucceeded.length} jobs did not succeed`,
  ).toEqual([]);
  const badAttempts = listed.filter(
    (job) => !(job.attempt >= 1) || job.result === null || job.result.attempt > job.attempt,
  );
  expect(
    badAttempts.slice(0, 5).map((job) => ({ id: job.id, attempt: job.attempt, result: job.result })),
    `${badAttempts.length} jobs have attempt < 1 or a result from a later attempt than the job's`,
  ).toEqual([]);
  // Stronger than "not greater": the result is the last attempt's, never a superseded one's.
  const staleResults = listed.filter((job) => job.result!.attempt !== job.attempt);
  expect(
    staleResults.slice(0, 5).map((job) => ({ id: job.id, attempt: job.attempt, result: job.result })),
    `${staleResults.length} jobs carry the result of an attempt other than their last`,
  ).toEqual([]);
  return byId;
}

/** `GET /admin/jobs?stuck=true`: running jobs whose lease lapsed. */
export async function stuckJobs(api: Api): Promise<ScaleJob[]> {
  return listAll(api, '/admin/jobs', 'stuck=true', 20);
}

// ---------------------------------------------------------------- measuring

export interface Overlap {
  /** The most intervals running at one instant. */
  max: number;
  /** The longest stretch of time during which more than `limit` ran (ms). */
  longestOverLimitMs: number;
}

/**
 * How many intervals `[start, end)` overlap at most, and for how long at a stretch more than `limit` did.
 * `[a, b)` and `[b, c)` do not overlap.
 */
export function overlap(intervals: [number, number][], limit: number): Overlap {
  const events: [number, number][] = intervals.flatMap(([start, end]): [number, number][] => [
    [start, +1],
    [end, -1],
  ]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // ends first at the same instant
  let current = 0;
  let max = 0;
  let overSince = 0;
  let longestOverLimitMs = 0;
  for (const [time, change] of events) {
    const before = current;
    current += change;
    max = Math.max(max, current);
    if (before <= limit && current > limit) overSince = time;
    if (before > limit && current <= limit) longestOverLimitMs = Math.max(longestOverLimitMs, time - overSince);
  }
  return { max, longestOverLimitMs };
}

/** The most `times` inside any window `[t, t + windowMs)`, sliding over every t. */
export function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let low = 0;
  for (let high = 0; high < sorted.length; high++) {
    while (sorted[high]! - sorted[low]! >= windowMs) low++;
    most = Math.max(most, high - low + 1);
  }
  return most;
}

export const ms = (iso: string | null): number => {
  if (iso === null) throw new Error('expected a time, got null');
  return Date.parse(iso);
};

/** Elapsed seconds since `since` (performance.now()), for the timing lines the tests print. */
export const secondsSince = (since: number): string => ((performance.now() - since) / 1000).toFixed(1);

// ---------------------------------------------------------------- schedules

/** A Job as listed, with the schedule that made it and the fire time it was made for (null for a submitted job). */
export interface ScheduledJob extends ScaleJob {
  schedule_id: string | null;
  scheduled_for: string | null;
}

/** `POST /v1/schedules`; expects 201 and returns the Schedule. */
export async function createSchedule(api: Api, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const answer = await api.request<Record<string, unknown>>('POST', '/v1/schedules', { body, timeoutMs: 5000 });
  if (answer.status !== 201)
    throw new Error(`POST /v1/schedules answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** Every job schedule `id` made, as `GET /v1/jobs?schedule_id=<id>` lists them (all pages). */
export async function scheduleJobs(api: Api, id: string): Promise<ScheduledJob[]> {
  return (await listAll(api, '/v1/jobs', `schedule_id=${encodeURIComponent(id)}`, 20)) as ScheduledJob[];
}

/** Resolves once the wall clock reads `at` (ms since the epoch); at once when it is past. */
export const sleepUntil = (at: number): Promise<void> => delay(Math.max(0, at - Date.now()));

/** An instant as ISO text, for readable assertion diffs. */
export const iso = (at: number): string => new Date(at).toISOString();
