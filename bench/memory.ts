import { bullThroughput, BULL_PREFIX, connectOurStore, oursThroughput } from './engine.js';
import { resetRedis, usedMemory, type BenchRedis } from './redis.js';
import { sleep } from './util.js';

export interface MemoryRun {
  jobs: number;
  bytesPerJob: number;
  /** MEMORY USAGE and OBJECT ENCODING of one finished job's key (ours: a packed string; BullMQ: a hash). */
  oneJobBytes: number | null;
  oneJobEncoding: string | null;
  /** Kind of key (the key name with ids and the prefix taken out) → MEMORY USAGE summed, over N; biggest first. */
  keyBreakdown: [string, number][];
}

/** Sums MEMORY USAGE per kind of key under `pattern`: `kindOf` maps a key name to its kind. */
async function keyBreakdown(
  redis: BenchRedis,
  pattern: string,
  kindOf: (key: string) => string,
  jobs: number,
): Promise<[string, number][]> {
  const totals = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    const pipeline = redis.admin.pipeline();
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const bytes = Number(replies[i]?.[1] ?? 0);
      totals.set(kindOf(key), (totals.get(kindOf(key)) ?? 0) + bytes);
    });
  } while (cursor !== '0');
  return [...totals]
    .map(([kind, bytes]): [string, number] => [kind, bytes / jobs])
    .sort((a, b) => b[1] - a[1])
    .filter(([, bytes]) => bytes >= 1);
}

async function oneKey(redis: BenchRedis, pattern: string): Promise<{ bytes: number | null; encoding: string | null }> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.admin.type(key);
      if (type !== 'hash' && type !== 'string') continue; // ours: a finished job is one packed string
      const bytes = (await redis.admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null;
      const encoding = (await redis.admin.call('OBJECT', 'ENCODING', key)) as string | null;
      return { bytes, encoding };
    }
  } while (cursor !== '0');
  return { bytes: null, encoding: null };
}

/** used_memory after N finished jobs of ours (fresh prefix, pool of 10), minus before, over N. */
export async function oursMemory(redis: BenchRedis, jobs: number, timeoutMs: number): Promise<MemoryRun> {
  await resetRedis(redis);
  await sleep(200);
  const before = await usedMemory(redis.admin);
  const store = await connectOurStore(redis, 'mem');
  const prefix = store.keys.base;
  const run = await oursThroughput({ store, concurrency: 10, jobs, timeoutMs });
  await store.close();
  await sleep(200);
  const after = await usedMemory(redis.admin);
  const one = await oneKey(redis, `${prefix}job:*`);
  const kinds = await keyBreakdown(
    redis,
    `${prefix}*`,
    (key) => (key.startsWith(`${prefix}job:`) ? 'job keys' : key.slice(prefix.length)),
    run.completed,
  );
  return {
    jobs: run.completed,
    bytesPerJob: (after - before) / run.completed,
    oneJobBytes: one.bytes,
    oneJobEncoding: one.encoding,
    keyBreakdown: kinds,
  };
}

/** The same for BullMQ with default options (completed jobs are kept with their return value). */
export async function bullMemory(redis: BenchRedis, jobs: number, timeoutMs: number): Promise<MemoryRun> {
  await resetRedis(redis);
  await sleep(200);
  const before = await usedMemory(redis.admin);
  const run = await bullThroughput({ redis, concurrency: 10, jobs, timeoutMs });
  await sleep(200);
  const after = await usedMemory(redis.admin);
  const one = await oneKey(redis, `${BULL_PREFIX}:*:1`);
  const kinds = await keyBreakdown(
    redis,
    `${BULL_PREFIX}:*`,
    (key) => {
      const last = key.split(':').slice(2).join(':');
      return /^\d+$/.test(last) ? 'job hashes' : last.replace(/^\d+:/, '<id>:');
    },
    run.completed,
  );
  return {
    jobs: run.completed,
    bytesPerJob: (after - before) / run.completed,
    oneJobBytes: one.bytes,
    oneJobEncoding: one.encoding,
    keyBreakdown: kinds,
  };
}
