import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { partitionInId } from '../../src/jobs/job-id.js';
import type { JobRecord } from '../../src/jobs/job.js';
import type { RedisJobStore } from '../../src/store/redis-job-store.js';
import { connectRedisStore, newTestJob } from './redis-store-fixtures.js';

// What partitions add beyond the contract (which runs partitioned too): limits held across partitions and instances,
// and a partition count that changes under running instances.
describe('Redis store partitions', () => {
  const opened: RedisJobStore[] = [];
  const open = async (prefix: string, partitions: number) => {
    const store = await connectRedisStore(inject('redisUrl'), 60_000, prefix, partitions);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('never has more than max_concurrency jobs running across partitions and instances, and runs them all', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const [a, b] = [await open(prefix, 4), await open(prefix, 4)];
    for (let i = 0; i < 120; i++) await a.create(newTestJob('capped'));
    const limits = { capped: { maxConcurrency: 3 } };
    let running = 0;
    let most = 0;
    let done = 0;
    let claimCalls = 0;
    const worker = async (store: RedisJobStore, name: string) => {
      while (done < 120 && claimCalls < 5000) {
        claimCalls++;
        const jobs = await store.claim({
          types: ['capped'],
          limits,
          max: 2,
          workerId: name,
          leaseId: `${name}-${randomUUID()}`,
          leaseMs: 10_000,
          now: Date.now(),
        });
        if (jobs.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          continue;
        }
        running += jobs.length;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 3));
        for (const job of jobs) {
          running--; // counted as ended before the finish call: a place is given back only after it
          await store.finish({ jobId: job.id, leaseId: job.lease!.id }, { kind: 'succeeded', result: 1 }, Date.now(), {
            concurrencyLimited: true,
          });
          done++;
        }
      }
    };
    await Promise.all([a, b, a, b, a, b].map((store, i) => worker(store, `w${i}`)));
    expect(done).toBe(120);
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThanOrEqual(2); // the workers did overlap
  }, 60_000);

  it('never starts more than rate.max jobs in a window across partitions', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const store = await open(prefix, 4);
    for (let i = 0; i < 20; i++) await store.create(newTestJob('rated'));
    const limits = { rated: { rate: { max: 5, perMs: 60_000 } } };
    const claim = (n: number) =>
      store.claim({
        types: ['rated'],
        limits,
        max: 4,
        workerId: 'w',
        leaseId: `l${n}`,
        leaseMs: 10_000,
        now: Date.now(),
      });
    const claimed: JobRecord[] = [];
    for (let i = 0; i < 6; i++) claimed.push(...(await claim(i)));
    expect(claimed).toHaveLength(5);
  });

  it('finds, claims and lists jobs of partitions another instance added, and keeps them when the count is lowered', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const two = await open(prefix, 2);
    const older = [];
    for (let i = 0; i < 20; i++) older.push(await two.create(newTestJob()));
    const six = await open(prefix, 6);
    expect(six.partitionCount).toBe(6);
    const newer = [];
    for (let i = 0; i < 60; i++) newer.push(await six.create(newTestJob()));
    expect(new Set(newer.map((job) => partitionInId(job.id))).size).toBe(6);
    // The instance started with 2 meets an id naming partition 5: it reads the table again and finds the job.
    const farOut = newer.find((job) => partitionInId(job.id) >= 2)!;
    expect((await two.get(farOut.id))?.id).toBe(farOut.id);
    expect(two.partitionCount).toBe(6);
    expect(two.active).toBe(2); // its own new jobs still use 2
    // Lowered to 1: every job is still listed and claimed.
    const one = await open(prefix, 1);
    expect(one.partitionCount).toBe(6);
    const listed: string[] = [];
    let after: string | undefined;
    do {
      const page = await one.list({ limit: 25, order: 'asc', after });
      listed.push(...page.jobs.map((job) => job.id));
      after = page.nextAfter ?? undefined;
    } while (after !== undefined);
    expect(listed).toEqual([...older, ...newer].map((job) => job.id).sort());
    const claimed: JobRecord[] = [];
    for (let i = 0; i < 40 && claimed.length < 80; i++) {
      claimed.push(
        ...(await one.claim({
          types: ['echo'],
          max: 10,
          workerId: 'w',
          leaseId: `l${i}`,
          leaseMs: 10_000,
          now: Date.now(),
        })),
      );
    }
    expect(claimed.map((job) => job.id).sort()).toEqual(listed);
    const fresh = await one.create(newTestJob());
    expect(partitionInId(fresh.id)).toBe(0);
  });
});
