import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { spawnRedisCluster, type SpawnedCluster } from '../helpers/redis-cluster.js';
import { waitFor } from '../helpers/wait-for.js';
import { describeJobStoreContract } from './job-store.contract.js';
import { newTestJob } from './redis-store-fixtures.js';
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

const connectClusterStore = (jobTtlMs: number, partitions?: number) =>
  RedisJobStore.connect({
    url: cluster.url,
    cluster: true,
    keyPrefix: `t${randomUUID().slice(0, 8)}`,
    jobTtlMs,
    connectTimeoutMs: 3000,
    commandTimeoutMs: 2000,
    sweepIntervalMs: 50,
    partitions,
  });

// One partition: today's layout, every key in one slot.
describeJobStoreContract('redis cluster, 1 partition', ({ jobTtlMs }) => connectClusterStore(jobTtlMs, 1));
// The Cluster's default: 4 partitions per master, spread over the 3 masters.
describeJobStoreContract('redis cluster, partitioned', ({ jobTtlMs }) => connectClusterStore(jobTtlMs), {
  claimOrder: 'partitions',
  partitions: 12,
});

describe('partitions on a 3-master cluster', () => {
  it('defaults to 4 partitions per master, and spreads jobs and their keys over every master', async () => {
    const store = await connectClusterStore(60_000);
    try {
      expect(store.partitionCount).toBe(12);
      const created = [];
      for (let i = 0; i < 600; i++) created.push(await store.create(newTestJob()));
      const masters = (store.redis as Cluster).nodes('master');
      expect(masters).toHaveLength(3);
      const jobKeysPerMaster = await Promise.all(
        masters.map(async (node) => {
          let count = 0;
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(
              cursor,
              'MATCH',
              `{${store.keys.base.slice(1, -3)}*:job:*`,
              'COUNT',
              1000,
            );
            cursor = next;
            count += keys.length;
          } while (cursor !== '0');
          return count;
        }),
      );
      expect(jobKeysPerMaster.reduce((a, b) => a + b, 0)).toBe(600);
      // Each master's share is a third (binomial: about 200 ± 12); under 120 is 7 standard deviations off.
      for (const count of jobKeysPerMaster) expect(count).toBeGreaterThan(120);
      // Every job is read back from its own partition, and listed across all of them in id order.
      for (const job of created.slice(0, 50)) expect((await store.get(job.id))?.id).toBe(job.id);
      const ids: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.list({ limit: 100, order: 'asc', after });
        ids.push(...page.jobs.map((job) => job.id));
        after = page.nextAfter ?? undefined;
      } while (after !== undefined);
      expect(ids).toEqual(created.map((job) => job.id).sort());
    } finally {
      await store.close();
    }
  }, 60_000);
});

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
