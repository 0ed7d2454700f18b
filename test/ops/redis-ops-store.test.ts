import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { StoreUnavailableError } from '../../src/store/job-store.js';
import { RedisOpsStore } from '../../src/ops/redis-ops-store.js';
import { freePort } from '../helpers/redis-server.js';
import { describeOpsStoreContract, workerRecord } from './ops-store.contract.js';

const uniqueBase = () => `{t${randomUUID().slice(0, 8)}}:`;

describeOpsStoreContract('redis', async (options) => {
  const redis = new Redis(inject('redisUrl'));
  const ops = new RedisOpsStore(redis, uniqueBase(), options);
  return {
    ops,
    async close() {
      await ops.close();
      await redis.quit();
    },
  };
});

describe('Redis ops store specifics', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });
  const client = () => {
    const redis = new Redis(inject('redisUrl'));
    cleanups.push(() => redis.quit());
    return redis;
  };
  const store = (redis: Redis, base: string) => {
    const ops = new RedisOpsStore(redis, base);
    cleanups.push(() => ops.close());
    return ops;
  };

  it('keeps every key under the one hash tag, and history buckets expire', async () => {
    const base = uniqueBase();
    const redis = client();
    const ops = store(redis, base);
    const now = Date.now();
    await ops.saveSnapshot({ action: 'retry', ids: ['a'], by: 'k' }, 60_000);
    await ops.pauseType('echo', { by: 'k', reason: 'r', at: now });
    await ops.beat(workerRecord());
    await ops.setDraining('w-1', true);
    await ops.audit({ at: now, actor: { key_id: 'k', role: 'admin' }, action: 'type.pause', target: 'echo', count: 1 });
    await ops.recordFinished([{ type: 'echo', status: 'succeeded', waitMs: 1, runMs: 2, at: now }]);
    await ops.recordDepth(now, { echo: 1 });
    await ops.declareType({
      type: 'report',
      input_schema: {},
      description: null,
      timeout_s: null,
      max_attempts: null,
      max_concurrency: null,
      rate: null,
      lease_s: null,
      created_at: now,
      updated_at: now,
    });
    const keys = await redis.keys(`${base.replace(/[{}]/g, '\\$&')}*`);
    expect(keys.length).toBeGreaterThanOrEqual(10);
    for (const key of keys) expect(key.startsWith(base)).toBe(true);
    const historyKeys = keys.filter((key) => key.includes(':ops:hist:'));
    expect(historyKeys).toHaveLength(3);
    for (const key of historyKeys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(8 * 86_400_000 + 3_600_000);
    }
    const minuteTtl = await redis.pttl(historyKeys.find((key) => key.includes(':hist:1h:'))!);
    expect(minuteTtl).toBeGreaterThan(2 * 3_600_000);
    expect(minuteTtl).toBeLessThanOrEqual(2 * 3_600_000 + 60_000);
  });

  it('survives a restart: a new store on the same prefix sees pauses, drains, workers, audit and history', async () => {
    const base = uniqueBase();
    const now = Date.now();
    const first = store(client(), base);
    await first.pauseType('sleep', { by: 'k', reason: 'maintenance', at: now });
    await first.beat(workerRecord());
    await first.setDraining('w-1', true);
    await first.audit({
      at: now,
      actor: { key_id: 'k', role: 'admin' },
      action: 'type.pause',
      target: 'sleep',
      count: 1,
    });
    await first.recordFinished([{ type: 'sleep', status: 'failed', waitMs: 5, runMs: 50, at: now }]);
    await first.close();

    const second = store(client(), base);
    expect(Object.keys(await second.pausedTypes())).toEqual(['sleep']);
    expect(await second.isDraining('w-1')).toBe(true);
    expect((await second.workers(now)).map((worker) => worker.id)).toEqual(['w-1']);
    expect((await second.auditLog({ limit: 5 })).entries.map((entry) => entry.target)).toEqual(['sleep']);
    expect((await second.history('1h', now)).buckets.at(-1)!.types.sleep).toMatchObject({ failed: 1 });
  });

  it('control messages reach a store on another connection (another instance)', async () => {
    const base = uniqueBase();
    const publisher = store(client(), base);
    const listener = store(client(), base);
    const heard: unknown[] = [];
    await listener.subscribeControl((message) => heard.push(message));
    await publisher.pauseType('echo', { by: 'k', reason: 'r', at: 1 });
    await expect
      .poll(() => heard, { timeout: 3000 })
      .toEqual([{ kind: 'pause', type: 'echo', pause: { by: 'k', reason: 'r', at: 1 } }]);
  });

  it('answers StoreUnavailableError, quickly, when Redis cannot be reached', async () => {
    const redis = new Redis(`redis://127.0.0.1:${await freePort()}`, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    cleanups.push(async () => redis.disconnect());
    const ops = new RedisOpsStore(redis, uniqueBase(), { commandTimeoutMs: 500 });
    const started = Date.now();
    await expect(ops.pausedTypes()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(
      ops.recordFinished([{ type: 'echo', status: 'succeeded', waitMs: 1, runMs: 1, at: Date.now() }]),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(ops.history('1h', Date.now())).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(ops.takeSnapshot('abcdefghijklmnopqrstuvwx')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
