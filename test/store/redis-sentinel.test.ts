import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { freePort, spawnRedis, waitForRedis, type SpawnedRedis } from '../helpers/redis-server.js';

// A master and a Sentinel watching it, both spawned here: the store finds the master through Sentinel.
describe('Redis store through Sentinel', () => {
  let master: SpawnedRedis;
  let sentinel: ChildProcess;
  let sentinelPort: number;

  beforeAll(async () => {
    master = await spawnRedis();
    sentinelPort = await freePort();
    const config = join(master.dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${master.dir}`,
        `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
        '',
      ].join('\n'),
    );
    sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    sentinel.unref();
    await waitForRedis(`redis://127.0.0.1:${sentinelPort}`, 10_000);
  });

  afterAll(async () => {
    if (sentinel && sentinel.exitCode === null) {
      const exited = new Promise((resolve) => sentinel.once('exit', resolve));
      sentinel.kill('SIGKILL');
      await exited;
    }
    await master?.stop();
  });

  it('connects to the master the sentinels name and runs a job through it', async () => {
    const store = await RedisJobStore.connect({
      url: 'redis://sentinel-managed',
      sentinels: [{ host: '127.0.0.1', port: sentinelPort }],
      sentinelMaster: 'mymaster',
      keyPrefix: 'sentinel-test',
      jobTtlMs: 60_000,
      connectTimeoutMs: 3000,
      commandTimeoutMs: 2000,
    });
    try {
      const now = Date.now();
      const created = await store.create({
        id: newJobId(now),
        type: 'echo',
        tenant: '-',
        input: { via: 'sentinel' },
        metadata: {},
        priority: 0,
        maxAttempts: 1,
        timeoutS: null,
        createdAt: now,
        runAt: now,
      });
      const [claimed] = await store.claim({
        types: ['echo'],
        max: 1,
        workerId: 'w',
        leaseId: 'l',
        leaseMs: 5000,
        now: Date.now(),
      });
      expect(claimed?.id).toBe(created.id);
      await store.finish({ jobId: created.id, leaseId: 'l' }, { kind: 'succeeded', result: { ok: true } }, Date.now());
      expect(await store.get(created.id)).toMatchObject({ status: 'succeeded', result: { ok: true } });
    } finally {
      await store.close();
    }
  });
});
