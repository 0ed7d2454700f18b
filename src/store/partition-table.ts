import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { jobIdTime, partitionInId } from '../jobs/job-id.js';
import type { NewJob } from '../jobs/job.js';
import type { RedisClient } from '../redis/redis-client.js';
import { MAX_PARTITIONS, type Idempotency } from './job-store.js';
import type { RedisKeys } from './redis-keys.js';

/**
 * Where a partitioned Redis store's jobs live: the partition table, kept in the base partition (`{<prefix>}:partitions`)
 * so every instance sharing the prefix reads the same one.
 *
 * - `tags`: every partition ever made, in order; partition 0 is `<prefix>` itself (the layout of a store of one
 *   partition). The table only grows: lowering REDIS_PARTITIONS makes new jobs use fewer, and the others are still
 *   read, claimed from and listed.
 * - `epoch`: when the table was made. A job id made from then on carries its partition (job-id.ts withPartition); an
 *   older id (made before partitions existed) is in partition 0.
 */
export interface PartitionTable {
  epoch: number;
  tags: string[];
}

/**
 * The default on a Cluster: this many partitions per master at start-up. More partitions than masters let the load
 * follow slots moved to masters added later, and spread better over uneven masters.
 */
export const PARTITIONS_PER_MASTER = 4;

// The table only grows, by compare-and-set on the tags, so two instances extending it at once agree on one table.
// Its epoch is 0 when the prefix never held a job (no id made before it can exist), else the time it is made.
const EXTEND_LUA = `
local epoch = ARGV[3]
if redis.call('EXISTS', KEYS[2]) == 0 then epoch = '0' end
if redis.call('HSETNX', KEYS[1], 'epoch', epoch) == 1 then redis.call('HSET', KEYS[1], 'tags', ARGV[1]) end
if redis.call('HGET', KEYS[1], 'tags') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'tags', ARGV[2])
return 1`;

export async function readPartitionTable(redis: RedisClient, keys: RedisKeys): Promise<PartitionTable | null> {
  const [epoch, tags] = await redis.hmget(keys.partitions, 'epoch', 'tags');
  if (epoch == null || tags == null) return null;
  return { epoch: Number(epoch), tags: JSON.parse(tags) as string[] };
}

/** The table, made or extended to at least `wanted` partitions (with tags on the Cluster's masters in turn). */
export async function ensurePartitionTable(
  redis: RedisClient,
  keys: RedisKeys,
  prefix: string,
  wanted: number,
  now: number,
): Promise<PartitionTable> {
  for (;;) {
    const stored = await readPartitionTable(redis, keys);
    const table = stored ?? { epoch: now, tags: [prefix] };
    if (stored && table.tags.length >= wanted) return table;
    const tags = [...table.tags, ...newTags(redis, prefix, table.tags, wanted)];
    await redis.eval(EXTEND_LUA, 2, keys.partitions, keys.types, JSON.stringify(table.tags), JSON.stringify(tags), now);
  }
}

/** REDIS_PARTITIONS when not set: 1 on a single Redis; PARTITIONS_PER_MASTER per master on a Cluster. */
export function defaultPartitionCount(redis: RedisClient): number {
  if (!(redis instanceof Cluster)) return 1;
  return Math.min(MAX_PARTITIONS, Math.max(1, redis.nodes('master').length) * PARTITIONS_PER_MASTER);
}

/**
 * Tags for partitions `have.length` to `count - 1`. On a Cluster, partition i's tag is chosen to hash to a slot of the
 * i-th master after the base partition's (masters in order of their first slot), so partitions spread evenly; the tag
 * is kept in the table, so a later resharding moves partitions whole and never loses one.
 */
function newTags(redis: RedisClient, prefix: string, have: string[], count: number): string[] {
  const tags: string[] = [];
  const masters = redis instanceof Cluster ? mastersBySlot(redis) : [];
  const masterOf = (tag: string): string | undefined =>
    redis instanceof Cluster ? redis.slots[calculateSlot(tag)]?.[0] : undefined;
  const first = masters.indexOf(masterOf(prefix) ?? '');
  for (let i = have.length; i < count; i++) {
    const base = `${prefix}:p${i}`;
    let tag = base;
    if (masters.length > 1 && first >= 0) {
      const wanted = masters[(first + i) % masters.length];
      // About one try in `masters.length` lands on the wanted master; 10,000 tries miss only on a broken slot map.
      for (let n = 1; n < 10_000 && masterOf(tag) !== wanted; n++) tag = `${base}.${n}`;
    }
    tags.push(tag);
  }
  return tags;
}

function mastersBySlot(cluster: Cluster): string[] {
  const firstSlot = new Map<string, number>();
  cluster.slots.forEach((nodes, slot) => {
    const master = nodes?.[0];
    if (master !== undefined && !firstSlot.has(master)) firstSlot.set(master, slot);
  });
  return [...firstSlot.keys()];
}

/**
 * The partition a job id names: 0 for an id made before the table (before partitions existed); else the one written
 * into it, which may be one this instance does not know yet (another instance added it).
 */
export function partitionOfId(id: string, table: PartitionTable): number {
  return jobIdTime(id) < table.epoch ? 0 : partitionInId(id);
}

/**
 * Which of the first `active` partitions a new job goes to. A job with a concurrency key goes where every job of its
 * tenant and key goes, so the key's cap and order are decided in one slot; one with an Idempotency-Key where its key
 * points, so two requests with the key meet in one slot; one whose result may be reused where its cache entry is;
 * any other by its tenant and (random) id.
 */
export function placeJob(job: NewJob, idempotency: Idempotency | null, active: number): number {
  if (active <= 1) return 0;
  const by = job.concurrencyKey
    ? `k\n${job.tenant}\n${job.concurrencyKey}`
    : idempotency
      ? `i\n${job.tenant}\n${idempotency.key}`
      : job.cache
        ? `c\n${job.cache.digest}`
        : `j\n${job.tenant}\n${job.id}`;
  return fnv1a(by) % active;
}

/** FNV-1a, 32 bits: a stable, well-spread hash (not a secret one: placement needs none). */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
