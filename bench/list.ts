import { Redis } from 'ioredis';
import { isJobId, newJobId, partitionInId, withPartition } from '../src/jobs/job-id.js';
import { JOB_FIELDS, RedisJobStore } from '../src/store/redis-job-store.js';
import type { RedisKeys } from '../src/store/redis-keys.js';
import { startServer, timedGets, type LatencySample } from './http.js';
import type { BenchRedis } from './redis.js';
import { JOB_TTL_MS, newJob, PAYLOAD, percentile, uniqueSuffix } from './util.js';

/** Time fields of the job hash, shifted together when a filled job is made from the template. */
const TIME_FIELDS = ['created', 'run_at', 'started', 'updated', 'completed', 'p_at', 'expires'] as const;
const FILL_CHUNK = 5000;
export interface FilledIndex {
  keyPrefix: string;
  jobs: number;
  /** The partitions the jobs are spread over (REDIS_PARTITIONS of the store that made the prefix). */
  partitions: number;
  seconds: number;
}

/**
 * Puts `count` succeeded `echo` jobs under a fresh key prefix, as fast as Redis takes them, spread evenly over
 * `partitions` partitions (the store's REDIS_PARTITIONS; 1 is the layout of a single Redis by default).
 *
 * The store is connected first, on the fresh prefix: that makes the partition table, with epoch 0 (the prefix never
 * held a job), so every id made afterwards, back-dated or not, is read from the partition written into it
 * (partition-table.ts partitionOfId; with a later epoch, back-dated ids would all be looked for in partition 0).
 * One job goes through the real store (create → claim → finish succeeded, i.e. create.lua, claim.lua,
 * finish.lua); its hash is the template. Every other job is written with a pipeline that produces exactly
 * what those scripts leave behind for a finished job, in the keys of its own partition (job i: partition i mod
 * `partitions`, written into its id with withPartition, as the store does): the packed job value (the template's
 * fields, with its own id and every time field shifted to its own creation time) expiring at `expires`, its id in
 * `idx:succeeded:echo` (score 0) and in `expiry` (score `expires`), and `echo` in the partition's `types` (create.lua
 * adds it in the template's partition; listing reads each partition's). Left out: the `finished` per-second
 * counter hash (kept two minutes, not per job) — nothing the listing reads.
 * Ids are ULIDs (newJobId, which draws random bytes in blocks) one per millisecond going back from now, so creation order = id order, as in real life.
 */
export async function fillFinishedJobs(redis: BenchRedis, count: number, partitions = 1): Promise<FilledIndex> {
  const started = performance.now();
  const keyPrefix = `bench-list-${uniqueSuffix()}`;
  const store = await RedisJobStore.connect({
    url: redis.url,
    keyPrefix,
    jobTtlMs: JOB_TTL_MS,
    connectTimeoutMs: 3000,
    commandTimeoutMs: 10_000,
    partitions,
  });
  let template: { id: string; packed: (string | false)[] };
  let keysByPartition: RedisKeys[];
  try {
    if (store.partitionCount !== partitions)
      throw new Error(`fill: the store has ${store.partitionCount} partitions, expected ${partitions}`);
    const templateJob = newJob('echo', PAYLOAD);
    // The store writes the partition it placed the job in into the id: the template's id is the created record's.
    const created = await store.create(templateJob);
    const [claimed] = await store.claim({
      types: ['echo'],
      max: 1,
      workerId: 'bench-fill',
      leaseId: 'bench-fill:1',
      leaseMs: 30_000,
      now: Date.now(),
    });
    if (!claimed?.lease || claimed.id !== created.id) throw new Error('fill: the template job was not claimed');
    const finished = await store.finish(
      { jobId: claimed.id, leaseId: claimed.lease.id },
      { kind: 'succeeded', result: { value: PAYLOAD.value } },
      Date.now(),
    );
    if (finished === 'lost' || finished.status !== 'succeeded')
      throw new Error('fill: the template job did not succeed');
    // Each partition's keys, as the store reads them for an id naming that partition.
    keysByPartition = Array.from({ length: partitions }, (_, p) => store.keysOf(withPartition(created.id, p)));
    if (new Set(keysByPartition.map((keys) => keys.base)).size !== partitions)
      throw new Error('fill: ids naming different partitions are read from the same keys (partition table epoch?)');
    const templateKeys = store.keysOf(created.id);
    if (templateKeys.base !== keysByPartition[partitionInId(created.id)]?.base)
      throw new Error(`fill: the template ${created.id} is not read from the partition its id names`);
    // A finished job is one packed JSON array of its field values (see common.lua `finalize`).
    const packed = await store.redis.get(templateKeys.job(created.id));
    if (packed === null) throw new Error(`fill: no ${templateKeys.job(created.id)}`);
    template = { id: created.id, packed: JSON.parse(packed) as (string | false)[] };
    for (const [key, name] of [
      [templateKeys.index('succeeded', 'echo'), 'index'],
      [templateKeys.expiry, 'expiry'],
    ] as const) {
      if ((await store.redis.zscore(key, created.id)) === null)
        throw new Error(`fill: the template is not in ${name} ${key}`);
    }
  } finally {
    await store.close();
  }

  const at = (field: (typeof JOB_FIELDS)[number]): number => JOB_FIELDS.indexOf(field);
  const templateCreated = Number(template.packed[at('created')]);
  const first = templateCreated - count; // the template is the newest job; the filled ones come before it
  const writer = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    const setup = writer.pipeline();
    for (const keys of keysByPartition) setup.sadd(keys.types, 'echo');
    await setup.exec();
    for (let start = 0; start < count - 1; start += FILL_CHUNK) {
      const end = Math.min(count - 1, start + FILL_CHUNK);
      const pipeline = writer.pipeline();
      const indexArgs = keysByPartition.map((): (string | number)[] => []);
      const expiryArgs = keysByPartition.map((): (string | number)[] => []);
      const ids = Array.from({ length: end - start }, (_, n) =>
        withPartition(newJobId(first + start + n), (start + n) % partitions),
      );
      if (!isJobId(ids[0]!)) throw new Error(`fill: ${ids[0]} is not a job id`);
      for (let i = start; i < end; i++) {
        const created = first + i;
        const id = ids[i - start]!;
        const partition = i % partitions;
        const shift = created - templateCreated;
        const values = [...template.packed];
        values[at('id')] = id;
        for (const field of TIME_FIELDS) {
          const value = values[at(field)];
          if (value !== false && value !== undefined) values[at(field)] = String(Number(value) + shift);
        }
        const expires = Number(values[at('expires')]);
        pipeline.set(keysByPartition[partition]!.job(id), JSON.stringify(values), 'PXAT', expires);
        indexArgs[partition]!.push(0, id);
        expiryArgs[partition]!.push(expires, id);
      }
      keysByPartition.forEach((keys, p) => {
        if (indexArgs[p]!.length === 0) return;
        pipeline.zadd(keys.index('succeeded', 'echo'), ...indexArgs[p]!);
        pipeline.zadd(keys.expiry, ...expiryArgs[p]!);
      });
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed) throw failed[0] as Error;
    }
  } finally {
    await writer.quit();
  }
  const perPartition = await Promise.all(
    keysByPartition.map((keys) => redis.admin.zcard(keys.index('succeeded', 'echo'))),
  );
  const indexed = perPartition.reduce((sum, n) => sum + n, 0);
  if (indexed !== count || perPartition.some((n) => Math.abs(n - count / partitions) > 2))
    throw new Error(`fill: the partitions' indexes hold ${perPartition.join(' + ')} ids, expected ${count} evenly`);
  return { keyPrefix, jobs: count, partitions, seconds: (performance.now() - started) / 1000 };
}

export type ListSample = LatencySample & { jobs: number; partitions: number };

export interface ListRun {
  small: ListSample;
  big: ListSample;
  /** The big set again, spread over `partitioned.partitions` partitions (absent when BENCH_LIST_PARTITIONS ≤ 1). */
  partitioned?: ListSample;
  fillSeconds: number;
  /** Operator searches over the big set: an indexed filter, and filters checked job by job (≤ 5,000 per call). */
  admin: (LatencySample & { query: string })[];
  /** The indexed operator search over the partitioned big set. */
  partitionedAdmin?: LatencySample & { query: string };
}

/** GET /admin/jobs queries timed over the big set; `bench-fill` is the worker of every filled job. */
const ADMIN_QUERIES = ['status=succeeded&type=echo&limit=20', 'worker=bench-fill&limit=20', 'worker=nobody&limit=20'];
/** The one timed over the partitioned big set too. */
const PARTITIONED_ADMIN_QUERY = ADMIN_QUERIES[0]!;

/**
 * Checks the server of a partitioned set lists it merged: the first page is the newest `limit` jobs of every
 * partition, in descending id order, with ids naming each partition (jobs were filled round-robin).
 */
async function checkMergedPage(base: string, partitions: number): Promise<void> {
  const response = await fetch(`${base}/v1/jobs?limit=20`);
  if (!response.ok) throw new Error(`list: GET /v1/jobs answered ${response.status}`);
  const ids = ((await response.json()) as { data: { id: string }[] }).data.map((job) => job.id);
  const named = new Set(ids.map(partitionInId));
  const descending = ids.every((id, i) => i === 0 || ids[i - 1]! > id);
  if (ids.length !== 20 || named.size !== partitions || !descending)
    throw new Error(
      `list: the page of the ${partitions}-partition set is not a merge of its partitions (${ids.length} ids, naming partitions ${[...named].join(',')})`,
    );
}

function pool(filled: FilledIndex, parts: LatencySample[]): ListSample {
  const latencies = parts.flatMap((part) => part.latencies);
  return {
    jobs: filled.jobs,
    partitions: filled.partitions,
    requests: latencies.length,
    errors: parts.reduce((sum, part) => sum + part.errors, 0),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    pageSize: Math.min(...parts.map((part) => part.pageSize)),
    latencies: [],
  };
}

export async function listBench(options: {
  redis: BenchRedis;
  small: number;
  big: number;
  /** Partitions of the second big set (≤ 1: no second big set). */
  partitions: number;
  connections: number;
  seconds: number;
  warmupS: number;
  log: (m: string) => void;
}): Promise<ListRun> {
  const sets: FilledIndex[] = [];
  for (const [jobs, partitions] of [
    [options.small, 1],
    [options.big, 1],
    ...(options.partitions > 1 ? [[options.big, options.partitions]] : []),
  ] as const) {
    const filled = await fillFinishedJobs(options.redis, jobs, partitions);
    options.log(
      `  filled ${filled.jobs} finished jobs over ${filled.partitions} partition(s) in ${filled.seconds.toFixed(1)} s`,
    );
    sets.push(filled);
  }
  // The server's store adopts the prefix's partition table as it finds it (the table only grows: a store asking for
  // fewer partitions reads and lists them all), so every server runs with the default REDIS_PARTITIONS.
  const servers = await Promise.all(
    sets.map((filled) =>
      startServer({
        BENCH_SERVER_MODE: 'app',
        BENCH_SERVER_REDIS_URL: options.redis.url,
        BENCH_SERVER_KEY_PREFIX: filled.keyPrefix,
      }),
    ),
  );
  try {
    for (let i = 0; i < sets.length; i++) {
      if (sets[i]!.partitions > 1) await checkMergedPage(servers[i]!.base, sets[i]!.partitions);
    }
    const urls = servers.map((server) => `${server.base}/v1/jobs?limit=20`);
    const load = { connections: options.connections, maxRequests: 1_000_000 };
    for (const url of urls) await timedGets(url, { ...load, seconds: options.warmupS });
    // Two interleaved rounds, the second in reverse order (small, big, partitioned; partitioned, big, small),
    // so drift in the machine hits every set alike.
    const samples: LatencySample[][] = sets.map(() => []);
    for (let round = 0; round < 2; round++) {
      const order = sets.map((_, i) => i);
      if (round === 1) order.reverse();
      for (const i of order) samples[i]!.push(await timedGets(urls[i]!, { ...load, seconds: options.seconds / 2 }));
    }
    const pooled = sets.map((filled, i) => {
      const sample = pool(filled, samples[i]!);
      options.log(
        `  GET /v1/jobs?limit=20 over ${filled.jobs} jobs in ${filled.partitions} partition(s): p50 ${sample.p50.toFixed(2)} ms, p99 ${sample.p99.toFixed(2)} ms, ` +
          `${sample.requests} requests, ${sample.errors} errors, page of ${sample.pageSize}`,
      );
      return sample;
    });
    const search = async (server: number, query: string) => {
      const url = `${servers[server]!.base}/admin/jobs?${query}`;
      await timedGets(url, { ...load, seconds: 1 });
      const sample = await timedGets(url, { ...load, seconds: options.seconds / 2 });
      const filled = sets[server]!;
      options.log(
        `  GET /admin/jobs?${query} over ${filled.jobs} jobs in ${filled.partitions} partition(s): p50 ${sample.p50.toFixed(2)} ms, p99 ${sample.p99.toFixed(2)} ms, ${sample.requests} requests, ${sample.errors} errors, page of ${sample.pageSize}`,
      );
      return { ...sample, latencies: [], query };
    };
    const admin: ListRun['admin'] = [];
    for (const query of ADMIN_QUERIES) admin.push(await search(1, query));
    const partitionedAdmin = sets.length > 2 ? await search(2, PARTITIONED_ADMIN_QUERY) : undefined;
    return {
      small: pooled[0]!,
      big: pooled[1]!,
      ...(pooled[2] ? { partitioned: pooled[2] } : {}),
      fillSeconds: sets.reduce((sum, filled) => sum + filled.seconds, 0),
      admin,
      ...(partitionedAdmin ? { partitionedAdmin } : {}),
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}
