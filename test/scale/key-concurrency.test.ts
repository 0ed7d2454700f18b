import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { useServiceCleanup } from '../e2e/helpers.js';
import {
  expectAllSucceeded,
  listAll,
  ms,
  overlap,
  runBounded,
  secondsSince,
  startFleet,
  waitUntilSettled,
  type ScaleJob,
} from './fleet.js';

/*
 * key_concurrency holds across the fleet: three instances (10 worker slots each) run 300 `timed-sleep` jobs
 * (test/fixtures/handlers/timed-sleep.mjs, key_concurrency 1) over 10 concurrency keys. Each handler returns when it
 * started and ended, so one key's intervals can be compared across processes: a job of a key may only start after
 * the previous one's finish was stored, so its start is never before that one's end (same machine, same clock; ms
 * steps, hence "not before" rather than "after").
 *
 * The type is paused while the jobs are submitted and resumed once all are queued, so what is measured is the
 * claims, not how fast this machine takes 300 POSTs. key-00's jobs are submitted first, its first one sleeping
 * 1.5 s: its 29 others then wait at the head of the queue, held back by their key's cap, and every job of the
 * other keys still runs and ends before that first job does.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

const handlerModule = fileURLToPath(new URL('../fixtures/handlers/timed-sleep.mjs', import.meta.url));

const KEYS = 10;
const JOBS_PER_KEY = 30;
const LONG_MS = 1500;

interface TimedResult {
  started: number;
  ended: number;
  attempt: number;
}

interface Planned {
  key: string;
  /** Place in its key's submit order. */
  seq: number;
  ms: number;
  id?: string;
}

const timesOf = (job: ScaleJob): TimedResult => job.result as unknown as TimedResult;

describe('key_concurrency 1 across three instances', () => {
  it(
    "runs each key's jobs one at a time, in submit order, and a key at its cap does not delay the others",
    { timeout: 90_000 },
    async () => {
      const fleet = await startFleet(redis, 3, { HANDLER_MODULES: handlerModule, WORKER_CONCURRENCY: '10' });
      const api = fleet.apis[0]!;
      const began = performance.now();
      const random = seededRandom(13);
      const keys = Array.from({ length: KEYS }, (_, k) => `key-${String(k).padStart(2, '0')}`);
      // plan[k][seq]: a few ms each (seeded), except key-00's first job.
      const plan: Planned[][] = keys.map((key) =>
        Array.from({ length: JOBS_PER_KEY }, (_, seq) => ({ key, seq, ms: 1 + Math.floor(random() * 8) })),
      );
      const long = plan[0]![0]!;
      long.ms = LONG_MS;

      const pause = await api.request('POST', '/admin/types/timed-sleep/pause', { body: { reason: 'submitting' } });
      expect(pause.status).toBe(200);
      // A key's jobs go one after another (the next POST after the previous one's 202), so their submit order is
      // known, each POST to the next instance in turn. key-00's first, then the other keys' lanes side by side.
      const submitKey = async (k: number) => {
        for (const planned of plan[k]!) {
          const job = await fleet.apis[(k + planned.seq) % fleet.apis.length]!.submit({
            type: 'timed-sleep',
            input: { ms: planned.ms },
            concurrency_key: planned.key,
          });
          planned.id = job.id;
        }
      };
      await submitKey(0);
      await runBounded(KEYS - 1, KEYS - 1, (k) => submitKey(k + 1));
      const submittedIn = secondsSince(began);
      const resumedAt = Date.now();
      expect((await api.request('POST', '/admin/types/timed-sleep/resume')).status).toBe(200);

      // While the long job runs, the next job of its key is queued and says why (read between two reads of the
      // long job that both find it running).
      await api.waitForJob(long.id!, 'to run', (job) => job.status === 'running', 10_000, 20);
      const next = (await api.request<ScaleJob & { waiting_for: string | null }>('GET', `/v1/jobs/${plan[0]![1]!.id}`))
        .body;
      const longStillRunning = (await api.job(long.id!)).status === 'running';

      await waitUntilSettled(() => api, KEYS * JOBS_PER_KEY, 60_000);
      const listed = await listAll(api, '/admin/jobs');
      const all = plan.flat();
      const byId = expectAllSucceeded(
        listed,
        all.map((planned) => planned.id!),
      );
      const jobOf = (planned: Planned) => byId.get(planned.id!)!;
      const earliestStart = Math.min(...listed.map((job) => ms(job.started_at)));
      expect(earliestStart, 'a job started while its type was paused').toBeGreaterThanOrEqual(resumedAt);

      // Never two jobs of one key at once, and each key's jobs in submit order: in the order they started, each
      // starts no earlier than the previous one ended, and that order is the submit order.
      const overlaps: string[] = [];
      const outOfOrder: string[] = [];
      for (const jobs of plan) {
        const byStart = jobs
          .map((planned) => ({ planned, times: timesOf(jobOf(planned)) }))
          .sort((a, b) => a.times.started - b.times.started || a.times.ended - b.times.ended);
        for (let i = 1; i < byStart.length; i++) {
          const [before, after] = [byStart[i - 1]!, byStart[i]!];
          if (after.times.started < before.times.ended)
            overlaps.push(
              `${after.planned.key} #${before.planned.seq} [${before.times.started}, ${before.times.ended}] and #${after.planned.seq} [${after.times.started}, ${after.times.ended}]`,
            );
        }
        const startOrder = byStart.map((entry) => entry.planned.seq);
        if (startOrder.some((seq, i) => seq !== i)) outOfOrder.push(`${jobs[0]!.key}: ${startOrder.join(',')}`);
      }

      // The key at its cap held back only its own jobs: every job of the other keys ended before the long one did.
      const longTimes = timesOf(jobOf(long));
      const others = plan.slice(1).flat();
      const lastOther = Math.max(...others.map((planned) => timesOf(jobOf(planned)).ended));
      const endedLater = others.filter((planned) => timesOf(jobOf(planned)).ended > longTimes.ended);

      // The fleet really ran them side by side, on more than one instance.
      const intervals = all.map((planned): [number, number] => {
        const times = timesOf(jobOf(planned));
        return [times.started, times.ended];
      });
      const { max } = overlap(intervals, KEYS);
      const workers = new Set(listed.map((job) => (job as ScaleJob & { worker_id: string | null }).worker_id));

      console.log(
        `[scale] key_concurrency=1: ${all.length} jobs over ${KEYS} keys submitted in ${submittedIn} s (type paused), done in ${secondsSince(began)} s on 3 instances (${workers.size} ran jobs); ` +
          `most running at once ${max}; the other keys' 270 jobs ran in ${lastOther - earliestStart} ms and ended ${longTimes.ended - lastOther} ms before key-00's ${LONG_MS} ms job; ` +
          `key-00's next job meanwhile: ${next.status}, waiting_for ${next.waiting_for}`,
      );
      expect(overlaps, 'jobs of one key that ran at the same time').toEqual([]);
      expect(outOfOrder, 'keys whose jobs did not start in submit order (seq in order of start)').toEqual([]);
      expect(
        endedLater.map((planned) => `${planned.key} #${planned.seq}`),
        `jobs of other keys that ended after key-00's ${LONG_MS} ms job`,
      ).toEqual([]);
      expect(max, 'the jobs did not run in parallel').toBeGreaterThan(1);
      expect(max, 'more jobs at once than there are keys').toBeLessThanOrEqual(KEYS);
      expect(workers.size, 'instances that ran jobs').toBeGreaterThanOrEqual(2);
      expect(longStillRunning, 'the long job ended before its next job was read').toBe(true);
      expect({ status: next.status, waiting_for: next.waiting_for }).toEqual({
        status: 'queued',
        waiting_for: 'concurrency_key',
      });
    },
  );
});
