import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Cluster } from 'ioredis';
import {
  ANONYMOUS_TENANT,
  JobStatus,
  jobStatuses,
  leaseExpiredError,
  terminalStatusList,
  isTerminal,
  type AttemptRecord,
  type JobError,
  type JobLogLine,
  type JobRecord,
  type JobWebhook,
  type NewJob,
  type WebhookDeliveryState,
  type WebhookEvent,
} from '../jobs/job.js';
import { highestIdAt, jobIdTime, lowestIdAt } from '../jobs/job-id.js';
import type {
  AttemptOutcome,
  ClaimLimit,
  ClaimRequest,
  CreateOptions,
  FinishAndClaimResult,
  FinishRequest,
  FinishResult,
  HeldLease,
  Idempotency,
  JobStore,
  ListPage,
  ListQuery,
  ProgressUpdate,
  RenewResult,
  StoreStats,
  WebhookDelivery,
} from './job-store.js';
import { guardRedis, type RedisClient, type RedisConnectionOptions } from '../redis/redis-client.js';
import { RedisKeys } from './redis-keys.js';
import {
  DEFAULT_POISON_AFTER,
  LOG_LINES_MAX,
  poisonError,
  TooManyActiveJobsError,
  topTenants,
  WEBHOOK_PROGRESS_INTERVAL_MS,
} from './job-store.js';

/**
 * A job's fields (absent = null). An active job is a hash of them; a finished one is packed into one JSON
 * array of their values in this order (`false` where absent), which spares Redis the field names.
 *   input, meta, result, error: JSON   created … expires, p_at, lease_until: epoch ms   timeout: s   cancel: '1'
 *   wh: the webhook {url, events} (JSON)   wh_st: the last delivery's state (JSON)
 *   cached_from: the job whose result it reuses   cache: '<cache key> <ttl ms>' on a job whose result others may reuse
 *   atts: the ended attempts (JSON array of AttemptRecord)   lg: '1' when its handler logged (its lines then expire with it)
 *   ckey: the concurrency key   sid, sfor: the schedule that made it and the fire time (ms)
 * Active jobs also have `lapses` (how many of its leases lapsed: POISON_AFTER), `wh_p` and `fk` ('1': the type was
 * fair_by key at submit, so its keys take turns in the fair queue), none of them packed.
 */
export const JOB_FIELDS = [
  'id',
  'type',
  'tenant',
  'status',
  'input',
  'meta',
  'prio',
  'attempt',
  'max_att',
  'budget',
  'timeout',
  'ver',
  'created',
  'run_at',
  'started',
  'updated',
  'completed',
  'expires',
  'pct',
  'step',
  'msg',
  'p_at',
  'result',
  'error',
  'lease',
  'lease_until',
  'worker',
  'cancel',
  'wh',
  'wh_st',
  'cached_from',
  'cache',
  'atts',
  'lg',
  'ckey',
  'sid',
  'sfor',
] as const;

const packedFieldsLua = `local PACKED_FIELDS = { ${JOB_FIELDS.map((field) => `'${field}'`).join(', ')} }
local PACKED_INDEX = { ${JOB_FIELDS.map((field, i) => `${field} = ${i + 1}`).join(', ')} }
`;
const scriptNames = [
  'create',
  'claim',
  'renew',
  'progress',
  'finish',
  'finish_claim',
  'cancel',
  'delete',
  'retry',
  'purge',
  'sweep',
  'webhook_claim',
  'webhook_settle',
  'append_logs',
  'run_now',
  'import',
  'read',
  'adopt_ready',
  'active_jobs',
  'limit_grant',
  'limit_confirm',
  'limit_renew',
  'limit_release',
] as const;
type ScriptName = (typeof scriptNames)[number];
/** The worker's batched calls: each already carries many jobs, so they skip ioredis's auto-pipeline. */
const workerScripts: readonly ScriptName[] = ['claim', 'finish_claim', 'finish', 'renew', 'progress'];
const commandOf = (name: ScriptName): string => `ajs_${name}`;

const luaDir = new URL('./lua/', import.meta.url);
/** Helper functions every script gets: shared state-change steps, then the claim and finish logic. */
const luaFile = (file: string): string => readFileSync(new URL(file, luaDir), 'utf8');
const luaFairQueue = luaFile('fair-queue.lua');
const luaCommon = luaFile('common.lua');
const luaClaimLib = luaFile('claim-lib.lua');
const luaFinishLib = luaFile('finish-lib.lua');
/** The fleet-wide limits' scripts (used by RedisJobStore across partitions) touch no job. */
const limitScripts: readonly ScriptName[] = ['limit_grant', 'limit_confirm', 'limit_renew', 'limit_release'];
/** Defining functions costs every call: each script gets only the library parts it uses. */
const luaLibraryFor = (name: ScriptName): string =>
  limitScripts.includes(name)
    ? ''
    : [
        luaFairQueue,
        luaCommon,
        ...(name === 'claim' || name === 'finish_claim' ? [luaClaimLib] : []),
        ...(name === 'finish' || name === 'finish_claim' ? [luaFinishLib] : []),
      ].join('\n');
const luaBodies = Object.fromEntries(
  scriptNames.map((name) => [name, readFileSync(new URL(`${name}.lua`, luaDir), 'utf8')]),
) as Record<ScriptName, string>;

const LIST_REFILL_ROUNDS = 5;
/** Most candidates read per round when a listing filters job by job (ListQuery.match). */
const SCAN_BATCH = 500;
/** Marks a deflated JSON field: stored JSON never starts with `~`. */
const COMPRESSED_MARK = '~z:';
const SWEEP_BATCH = 500;
const PURGE_BATCH = 500;

export interface RedisPartitionOptions extends RedisConnectionOptions {
  keyPrefix: string;
  jobTtlMs: number;
  /** JSON inputs and results at least this long are stored deflated (default 16 KiB). */
  compressThresholdBytes?: number;
  sweepIntervalMs?: number;
  /** A job whose lease lapsed this many times fails as poison (default 3; 0 = never). */
  poisonAfter?: number;
}

type ScriptCaller = (keys: string[], args: (string | number)[]) => Promise<unknown>;
export type JobScripts = Record<ScriptName, ScriptCaller>;

/** The commands worker calls send unpipelined (see RedisConnectionOptions.unpipelinedCommands). */
export const unpipelinedScriptCommands = workerScripts.map(commandOf);

/**
 * Defines the job scripts on a client, once: one script text serves every partition (each reads its keys' base from
 * its first key, redis-keys.ts).
 */
export function defineJobScripts(redis: RedisClient): JobScripts {
  // On a Cluster a plain PUBLISH is copied to every node over the cluster bus (2 extra messages per job change on 3
  // masters, measured): a partition's channels are sharded (SPUBLISH, Redis 7), heard only on the partition's master.
  const publishCommand = redis instanceof Cluster ? 'SPUBLISH' : 'PUBLISH';
  const header = `${RedisKeys.luaKeyHelpers()}\nlocal PUBLISH_COMMAND = '${publishCommand}'\n${packedFieldsLua}\n`;
  const scripts = {} as JobScripts;
  for (const name of scriptNames) {
    const command = commandOf(name);
    // `read` is a plain read: it needs neither the library nor the field tables, which cost every call.
    const lua = name === 'read' ? luaBodies[name] : `${header}${luaLibraryFor(name)}\n${luaBodies[name]}`;
    redis.defineCommand(command, { numberOfKeys: 1, lua });
    const call = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[
      command
    ]!.bind(redis);
    scripts[name] = (keys, args) => call(...keys, ...args);
  }
  return scripts;
}

/**
 * A claim sent to one partition: with `grants`, a type takes at most that many jobs in this call (what the fleet-wide
 * limits granted it, fleet-limits.ts) and its limits are not checked again in the partition.
 */
export interface PartitionClaim extends ClaimRequest {
  grants?: Record<string, number>;
}

/** Where a listing reads from: ids in listing order after a cursor, and the jobs of ids (undefined: gone). */
export interface ListSource {
  candidates(after: string | undefined, want: number): Promise<string[]>;
  read(ids: string[]): Promise<(JobRecord | undefined)[]>;
}

const listedStatuses = (query: ListQuery): readonly JobStatus[] =>
  query.statuses && query.statuses.length > 0 ? query.statuses : jobStatuses;

/** Ids once each, in the listing's order (ids order jobs by creation, in every partition alike). */
export function inListingOrder(ids: string[], order: ListQuery['order']): string[] {
  const sorted = [...new Set(ids)].sort();
  return order === 'desc' ? sorted.reverse() : sorted;
}

/**
 * The page `query` asks for from `source`: the one rule of a listing, whether its ids come from one partition or are
 * merged from several (RedisJobStore).
 */
export async function listPage(query: ListQuery, source: ListSource): Promise<ListPage> {
  const statuses = listedStatuses(query);
  const jobs: JobRecord[] = [];
  let after = query.after;
  let scanned = 0;
  const rounds = query.match ? Number.POSITIVE_INFINITY : LIST_REFILL_ROUNDS;
  for (let round = 0; round < rounds; round++) {
    // A filter checked job by job may skip most candidates: the batches grow (a page's worth, then doubling up
    // to SCAN_BATCH), so a common match answers from the first and a rare one takes few round trips.
    const want = query.match ? Math.min(SCAN_BATCH, (query.limit + 1) * 2 ** round) : query.limit - jobs.length + 1;
    const candidates = await source.candidates(after, want);
    if (candidates.length === 0) return { jobs, nextAfter: null };
    const records = await source.read(candidates);
    for (const record of records) {
      if (!record) continue; // expired or deleted between index read and fetch; the sweeper drops the entry
      if (!statuses.includes(record.status)) continue; // moved to another status meanwhile
      if (query.tenant !== undefined && record.tenant !== query.tenant) continue;
      if (query.match && !query.match(record)) continue;
      if (jobs.length === query.limit) return { jobs, nextAfter: jobs[jobs.length - 1]!.id };
      jobs.push(record);
    }
    if (candidates.length < want) return { jobs, nextAfter: null };
    after = candidates[candidates.length - 1];
    scanned += candidates.length;
    if (query.match && scanned >= (query.scanLimit ?? 5000)) return { jobs, nextAfter: after ?? null };
  }
  return { jobs, nextAfter: jobs.length > 0 ? jobs[jobs.length - 1]!.id : (after ?? null) };
}

/**
 * The jobs of one partition: every key under one hash tag, so each state change is one atomic script in one Redis
 * Cluster slot. RedisJobStore (redis-job-store.ts) places jobs in partitions and merges what spans them; a store of
 * one partition is today's layout. Pub/sub is the RedisJobStore's: a partition only publishes.
 */
export class RedisPartition {
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly redis: RedisClient,
    readonly keys: RedisKeys,
    private readonly options: RedisPartitionOptions,
    private readonly scripts: JobScripts,
  ) {
    this.sweepTimer = setInterval(() => {
      this.sweep(Date.now()).catch(() => undefined); // an outage is reported by /health; the next sweep catches up
    }, options.sweepIntervalMs ?? 10_000);
    this.sweepTimer.unref();
  }

  /** Ready jobs stored before the fair queue (an upgrade) move into it: nothing queued is left behind. */
  async adoptLegacyReadyJobs(): Promise<void> {
    while (Number(await this.call('adopt_ready', [this.keys.types], [1000])) > 0);
  }

  /** The tenant's queued and running jobs here (what create.lua counts against a tenant's active limit). */
  async activeJobsOf(tenant: string): Promise<number> {
    return Number(await this.call('active_jobs', [this.keys.types], [tenant]));
  }

  async runningWithKey(type: string, tenant: string, key: string): Promise<number> {
    const running = await this.guard(() => this.redis.hget(this.keys.keyRunning(type), `${tenant}\n${key}`));
    return Number(running ?? 0);
  }

  async create(job: NewJob, options: CreateOptions = {}): Promise<JobRecord> {
    const [outcome, fields] = (await this.call(
      'create',
      [this.keys.job(job.id)],
      this.createArgs(job, null, options),
    )) as [string, string[]?];
    if (outcome === 'too-many-active') throw new TooManyActiveJobsError(options.maxActive!);
    if (outcome === 'reused') return parseJob(pairsToHash(fields!));
    return newRecord(job);
  }

  async createOnce(
    job: NewJob,
    idempotency: Idempotency,
    options: CreateOptions = {},
  ): Promise<{ job: JobRecord; replayed: boolean } | 'key-reused'> {
    const [outcome, fields] = (await this.call(
      'create',
      [this.keys.job(job.id)],
      this.createArgs(job, idempotency, options),
    )) as [string, string[]?];
    if (outcome === 'key-reused') return 'key-reused';
    if (outcome === 'too-many-active') throw new TooManyActiveJobsError(options.maxActive!);
    if (outcome === 'replayed') return { job: parseJob(pairsToHash(fields!)), replayed: true };
    if (outcome === 'reused') return { job: parseJob(pairsToHash(fields!)), replayed: false };
    return { job: newRecord(job), replayed: false };
  }

  async findByIdempotencyKey(tenant: string, key: string): Promise<JobRecord | undefined> {
    const entry = await this.guard(() => this.redis.get(this.keys.idempotency(tenant, sha256(key))));
    return entry === null ? undefined : this.get(entry.slice(0, entry.indexOf(' ')));
  }

  private createArgs(job: NewJob, idempotency: Idempotency | null, options: CreateOptions): (string | number)[] {
    const fields: (string | number)[] = [
      'id',
      job.id,
      'type',
      job.type,
      'tenant',
      job.tenant,
      'status',
      'queued',
      'input',
      this.pack(job.input),
      'prio',
      job.priority,
      'attempt',
      0,
      'max_att',
      job.maxAttempts,
      'budget',
      job.maxAttempts,
      'ver',
      1,
      'created',
      job.createdAt,
      'run_at',
      job.runAt,
      'updated',
      job.createdAt,
    ];
    if (Object.keys(job.metadata).length > 0) fields.push('meta', JSON.stringify(job.metadata));
    if (job.timeoutS !== null) fields.push('timeout', job.timeoutS);
    if (job.webhook) fields.push('wh', JSON.stringify(job.webhook));
    if (job.concurrencyKey) fields.push('ckey', job.concurrencyKey);
    if (job.scheduleId) fields.push('sid', job.scheduleId, 'sfor', job.scheduledFor ?? job.runAt);
    if (job.fairByKey) fields.push('fk', '1');
    const idempotencyArgs = idempotency
      ? [this.keys.idempotency(job.tenant, sha256(idempotency.key)), idempotency.fingerprint, idempotency.ttlMs]
      : ['', '', 0];
    const cacheArgs = job.cache ? [this.keys.cache(job.cache.digest), job.cache.mode, job.cache.ttlMs] : ['', '', 0];
    return [
      job.id,
      job.type,
      job.priority,
      job.runAt,
      job.createdAt,
      ...idempotencyArgs,
      options.maxActive ?? 0,
      job.tenant,
      ...cacheArgs,
      this.options.jobTtlMs,
      job.concurrencyKey ?? '',
      ...fields,
    ];
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const hash = await this.guard(() => this.readFields(id));
    return liveRecord(hash, Date.now());
  }

  async goneAt(id: string, tenant?: string): Promise<number | null> {
    const [tombstone, fields] = await this.guard(() =>
      Promise.all([this.redis.get(this.keys.gone(id)), this.readFields(id)]),
    );
    let at: number | null = null;
    let owner: string | undefined;
    if (tombstone !== null) {
      const colon = tombstone.indexOf(':');
      at = Number(colon < 0 ? tombstone : tombstone.slice(0, colon));
      owner = colon < 0 ? undefined : tombstone.slice(colon + 1);
    } else if (fields.expires !== undefined && Number(fields.expires) <= Date.now()) {
      at = Number(fields.expires); // expired, but the sweeper has not been by yet
      owner = fields.tenant;
    }
    return at !== null && (tenant === undefined || owner === undefined || owner === tenant) ? at : null;
  }

  async list(query: ListQuery): Promise<ListPage> {
    if (query.stuckAt !== undefined) return this.listStuck(query, query.stuckAt);
    return listPage(query, await this.listSource(query));
  }

  /** This partition's listing indexes for `query`, as a ListSource (RedisJobStore merges several). */
  async listSource(query: ListQuery): Promise<ListSource> {
    const statuses = listedStatuses(query);
    const types =
      query.type !== undefined ? [query.type] : await this.guard(() => this.redis.smembers(this.keys.types));
    const tenant = query.tenant !== undefined && query.tenant !== ANONYMOUS_TENANT ? query.tenant : undefined;
    // The open tenant has no indexes of its own: in open mode every job is its job.
    const indexKeys = statuses.flatMap((status) =>
      types.map((type) =>
        tenant !== undefined ? this.keys.tenantIndex(tenant, status, type) : this.keys.index(status, type),
      ),
    );
    const descending = query.order === 'desc';
    const low = query.createdAfter !== undefined ? `[${lowestIdAt(query.createdAfter + 1)}` : '-';
    const high = query.createdBefore !== undefined ? `[${highestIdAt(query.createdBefore - 1)}` : '+';
    return {
      candidates: async (after, want) => {
        const start = after !== undefined ? `(${after}` : descending ? high : low;
        const pages = await this.guard(() =>
          Promise.all(
            indexKeys.map((key) =>
              descending
                ? this.redis.zrevrangebylex(key, start, low, 'LIMIT', 0, want)
                : this.redis.zrangebylex(key, start, high, 'LIMIT', 0, want),
            ),
          ),
        );
        return inListingOrder(pages.flat(), query.order).slice(0, want);
      },
      read: async (ids) => {
        const hashes = await this.guard(() => Promise.all(ids.map((id) => this.readFields(id))));
        const now = Date.now();
        return hashes.map((hash) => liveRecord(hash, now));
      },
    };
  }

  async cancel(id: string, now: number): ReturnType<JobStore['cancel']> {
    const reply = await this.call('cancel', [this.keys.job(id)], [id, now, this.options.jobTtlMs]);
    if (!Array.isArray(reply)) return undefined;
    const [outcome, hash] = reply as ['canceled' | 'cancel-requested' | 'unchanged', string[]];
    return { outcome, job: parseJob(pairsToHash(hash)) };
  }

  async delete(id: string): Promise<boolean> {
    return (await this.call('delete', [this.keys.job(id)], [id, Date.now(), this.options.jobTtlMs])) === 1;
  }

  async retry(id: string, now: number): ReturnType<JobStore['retry']> {
    const reply = await this.call('retry', [this.keys.job(id)], [id, now]);
    if (reply === 'not-retryable') return 'not-retryable';
    return Array.isArray(reply) ? parseJob(pairsToHash(reply as string[])) : undefined;
  }

  async purge(statuses: JobStatus[], completedBefore: number): Promise<number> {
    const terminal = statuses.filter((status) => terminalStatusList.includes(status));
    if (terminal.length === 0) return 0;
    const types = await this.guard(() => this.redis.smembers(this.keys.types));
    // A job that completed before the cutoff was created before it too, so only that id range is read.
    const highest = `[${highestIdAt(completedBefore)}`;
    let deleted = 0;
    for (const status of terminal) {
      for (const type of types) {
        let start = '-';
        for (;;) {
          const ids = await this.guard(() =>
            this.redis.zrangebylex(this.keys.index(status, type), start, highest, 'LIMIT', 0, PURGE_BATCH),
          );
          if (ids.length === 0) break;
          deleted += Number(
            await this.call(
              'purge',
              [this.keys.expiry],
              [completedBefore, terminal.join(','), Date.now(), this.options.jobTtlMs, ...ids],
            ),
          );
          if (ids.length < PURGE_BATCH) break;
          start = `(${ids[ids.length - 1]}`;
        }
      }
    }
    return deleted;
  }

  async stats(now: number): Promise<StoreStats> {
    const [types, tenants] = await this.guard(() =>
      Promise.all([this.redis.smembers(this.keys.types), this.redis.smembers(this.keys.tenants)]),
    );
    const second = Math.floor(now / 1000);
    const seconds = Array.from({ length: 60 }, (_, i) => String(second - i));
    const active = ['queued', 'running'] as const;
    const [cards, futureCounts, oldestQueued, finished, tenantCards, atCap] = await this.guard(() =>
      Promise.all([
        Promise.all(
          types.flatMap((type) => jobStatuses.map((status) => this.redis.zcard(this.keys.index(status, type)))),
        ),
        Promise.all(types.map((type) => this.redis.zcount(this.keys.delayed(type), `(${now}`, '+inf'))),
        Promise.all(types.map((type) => this.oldestReadyRunAt(type, now))),
        this.redis.hmget(this.keys.finished, ...seconds),
        Promise.all(
          tenants.flatMap((tenant) =>
            active.flatMap((status) =>
              types.map((type) => this.redis.zcard(this.keys.tenantIndex(tenant, status, type))),
            ),
          ),
        ),
        Promise.all(types.map((type) => this.redis.scard(this.keys.keysAtCap(type)))),
      ]),
    );
    const counts = Object.fromEntries(jobStatuses.map((s) => [s, 0])) as Record<JobStatus, number>;
    const byType: StoreStats['byType'] = {};
    types.forEach((type, t) => {
      const perType = (byType[type] = Object.fromEntries(jobStatuses.map((s) => [s, 0])) as Record<JobStatus, number>);
      jobStatuses.forEach((status, s) => {
        perType[status] = cards[t * jobStatuses.length + s]!;
        counts[status] += perType[status];
      });
    });
    // Named tenants have their own indexes; the open tenant holds whatever they do not.
    const perTenant = tenants.map((tenant, n) => {
      const at = (status: number): number =>
        sum(tenantCards.slice((n * 2 + status) * types.length, (n * 2 + status + 1) * types.length));
      return { tenant, queued: at(0), running: at(1) };
    });
    const open = {
      tenant: ANONYMOUS_TENANT,
      queued: counts.queued - sum(perTenant.map((entry) => entry.queued)),
      running: counts.running - sum(perTenant.map((entry) => entry.running)),
    };
    const oldest = Math.min(...oldestQueued.filter((at): at is number => at !== null));
    const delayed = sum(futureCounts);
    return {
      counts,
      byType,
      // Queued jobs are ready or waiting for a later run_at (the few following another job's result count as ready).
      ready: counts.queued - delayed,
      delayed,
      // ZCOUNT of each type's delayed zset above the current time: already read for the total.
      delayedByType: Object.fromEntries(types.map((type, t) => [type, futureCounts[t]!])),
      oldestReadyAgeS: Number.isFinite(oldest) ? Math.max(0, (now - oldest) / 1000) : null,
      finishedLastMinute: sum(finished.map((count) => Number(count ?? 0))),
      tenants: topTenants([open, ...perTenant]),
      keysAtCap: Object.fromEntries(
        types.flatMap((type, t): [string, number][] => (atCap[t] ? [[type, atCap[t]]] : [])),
      ),
    };
  }

  async ping(): Promise<number> {
    const started = performance.now();
    await this.guard(() => this.redis.ping());
    return performance.now() - started;
  }

  async persistence(): Promise<{ aof: boolean; rdb: boolean | null }> {
    // In a Cluster, one master stands for all: they are configured alike in any deployment worth the name.
    const node = this.redis instanceof Cluster ? (this.redis.nodes('master')[0] ?? this.redis.nodes()[0]!) : this.redis;
    const info = await this.guard(() => node.info('persistence'));
    const aof = /^aof_enabled:1\s*$/m.test(info);
    let rdb: boolean | null;
    try {
      const reply = (await this.guard(() => node.config('GET', 'save'))) as string[];
      rdb = (reply[1] ?? '').trim() !== '';
    } catch {
      rdb = null; // CONFIG is often refused on managed Redis
    }
    return { aof, rdb };
  }

  async claim(request: PartitionClaim): Promise<JobRecord[]> {
    const reply = (await this.call(
      'claim',
      [this.keys.leases],
      [
        request.now,
        request.leaseMs,
        request.leaseId,
        request.workerId,
        request.max,
        this.options.jobTtlMs,
        LEASE_EXPIRED_JSON,
        ...this.poisonArgs(),
        ...claimTypeArgs(request),
      ],
    )) as string[][];
    return reply.map((pairs) => parseJob(pairsToHash(pairs)));
  }

  async finishAndClaim(
    finishes: FinishRequest[],
    claim: PartitionClaim | null,
    now: number,
  ): Promise<FinishAndClaimResult> {
    const claimArgs = claim
      ? [
          claim.max,
          claim.leaseMs,
          claim.leaseId,
          claim.workerId,
          LEASE_EXPIRED_JSON,
          ...this.poisonArgs(),
          ...claimTypeArgs(claim),
        ]
      : [0];
    const [results, claimed] = (await this.call(
      'finish_claim',
      [this.keys.leases],
      [
        now,
        this.options.jobTtlMs,
        finishes.length,
        ...finishes.flatMap((finish) => this.finishArgs(finish.lease, finish.outcome, finish.concurrencyLimited)),
        ...claimArgs,
      ],
    )) as [unknown[], string[][]];
    return { results: results.map(parseFinishReply), claimed: claimed.map((pairs) => parseJob(pairsToHash(pairs))) };
  }

  private poisonArgs(): [number, string] {
    const after = this.options.poisonAfter ?? DEFAULT_POISON_AFTER;
    return [after, JSON.stringify(poisonError(after))];
  }

  async appendLogs(entries: { jobId: string; lines: JobLogLine[] }[]): Promise<void> {
    await Promise.all(
      entries
        .filter((entry) => entry.lines.length > 0)
        .map((entry) =>
          this.call(
            'append_logs',
            [this.keys.logs(entry.jobId)],
            [entry.jobId, LOG_LINES_MAX, ...entry.lines.map((line) => JSON.stringify(line))],
          ),
        ),
    );
  }

  async logs(id: string): Promise<JobLogLine[]> {
    const lines = await this.guard(() => this.redis.lrange(this.keys.logs(id), 0, -1));
    return lines.map((line) => JSON.parse(line) as JobLogLine);
  }

  async runNow(id: string, now: number): ReturnType<JobStore['runNow']> {
    const reply = await this.call('run_now', [this.keys.job(id)], [id, now]);
    if (reply === 'not-delayed') return 'not-delayed';
    return Array.isArray(reply) ? parseJob(pairsToHash(reply as string[])) : undefined;
  }

  async importJob(job: JobRecord, logs: JobLogLine[], now: number): ReturnType<JobStore['importJob']> {
    const finished = isTerminal(job.status);
    const status = finished ? job.status : 'queued';
    const fields = recordFields({ ...job, status }, (value) => this.pack(value));
    let packed = '';
    let pairs: string[] = [];
    if (finished) packed = JSON.stringify(JOB_FIELDS.map((field) => fields[field] ?? false));
    else {
      // It comes in queued: no lease, no result reuse link (its leader is not here), attempts go on from where they were.
      for (const field of [
        'lease',
        'lease_until',
        'cancel',
        'cached_from',
        'cache',
        'pct',
        'step',
        'msg',
        'p_at',
      ] as const)
        delete fields[field];
      pairs = Object.entries(fields).flat();
    }
    const outcome = (await this.call(
      'import',
      [this.keys.job(job.id)],
      [job.id, job.type, job.tenant, status, job.priority, job.runAt, now, job.expiresAt ?? 0, packed, ...pairs],
    )) as 'imported' | 'exists' | 'expired';
    if (outcome === 'imported' && logs.length > 0) await this.appendLogs([{ jobId: job.id, lines: logs }]);
    return outcome;
  }

  async renewLeases(leases: HeldLease[], leaseMs: number, now: number): Promise<RenewResult> {
    if (leases.length === 0) return { lost: [], cancelRequested: [] };
    const args = leases.flatMap((lease) => [lease.jobId, lease.leaseId]);
    const [lost, cancelRequested] = (await this.call('renew', [this.keys.leases], [now, leaseMs, ...args])) as [
      string[],
      string[],
    ];
    return { lost, cancelRequested };
  }

  async reportProgress(lease: HeldLease, update: ProgressUpdate, now: number): Promise<boolean> {
    const reply = await this.call(
      'progress',
      [this.keys.job(lease.jobId)],
      [
        lease.leaseId,
        now,
        update.percent ?? '',
        update.step ?? '',
        update.message ?? '',
        lease.jobId,
        WEBHOOK_PROGRESS_INTERVAL_MS,
      ],
    );
    return reply !== 0;
  }

  async finish(
    lease: HeldLease,
    outcome: AttemptOutcome,
    now: number,
    options: { concurrencyLimited?: boolean } = {},
  ): Promise<FinishResult> {
    const [id, leaseId, kind, payload, runAt, capped] = this.finishArgs(lease, outcome, options.concurrencyLimited);
    const reply = await this.call(
      'finish',
      [this.keys.job(lease.jobId)],
      [id, leaseId, kind, now, this.options.jobTtlMs, payload, runAt, capped],
    );
    return parseFinishReply(reply);
  }

  /** The six values finish.lua and finish_claim.lua take per attempt. */
  private finishArgs(
    lease: HeldLease,
    outcome: AttemptOutcome,
    concurrencyLimited = false,
  ): [string, string, string, string, number, string] {
    let payload = '';
    if (outcome.kind === 'succeeded') payload = this.pack(outcome.result);
    else if (outcome.kind === 'failed' || outcome.kind === 'retry') payload = JSON.stringify(outcome.error);
    return [
      lease.jobId,
      lease.leaseId,
      outcome.kind,
      payload,
      outcome.kind === 'retry' ? outcome.runAt : 0,
      concurrencyLimited ? '1' : '0',
    ];
  }

  async nextWakeAt(types: string[], limits: Record<string, ClaimLimit> = {}): Promise<number | null> {
    const rateLimited = types.filter((type) => limits[type]?.rate);
    const [heads, rateHeads] = await this.guard(() =>
      Promise.all([
        Promise.all([
          ...types.map((type) => this.redis.zrange(this.keys.delayed(type), 0, 0, 'WITHSCORES')),
          this.redis.zrange(this.keys.leases, 0, 0, 'WITHSCORES'),
        ]),
        Promise.all(rateLimited.map((type) => this.redis.zrange(this.keys.rate(type), 0, 0, 'WITHSCORES'))),
      ]),
    );
    const times = heads.filter((head) => head.length === 2).map((head) => Number(head[1]));
    rateLimited.forEach((type, i) => {
      const oldest = rateHeads[i]!;
      if (oldest.length === 2) times.push(Number(oldest[1]) + limits[type]!.rate!.perMs + 1);
    });
    return times.length > 0 ? Math.min(...times) : null;
  }

  async claimWebhookDeliveries(
    now: number,
    max: number,
    leaseMs: number,
  ): ReturnType<JobStore['claimWebhookDeliveries']> {
    const [handed, nextDue] = (await this.call('webhook_claim', [this.keys.webhooksDue], [now, max, leaseMs])) as [
      [string, string[]][],
      string | null,
    ];
    const deliveries = handed.map(([id, pairs]): WebhookDelivery => {
      const fields = pairsToHash(pairs);
      return {
        id,
        jobId: id.slice(0, id.indexOf(':')),
        event: fields.event as WebhookEvent,
        url: fields.url!,
        createdAt: Number(fields.created),
        attempts: Number(fields.attempts),
        job: parseJob(unpackFields(fields.job!)),
      };
    });
    return { deliveries, nextDueAt: nextDue === null ? null : Number(nextDue) };
  }

  async settleWebhookDelivery(delivery: WebhookDelivery, state: WebhookDeliveryState, now: number): Promise<void> {
    const retry = state.status === 'retrying' && state.nextAttemptAt !== null;
    await this.call(
      'webhook_settle',
      [this.keys.job(delivery.jobId)],
      [
        delivery.id,
        delivery.jobId,
        retry ? 'retry' : 'done',
        state.nextAttemptAt ?? 0,
        JSON.stringify(state),
        now,
        state.attempts,
      ],
    );
  }

  /** Drops expired jobs from the indexes; runs on a timer, exposed for tests. */
  async sweep(now: number): Promise<number> {
    let dropped = 0;
    for (;;) {
      const count = Number(
        await this.call(
          'sweep',
          [this.keys.expiry],
          [now, SWEEP_BATCH, terminalStatusList.join(','), this.options.jobTtlMs],
        ),
      );
      dropped += count;
      if (count < SWEEP_BATCH) return dropped;
    }
  }

  /** Stops the sweeper (the client is the RedisJobStore's to close). */
  stop(): void {
    clearInterval(this.sweepTimer);
  }

  private async listStuck(query: ListQuery, at: number): Promise<ListPage> {
    const ids = await this.guard(() => this.redis.zrangebyscore(this.keys.leases, '-inf', at));
    const hashes = await this.guard(() => Promise.all(ids.map((id) => this.readFields(id))));
    const matching = hashes
      .map((hash) => liveRecord(hash, Date.now()))
      .filter((job): job is JobRecord => job !== undefined && job.status === 'running')
      .filter((job) => query.tenant === undefined || job.tenant === query.tenant)
      .filter((job) => query.type === undefined || job.type === query.type)
      .filter((job) => query.createdAfter === undefined || job.createdAt > query.createdAfter)
      .filter((job) => query.createdBefore === undefined || job.createdAt < query.createdBefore)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    if (query.order === 'desc') matching.reverse();
    const start =
      query.after === undefined
        ? 0
        : matching.findIndex((job) => (query.order === 'desc' ? job.id < query.after! : job.id > query.after!));
    const page = start < 0 ? [] : matching.slice(start, start + query.limit);
    const more = start >= 0 && start + query.limit < matching.length;
    return { jobs: page, nextAfter: more ? page[page.length - 1]!.id : null };
  }

  /** Run time of the oldest ready job among the oldest queued ids (ids order by creation). */
  private async oldestReadyRunAt(type: string, now: number): Promise<number | null> {
    const ids = await this.redis.zrangebylex(this.keys.index('queued', type), '-', '+', 'LIMIT', 0, 50);
    if (ids.length === 0) return null;
    const runAts = await Promise.all(ids.map((id) => this.redis.hget(this.keys.job(id), 'run_at')));
    const due = runAts.map(Number).filter((at) => at > 0 && at <= now);
    return due.length > 0 ? Math.min(...due) : null;
  }

  /** A job's fields, whichever form it has: a hash while active, one packed JSON string once finished (read.lua). */
  private async readFields(id: string): Promise<Record<string, string>> {
    const reply = (await this.scripts.read([this.keys.job(id)], [])) as string | string[] | null;
    if (reply === null) return {};
    return typeof reply === 'string' ? unpackFields(reply) : pairsToHash(reply);
  }

  /** JSON, deflated (and base64'd, to stay a text field) above the compression threshold. */
  private pack(value: unknown): string {
    const json = JSON.stringify(value ?? null);
    if (json.length < (this.options.compressThresholdBytes ?? 16_384)) return json;
    return COMPRESSED_MARK + deflateRawSync(json).toString('base64');
  }

  private call(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.guard(() => this.scripts[name](keys, args));
  }

  private guard<T>(operation: () => Promise<T>): Promise<T> {
    return guardRedis(operation, this.options.commandTimeoutMs);
  }
}

const LEASE_EXPIRED_JSON = JSON.stringify(leaseExpiredError);

/**
 * The tenant weights (how many, then tenant and weight pairs; weight 1 is everyone's default, so not sent), then per
 * job type: name, max concurrency, rate max, rate window ms, key concurrency, most jobs in this call (0 = no limit).
 */
function claimTypeArgs(request: PartitionClaim): (string | number)[] {
  const weights = Object.entries(request.tenantWeights ?? {}).filter(([, weight]) => weight > 1);
  return [
    weights.length,
    ...weights.flat(),
    ...request.types.flatMap((type) => {
      const limit = request.limits?.[type];
      const grant = request.grants?.[type];
      // A granted type's fleet-wide limits were checked by the grant (fleet-limits.ts).
      return [
        type,
        grant === undefined ? (limit?.maxConcurrency ?? 0) : 0,
        grant === undefined ? (limit?.rate?.max ?? 0) : 0,
        grant === undefined ? (limit?.rate?.perMs ?? 0) : 0,
        limit?.keyConcurrency ?? 0,
        grant ?? 0,
      ];
    }),
  ];
}

/** The fields of a packed (finished) job. */
function unpackFields(packed: string): Record<string, string> {
  const values = JSON.parse(packed) as (string | false)[];
  const fields: Record<string, string> = {};
  JOB_FIELDS.forEach((field, i) => {
    const value = values[i];
    if (value !== false && value !== undefined) fields[field] = value;
  });
  return fields;
}

function parseFinishReply(reply: unknown): FinishResult {
  if (!Array.isArray(reply)) return 'lost';
  return { status: JobStatus.parse(reply[0]), version: Number(reply[1]) };
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** The record `create` stores for a new job. */
function newRecord({ cache: _cache, fairByKey: _fairByKey, ...job }: NewJob): JobRecord {
  return {
    ...job,
    concurrencyKey: job.concurrencyKey ?? null,
    scheduleId: job.scheduleId ?? null,
    scheduledFor: job.scheduledFor ?? null,
    status: 'queued',
    progress: { percent: null, step: null, message: null, updatedAt: null },
    result: null,
    error: null,
    attempt: 0,
    attemptBudget: job.maxAttempts,
    version: 1,
    startedAt: null,
    updatedAt: job.createdAt,
    completedAt: null,
    expiresAt: null,
    lease: null,
    cancelRequested: false,
    webhook: job.webhook ?? null,
    webhookDelivery: null,
    cachedFrom: null,
    workerId: null,
    attempts: [],
  };
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function pairsToHash(pairs: string[]): Record<string, string> {
  const hash: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) hash[pairs[i]!] = pairs[i + 1]!;
  return hash;
}

function liveRecord(hash: Record<string, string>, now: number): JobRecord | undefined {
  if (hash.id === undefined) return undefined;
  if (hash.expires !== undefined && Number(hash.expires) <= now) return undefined;
  return parseJob(hash);
}

function unpack(value: string): unknown {
  if (value.startsWith(COMPRESSED_MARK))
    return JSON.parse(inflateRawSync(Buffer.from(value.slice(COMPRESSED_MARK.length), 'base64')).toString('utf8'));
  return JSON.parse(value);
}

const num = (value: string | undefined): number | null => (value === undefined || value === '' ? null : Number(value));

function parseJob(hash: Record<string, string>): JobRecord {
  const leaseUntil = num(hash.lease_until);
  return {
    id: hash.id!,
    type: hash.type!,
    tenant: hash.tenant!,
    status: hash.status as JobStatus,
    input: unpack(hash.input ?? 'null'),
    metadata: hash.meta ? (JSON.parse(hash.meta) as Record<string, string>) : {},
    priority: Number(hash.prio),
    progress: {
      percent: num(hash.pct),
      step: hash.step ?? null,
      message: hash.msg ?? null,
      updatedAt: num(hash.p_at),
    },
    result: hash.result !== undefined ? unpack(hash.result) : null,
    error: hash.error !== undefined ? (JSON.parse(hash.error) as JobError) : null,
    attempt: Number(hash.attempt),
    maxAttempts: Number(hash.max_att),
    attemptBudget: Number(hash.budget),
    timeoutS: num(hash.timeout),
    version: Number(hash.ver),
    createdAt: num(hash.created) ?? jobIdTime(hash.id!),
    runAt: Number(hash.run_at),
    startedAt: num(hash.started),
    updatedAt: Number(hash.updated),
    completedAt: num(hash.completed),
    expiresAt: num(hash.expires),
    lease:
      hash.lease !== undefined && leaseUntil !== null
        ? { id: hash.lease, workerId: hash.worker ?? '', until: leaseUntil }
        : null,
    cancelRequested: hash.cancel === '1',
    webhook: hash.wh ? (JSON.parse(hash.wh) as JobWebhook) : null,
    webhookDelivery: hash.wh_st ? (JSON.parse(hash.wh_st) as WebhookDeliveryState) : null,
    concurrencyKey: hash.ckey ?? null,
    scheduleId: hash.sid ?? null,
    scheduledFor: num(hash.sfor),
    cachedFrom: hash.cached_from ?? null,
    workerId: hash.worker ?? null,
    attempts: attemptsOf(hash),
  };
}

/** A record's fields as stored (the inverse of parseJob); absent = null. */
function recordFields(
  job: JobRecord,
  pack: (value: unknown) => string,
): Partial<Record<(typeof JOB_FIELDS)[number], string>> {
  const fields: Partial<Record<(typeof JOB_FIELDS)[number], string>> = {
    id: job.id,
    type: job.type,
    tenant: job.tenant,
    status: job.status,
    input: pack(job.input),
    prio: String(job.priority),
    attempt: String(job.attempt),
    max_att: String(job.maxAttempts),
    budget: String(job.attemptBudget),
    ver: String(job.version),
    created: String(job.createdAt),
    run_at: String(job.runAt),
    updated: String(job.updatedAt),
  };
  const optional: [(typeof JOB_FIELDS)[number], string | null][] = [
    ['meta', Object.keys(job.metadata).length > 0 ? JSON.stringify(job.metadata) : null],
    ['timeout', job.timeoutS === null ? null : String(job.timeoutS)],
    ['started', job.startedAt === null ? null : String(job.startedAt)],
    ['completed', job.completedAt === null ? null : String(job.completedAt)],
    ['expires', job.expiresAt === null ? null : String(job.expiresAt)],
    ['pct', job.progress.percent === null ? null : String(job.progress.percent)],
    ['step', job.progress.step],
    ['msg', job.progress.message],
    ['p_at', job.progress.updatedAt === null ? null : String(job.progress.updatedAt)],
    ['result', job.status === 'succeeded' ? pack(job.result) : null],
    ['error', job.error ? JSON.stringify(job.error) : null],
    ['worker', job.workerId],
    ['wh', job.webhook ? JSON.stringify(job.webhook) : null],
    ['wh_st', job.webhookDelivery ? JSON.stringify(job.webhookDelivery) : null],
    ['cached_from', job.cachedFrom],
    ['ckey', job.concurrencyKey],
    ['sid', job.scheduleId],
    ['sfor', job.scheduledFor === null ? null : String(job.scheduledFor)],
    ['atts', job.attempts.length > 0 ? JSON.stringify(job.attempts) : null],
  ];
  for (const [field, value] of optional) if (value !== null) fields[field] = value;
  return fields;
}

/** The attempt timeline; a succeeding attempt is not stored (finish-lib.lua) but read from the job's own fields. */
function attemptsOf(hash: Record<string, string>): AttemptRecord[] {
  const attempts = hash.atts ? (JSON.parse(hash.atts) as AttemptRecord[]) : [];
  const attempt = Number(hash.attempt);
  if (
    hash.status === 'succeeded' &&
    attempt > 0 &&
    hash.started !== undefined &&
    (attempts.at(-1)?.attempt ?? 0) < attempt
  ) {
    attempts.push({
      attempt,
      workerId: hash.worker ?? null,
      startedAt: Number(hash.started),
      endedAt: Number(hash.completed),
      outcome: 'succeeded',
      error: null,
    });
  }
  return attempts;
}
