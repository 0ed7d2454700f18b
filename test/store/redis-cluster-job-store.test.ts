import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { spawnRedisCluster, type SpawnedCluster } from '../helpers/redis-cluster.js';
import { describeJobStoreContract } from './job-store.contract.js';

// The same contract, against a 3-master Redis Cluster the test spawns: every script must touch one slot.
let cluster: SpawnedCluster;
beforeAll(async () => {
  cluster = await spawnRedisCluster();
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
