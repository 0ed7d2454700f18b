import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { spawnRedisCluster, type SpawnedCluster } from '../helpers/redis-cluster.js';
import { describeJobStoreContract } from './job-store.contract.js';

// The same contract, against a 3-master Redis Cluster the test spawns: every script must touch one slot.
let cluster: SpawnedCluster;
beforeAll(async () => {
  cluster = await spawnRedisCluster();
  // A fresh cluster may take a moment before every node serves its slots to a new client.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const store = await RedisJobStore.connect({ url: cluster.url, cluster: true, keyPrefix: 'warmup', jobTtlMs: 1000, connectTimeoutMs: 3000, commandTimeoutMs: 2000 });
      await store.stats(Date.now());
      await store.close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
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
