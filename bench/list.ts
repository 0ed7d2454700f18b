import { newJobId } from '../src/jobs/job-id.js';
import { Redis } from 'ioredis';
import { isJobId } from '../src/jobs/job-id.js';
import { JOB_FIELDS, RedisJobStore } from '../src/store/redis-job-store.js';
import { startServer, timedGets, type LatencySample } from './http.js';
import type { BenchRedis } from './redis.js';
import { JOB_TTL_MS, newJob, PAYLOAD, percentile, uniqueSuffix } from './util.js';

/** Time fields of the job hash, shifted together when a filled job is made from the template. */
const TIME_FIELDS = ['created', 'run_at', 'started', 'updated', 'completed', 'p_at', 'expires'] as const;
const FILL_CHUNK = 5000;
export interface FilledIndex {
  keyPrefix: string;
  jobs: number;
  seconds: number;
}

/**
 * Puts `count` succeeded `echo` jobs under a fresh key prefix, as fast as Redis takes them.
 *
 * One job goes through the real store (create → claim → finish succeeded, i.e. create.lua, claim.lua,
 * finish.lua); its hash is the template. Every other job is written with a pipeline that produces exactly
 * what those scripts leave behind for a finished job: the packed job value (the template's fields, with
 * its own id and every time field shifted to its own creation time) expiring at `expires`, its id in
 * `idx:succeeded:echo` (score 0) and in `expiry` (score `expires`). Left out: the `finished` per-second
 * counter hash (kept two minutes, not per job) — nothing the listing reads.
 * Ids are ULIDs (newJobId, which draws random bytes in blocks) one per millisecond going back from now, so creation order = id order, as in real life.
 */
export async function fillFinishedJobs(redis: BenchRedis, count: number): Promise<FilledIndex> {
  const started = performance.now();
  const keyPrefix = `bench-list-${uniqueSuffix()}`;
  const store = await RedisJobStore.connect({
    url: redis.url,
    keyPrefix,
    jobTtlMs: JOB_TTL_MS,
    connectTimeoutMs: 3000,
    commandTimeoutMs: 10_000,
  });
  const first = Date.now() - count; // the template is the newest job; the filled ones come before it
  const templateJob = newJob('echo', PAYLOAD);
  await store.create(templateJob);
  const [claimed] = await store.claim({
    types: ['echo'],
    max: 1,
    workerId: 'bench-fill',
    leaseId: 'bench-fill:1',
    leaseMs: 30_000,
    now: Date.now(),
  });
  if (!claimed?.lease) throw new Error('fill: the template job was not claimed');
  const finished = await store.finish(
    { jobId: claimed.id, leaseId: claimed.lease.id },
    { kind: 'succeeded', result: { value: PAYLOAD.value } },
    Date.now(),
  );
  if (finished === 'lost' || finished.status !== 'succeeded') throw new Error('fill: the template job did not succeed');
  // A finished job is one packed JSON array of its field values (see common.lua `finalize`).
  const packedTemplate = JSON.parse((await store.redis.get(store.keys.job(templateJob.id)))!) as (string | false)[];
  const at = (field: (typeof JOB_FIELDS)[number]): number => JOB_FIELDS.indexOf(field);
  const templateCreated = Number(packedTemplate[at('created')]);
  const indexKey = store.keys.index('succeeded', 'echo');
  const expiryKey = store.keys.expiry;
  if ((await store.redis.zscore(indexKey, templateJob.id)) === null)
    throw new Error(`fill: the template is not in ${indexKey}`);
  if ((await store.redis.zscore(expiryKey, templateJob.id)) === null)
    throw new Error(`fill: the template is not in ${expiryKey}`);
  const keys = store.keys;
  await store.close();

  const writer = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    for (let start = 0; start < count - 1; start += FILL_CHUNK) {
      const end = Math.min(count - 1, start + FILL_CHUNK);
      const pipeline = writer.pipeline();
      const indexArgs: (string | number)[] = [];
      const expiryArgs: (string | number)[] = [];
      const ids = Array.from({ length: end - start }, (_, n) => newJobId(first + start + n));
      if (!isJobId(ids[0]!)) throw new Error(`fill: ${ids[0]} is not a job id`);
      for (let i = start; i < end; i++) {
        const created = first + i;
        const id = ids[i - start]!;
        const shift = created - templateCreated;
        const values = [...packedTemplate];
        values[at('id')] = id;
        for (const field of TIME_FIELDS) {
          const value = values[at(field)];
          if (value !== false && value !== undefined) values[at(field)] = String(Number(value) + shift);
        }
        const key = keys.job(id);
        const expires = Number(values[at('expires')]);
        pipeline.set(key, JSON.stringify(values), 'PXAT', expires);
        indexArgs.push(0, id);
        expiryArgs.push(expires, id);
      }
      pipeline.zadd(indexKey, ...indexArgs);
      pipeline.zadd(expiryKey, ...expiryArgs);
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed) throw failed[0] as Error;
    }
  } finally {
    await writer.quit();
  }
  const indexed = await redis.admin.zcard(indexKey);
  if (indexed !== count) throw new Error(`fill: ${indexKey} holds ${indexed} ids, expected ${count}`);
  return { keyPrefix, jobs: count, seconds: (performance.now() - started) / 1000 };
}

export interface ListRun {
  small: LatencySample & { jobs: number };
  big: LatencySample & { jobs: number };
  fillSeconds: number;
  /** Operator searches over the big set: an indexed filter, and filters checked job by job (≤ 5,000 per call). */
  admin: (LatencySample & { query: string })[];
}

/** GET /admin/jobs queries timed over the big set; `bench-fill` is the worker of every filled job. */
const ADMIN_QUERIES = ['status=succeeded&type=echo&limit=20', 'worker=bench-fill&limit=20', 'worker=nobody&limit=20'];

export async function listBench(options: {
  redis: BenchRedis;
  small: number;
  big: number;
  connections: number;
  seconds: number;
  warmupS: number;
  log: (m: string) => void;
}): Promise<ListRun> {
  const small = await fillFinishedJobs(options.redis, options.small);
  options.log(`  filled ${small.jobs} finished jobs in ${small.seconds.toFixed(1)} s`);
  const big = await fillFinishedJobs(options.redis, options.big);
  options.log(`  filled ${big.jobs} finished jobs in ${big.seconds.toFixed(1)} s`);
  const servers = await Promise.all(
    [small, big].map((filled) =>
      startServer({
        BENCH_SERVER_MODE: 'app',
        BENCH_SERVER_REDIS_URL: options.redis.url,
        BENCH_SERVER_KEY_PREFIX: filled.keyPrefix,
      }),
    ),
  );
  try {
    const urls = servers.map((server) => `${server.base}/v1/jobs?limit=20`);
    const load = { connections: options.connections, maxRequests: 1_000_000 };
    for (const url of urls) await timedGets(url, { ...load, seconds: options.warmupS });
    // Two interleaved rounds (small, big, small, big), so drift in the machine hits both alike.
    const samples: LatencySample[][] = [[], []];
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < urls.length; i++)
        samples[i]!.push(await timedGets(urls[i]!, { ...load, seconds: options.seconds / 2 }));
    }
    const pooled = [small, big].map((filled, i) => {
      const parts = samples[i]!;
      const latencies = parts.flatMap((part) => part.latencies);
      const sample: LatencySample & { jobs: number } = {
        jobs: filled.jobs,
        requests: latencies.length,
        errors: parts.reduce((sum, part) => sum + part.errors, 0),
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        pageSize: Math.min(...parts.map((part) => part.pageSize)),
        latencies: [],
      };
      options.log(
        `  GET /v1/jobs?limit=20 over ${filled.jobs} jobs: p50 ${sample.p50.toFixed(2)} ms, p99 ${sample.p99.toFixed(2)} ms, ` +
          `${sample.requests} requests, ${sample.errors} errors, page of ${sample.pageSize}`,
      );
      return sample;
    });
    const admin: ListRun['admin'] = [];
    for (const query of ADMIN_QUERIES) {
      const url = `${servers[1]!.base}/admin/jobs?${query}`;
      await timedGets(url, { ...load, seconds: 1 });
      const sample = await timedGets(url, { ...load, seconds: options.seconds / 2 });
      options.log(
        `  GET /admin/jobs?${query} over ${big.jobs} jobs: p50 ${sample.p50.toFixed(2)} ms, p99 ${sample.p99.toFixed(2)} ms, ${sample.requests} requests, ${sample.errors} errors, page of ${sample.pageSize}`,
      );
      admin.push({ ...sample, latencies: [], query });
    }
    return { small: pooled[0]!, big: pooled[1]!, fillSeconds: small.seconds + big.seconds, admin };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}
