import { afterAll, beforeAll } from 'vitest';
import { spawnRedis, type SpawnedRedis } from './redis-server.js';

/** A redis-server of the file's own for its tests: started before them, stopped after them. */
export function useSpawnedRedis(options: { appendonly?: boolean } = {}): SpawnedRedis {
  let server: SpawnedRedis | undefined;
  beforeAll(async () => {
    server = await spawnRedis(options);
  });
  afterAll(async () => {
    await server?.stop();
  });
  const current = (): SpawnedRedis => {
    if (!server) throw new Error('the Redis of this file is not started yet: use it inside tests');
    return server;
  };
  return {
    get url() {
      return current().url;
    },
    get port() {
      return current().port;
    },
    get dir() {
      return current().dir;
    },
    get pid() {
      return current().pid;
    },
    signal: (signal) => current().signal(signal),
    restart: () => current().restart(),
    stop: () => current().stop(),
  };
}
