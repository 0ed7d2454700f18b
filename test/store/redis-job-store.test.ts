import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { StoreUnavailableError } from '../../src/store/job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { claimEcho, connectRedisStore, newTestJob } from './redis-store-fixtures.js';
import { describeJobStoreContract } from './job-store.contract.js';

describeJobStoreContract('redis', ({ jobTtlMs }) => connectRedisStore(inject('redisUrl'), jobTtlMs));
// The same Redis with jobs spread over 4 partitions (4 hash tags): listing, claims, limits and signals across them.
describeJobStoreContract(
  'redis, 4 partitions',
  ({ jobTtlMs }) => connectRedisStore(inject('redisUrl'), jobTtlMs, undefined, 4),
  { claimOrder: 'partitions', partitions: 4 },
);

describe('Redis store specifics', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  it('keeps every key under one hash tag, and gives finished jobs a Redis TTL, packed in one value', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const store = await connectRedisStore(inject('redisUrl'), 60_000, prefix);
    cleanups.push(() => store.close());
    const created = await store.create(newTestJob());
    const [claimed] = await claimEcho(store, 'l');
    await store.finish({ jobId: claimed!.id, leaseId: 'l' }, { kind: 'succeeded', result: { ok: 1 } }, Date.now());
    const redis = new Redis(inject('redisUrl'));
    cleanups.push(() => redis.quit());
    const keys = await redis.keys(`*${prefix}*`);
    expect(keys.length).toBeGreaterThan(3);
    for (const key of keys) expect(key.startsWith(`{${prefix}}:`)).toBe(true);
    expect(await redis.type(store.keys.job(created.id))).toBe('string');
    const ttl = await redis.pttl(store.keys.job(created.id));
    // JOB_TTL_S after finishing, plus the minute the sweeper gets to remove its index entry.
    expect(ttl).toBeGreaterThan(110_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
  });

  it('adopts ready jobs queued before the fair queue (an upgrade), in their order, when it connects', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const first = await connectRedisStore(inject('redisUrl'), 60_000, prefix);
    cleanups.push(() => first.close());
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await first.create(newTestJob()));
    // The layout before: one ready zset per type, scored (100 - priority)·2^42 + run_at; no fair queue.
    const redis = new Redis(inject('redisUrl'));
    cleanups.push(() => redis.quit());
    const band = 4398046511104;
    for (const key of await redis.keys(`{${prefix}}:f[qtr]:*`)) await redis.del(key);
    // Scored newest first whatever the time between the creates (a loaded machine may take over 10 ms for one).
    for (const [i, job] of jobs.entries())
      await redis.zadd(first.keys.legacyReady('echo'), 100 * band + jobs[0]!.runAt - i * 10, job.id);
    expect(await claimEcho(first, 'l0', 5)).toEqual([]);

    const upgraded = await connectRedisStore(inject('redisUrl'), 60_000, prefix);
    cleanups.push(() => upgraded.close());
    expect(await redis.exists(upgraded.keys.legacyReady('echo'))).toBe(0);
    const claimed = await claimEcho(upgraded, 'l', 5);
    expect(claimed.map((job) => job.id)).toEqual(jobs.map((job) => job.id).reverse());
  });

  it("gives a job's log lines the job's own expiry, whether they came while it ran or after it finished", async () => {
    const store = await connectRedisStore(inject('redisUrl'), 60_000);
    cleanups.push(() => store.close());
    const redis = new Redis(inject('redisUrl'));
    cleanups.push(() => redis.quit());
    const line = { at: 1, attempt: 1, level: 'info' as const, message: 'hi' };
    const created = await store.create(newTestJob());
    const [claimed] = await claimEcho(store, 'l');
    await store.appendLogs([{ jobId: created.id, lines: [line] }]);
    expect(await redis.pttl(store.keys.logs(created.id))).toBe(-1); // running: kept until it finishes
    await store.finish({ jobId: claimed!.id, leaseId: 'l' }, { kind: 'succeeded', result: 1 }, Date.now());
    const expiresAt = (key: string) => redis.call('PEXPIRETIME', key);
    expect(await expiresAt(store.keys.logs(created.id))).toBe(await expiresAt(store.keys.job(created.id)));
    await store.appendLogs([{ jobId: created.id, lines: [line] }]); // a late line of a finished job
    expect(await redis.pttl(store.keys.logs(created.id))).toBeGreaterThan(110_000);
    const silent = await store.create(newTestJob());
    const [other] = await claimEcho(store, 'm');
    await store.finish({ jobId: other!.id, leaseId: 'm' }, { kind: 'succeeded', result: 1 }, Date.now());
    expect(await redis.exists(store.keys.logs(silent.id))).toBe(0);
  });

  it('sweeps expired jobs out of Redis and the listing indexes, also when Redis dropped the key first', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const store = await connectRedisStore(inject('redisUrl'), 100, prefix);
    cleanups.push(() => store.close());
    const redis = new Redis(inject('redisUrl'));
    cleanups.push(() => redis.quit());
    const finishOne = async () => {
      await store.create(newTestJob());
      const [claimed] = await claimEcho(store, 'l');
      await store.finish({ jobId: claimed!.id, leaseId: 'l' }, { kind: 'succeeded', result: 1 }, Date.now());
      return claimed!.id;
    };
    const swept = await finishOne();
    await expect.poll(() => redis.exists(store.keys.job(swept)), { timeout: 3000 }).toBe(0);
    await expect.poll(() => redis.zcard(store.keys.index('succeeded', 'echo')), { timeout: 3000 }).toBe(0);
    // Redis expired (here: deleted) the key before the sweeper came by: the index entry still goes.
    const dropped = await finishOne();
    await redis.del(store.keys.job(dropped));
    await expect.poll(() => redis.zcard(store.keys.index('succeeded', 'echo')), { timeout: 3000 }).toBe(0);
    expect(await redis.zcard(store.keys.expiry)).toBe(0);
    expect(await store.goneAt(dropped)).not.toBeNull();
  });

  it('stores large inputs and results deflated, transparently', async () => {
    const store = await RedisJobStore.connect({
      url: inject('redisUrl'),
      keyPrefix: `t${randomUUID().slice(0, 8)}`,
      jobTtlMs: 60_000,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 1000,
      compressThresholdBytes: 1024,
    });
    cleanups.push(() => store.close());
    const big = { rows: Array.from({ length: 500 }, (_, i) => ({ i, text: `row ${i} ✓ ${'x'.repeat(20)}` })) };
    const created = await store.create({ ...newTestJob(), input: big });
    const redis = new Redis(inject('redisUrl'));
    cleanups.push(() => redis.quit());
    const storedInput = await redis.hget(store.keys.job(created.id), 'input');
    expect(storedInput!.startsWith('~z:')).toBe(true);
    expect(storedInput!.length).toBeLessThan(JSON.stringify(big).length / 3);
    const [claimed] = await claimEcho(store, 'l');
    expect(claimed!.input).toEqual(big);
    await store.finish({ jobId: created.id, leaseId: 'l' }, { kind: 'succeeded', result: big }, Date.now());
    // A finished job is one packed JSON value; its result field is still stored deflated.
    const packed = (await redis.get(store.keys.job(created.id)))!;
    expect(packed.startsWith('[')).toBe(true);
    expect(packed).toContain('"~z:');
    expect((await store.get(created.id))!.result).toEqual(big);
    const small = await store.create(newTestJob());
    expect((await redis.hget(store.keys.job(small.id), 'input'))!.startsWith('{')).toBe(true);
  });

  it('refuses to connect to a closed port with StoreUnavailableError', async () => {
    await expect(connectRedisStore('redis://127.0.0.1:1', 1000)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
