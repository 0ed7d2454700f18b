import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { delay, startService, useServiceCleanup } from '../e2e/helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * Idle workers wait on a pub/sub signal and a timer set to the next due time, not on a polling loop:
 * with no jobs, two idle instances together send Redis (almost) no commands, yet wake within
 * milliseconds of a new job.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

async function commandsProcessed(client: Redis): Promise<number> {
  const info = await client.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)![1]);
}

describe('idle instances', () => {
  it(
    'cost (near) zero Redis commands per second and still pick up a new job within milliseconds',
    { timeout: 40_000 },
    async () => {
      const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'idle', REDIS_REQUIRED: 'true', WORKER_CONCURRENCY: '10' };
      const a = await startService(env);
      await startService(env);
      const probe = new Redis(redis.url);
      try {
        await delay(1000); // start-up traffic (subscribe, first claims) settles
        const before = await commandsProcessed(probe);
        await delay(5000); // the window measured: a fixed length is the point
        const after = await commandsProcessed(probe);
        // INFO itself counts one; a sweep or a safety wake-up may add a few. A polling loop would add hundreds.
        const perSecond = (after - before - 1) / 5;
        console.log(`[idle] ${perSecond} Redis commands/s from two idle instances`);
        expect(perSecond).toBeLessThan(2);

        const submitted = Date.now();
        const created = await fetch(`${a.baseUrl}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'echo', input: { value: 1 } }),
        });
        const job = (await created.json()) as { id: string };
        let status = '';
        let started: string | null = null;
        // Bounded (3 s), as before: should the job not succeed by then, the expects below judge.
        await waitFor(
          async () => {
            const read = (await (await fetch(`${a.baseUrl}/v1/jobs/${job.id}`)).json()) as {
              status: string;
              started_at: string | null;
            };
            status = read.status;
            started = read.started_at;
            return status === 'succeeded';
          },
          { timeoutMs: Math.max(0, 3000 - (Date.now() - submitted)), intervalMs: 10, what: `job ${job.id} to succeed` },
        ).catch(() => undefined);
        expect(status).toBe('succeeded');
        expect(Date.parse(started!) - submitted).toBeLessThan(200);
      } finally {
        probe.disconnect();
      }
    },
  );
});
