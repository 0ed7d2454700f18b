import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { spawnRedisCluster, type SpawnedCluster } from '../helpers/redis-cluster.js';
import { waitFor } from '../helpers/wait-for.js';
import { describeJobStoreContract } from './job-store.contract.js';
import { RedisScheduleStore } from '../../src/schedules/redis-schedule-store.js';
import { describeScheduleStoreContract } from '../schedules/schedule-store.contract.js';

// The same contract, against a 3-master Redis Cluster the test spawns: every script must touch one slot.
let cluster: SpawnedCluster;
beforeAll(async () => {
  cluster = await spawnRedisCluster();
  // A fresh cluster may take a moment before every node serves its slots to a new client.
  await waitFor(
    async () => {
      const store = await RedisJobStore.connect({
        url: cluster.url,
        cluster: true,
        keyPrefix: 'warmup',
        jobTtlMs: 1000,
        connectTimeoutMs: 3000,
        commandTimeoutMs: 2000,
      });
      await store.stats(Date.now());
      await store.close();
      return true;
    },
    { timeoutMs: 20_000, intervalMs: 200, what: 'every cluster node to serve its slots' },
  );
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describeJobStoreContract('redis cluster', ({ jobTtlMs }) =>
  RedisJobStore.connect({
    url: cluster.url,
    cluster: true,
    keyPrefix: `t${randomUUID().slice(0, 8)}`,
    jobTtlMs,
    connectTimeoutMs: 3000,
    commandTimeoutMs: 2000,
    sweepIntervalMs: 50,
  }),
);

// Schedules live under the same hash tag: their scripts and change signal work on a Cluster too.
describeScheduleStoreContract('redis cluster', async () => {
  const jobs = await RedisJobStore.connect({
    url: cluster.url,
    cluster: true,
    keyPrefix: `t${randomUUID().slice(0, 8)}`,
    jobTtlMs: 60_000,
    connectTimeoutMs: 3000,
    commandTimeoutMs: 2000,
  });
  return {
    jobs,
    schedules: new RedisScheduleStore(jobs.redis, jobs.keys.base, { commandTimeoutMs: 2000 }),
    close: () => jobs.close(),
  };
});
