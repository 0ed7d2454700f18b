import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/store/job-store.js';
import { connectRedisStore, newTestJob } from './redis-store-fixtures.js';
import { spawnRedis, type SpawnedRedis } from '../helpers/redis-server.js';

/*
 * The Redis store when its Redis stops answering: against a redis-server of each test's own (paused, killed and
 * restarted), so these are apart from redis-job-store.test.ts, which needs only the shared Redis (npm run test:unit).
 */

describe('Redis store specifics', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  describe('when Redis stops answering', () => {
    let server: SpawnedRedis;
    afterEach(async () => {
      await server?.stop();
    });

    it('fails fast with StoreUnavailableError while paused, and recovers when it answers again', async () => {
      server = await spawnRedis();
      const store = await connectRedisStore(server.url, 60_000);
      cleanups.push(() => store.close());
      const created = await store.create(newTestJob());
      server.signal('SIGSTOP');
      const started = Date.now();
      await expect(store.get(created.id)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(2000);
      await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      server.signal('SIGCONT');
      await expect
        .poll(() => store.get(created.id).catch(() => 'down'), { timeout: 10_000, interval: 100 })
        .toMatchObject({ id: created.id });
    });

    it('fails fast while Redis is down, and reconnects after a restart', async () => {
      server = await spawnRedis({ appendonly: true });
      const store = await connectRedisStore(server.url, 60_000);
      cleanups.push(() => store.close());
      const created = await store.create(newTestJob());
      server.signal('SIGKILL');
      await expect
        .poll(
          () =>
            store.get(created.id).then(
              () => 'up',
              (error: unknown) => (error instanceof StoreUnavailableError ? 'unavailable' : 'other'),
            ),
          { timeout: 3000 },
        )
        .toBe('unavailable');
      await server.restart();
      await expect
        .poll(() => store.get(created.id).catch(() => undefined), { timeout: 10_000, interval: 100 })
        .toMatchObject({ id: created.id, status: 'queued' });
    });
  });
});
