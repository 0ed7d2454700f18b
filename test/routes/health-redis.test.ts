import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { healthSchema } from '../../src/routes/schemas.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { spawnRedis, type SpawnedRedis } from '../helpers/redis-server.js';
import { harnessScope } from './helpers.js';

/* /health on Redis: a Redis that keeps nothing on disk would lose every job when it restarts: warn. */

const scope = harnessScope();
const servers: SpawnedRedis[] = [];
afterEach(async () => {
  await scope.closeAll();
  for (const server of servers.splice(0)) await server.stop();
});

async function healthOn(appendonly: boolean) {
  const server = await spawnRedis({ appendonly });
  servers.push(server);
  const store = await RedisJobStore.connect({
    url: server.url,
    keyPrefix: `h${randomUUID().slice(0, 6)}`,
    jobTtlMs: 60_000,
    connectTimeoutMs: 2000,
    commandTimeoutMs: 1000,
  });
  const { app } = await scope.open({ store });
  return healthSchema.parse((await app.inject({ method: 'GET', url: '/health' })).json());
}

describe('GET /health on Redis', () => {
  it('warns when Redis has neither AOF nor RDB snapshots', async () => {
    const health = await healthOn(false);
    expect(health.status).toBe('warn');
    expect(health.checks.persistence).toMatchObject({ status: 'warn', aof: false, rdb: false });
    expect(health.checks.persistence!.output).toMatch(/restart loses every job/);
  });

  it('passes with AOF on', async () => {
    const health = await healthOn(true);
    expect(health.checks.persistence).toMatchObject({ status: 'pass', aof: true });
    expect(health.status).toBe('pass');
  });
});
