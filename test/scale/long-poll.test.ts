import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { startService, useServiceCleanup } from '../e2e/helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/* A long-poll held on one instance wakes on a change made on another: the signal travels through Redis. */

useServiceCleanup();

const redis = useSpawnedRedis();

describe('long-poll across instances', () => {
  it(
    'a GET held on the api instance answers when the worker instance reports progress',
    { timeout: 30_000 },
    async () => {
      const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'longpoll', REDIS_REQUIRED: 'true' };
      const api = await startService({ ...env, ROLE: 'api' });
      await startService({ ...env, ROLE: 'worker' });
      const created = await fetch(`${api.baseUrl}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'sleep', input: { ms: 4000, steps: 4 } }),
      });
      const job = (await created.json()) as { id: string; version: number };
      const current = await waitFor(
        async () => {
          const read = (await (await fetch(`${api.baseUrl}/v1/jobs/${job.id}`)).json()) as typeof job & {
            status: string;
          };
          return read.status === 'running' ? read : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: `job ${job.id} to be running` },
      );
      const started = Date.now();
      const held = await fetch(`${api.baseUrl}/v1/jobs/${job.id}`, {
        headers: { prefer: 'wait=20', 'if-none-match': `"v${current.version}"` },
      });
      const waited = Date.now() - started;
      expect(held.status).toBe(200);
      expect(held.headers.get('preference-applied')).toBe('wait=20');
      const changed = (await held.json()) as { version: number; progress: { percent: number } };
      expect(changed.version).toBeGreaterThan(current.version);
      // The next progress step comes within about a second; a poll of the store would not be this quick to wake.
      expect(waited).toBeLessThan(2500);
    },
  );
});
