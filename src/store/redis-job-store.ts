import { Cluster } from 'ioredis';
import { withDeadline } from '../deadline.js';
import { jobIdTime, withPartition } from '../jobs/job-id.js';
import type { JobLogLine, JobRecord, JobStatus, NewJob, WebhookDeliveryState } from '../jobs/job.js';
import { createClient, guardRedis, quit, subscriberFor, type RedisClient } from '../redis/redis-client.js';
import {
  MAX_PARTITIONS,
  StoreUnavailableError,
  TooManyActiveJobsError,
  topTenants,
  type AttemptOutcome,
  type ClaimLimit,
  type ClaimRequest,
  type CreateOptions,
  type FinishAndClaimResult,
  type FinishRequest,
  type FinishResult,
  type HeldLease,
  type Idempotency,
  type JobStore,
  type ListPage,
  type ListQuery,
  type ProgressUpdate,
  type RenewResult,
  type StoreEvent,
  type StoreStats,
  type WebhookDelivery,
} from './job-store.js';
import {
  defaultPartitionCount,
  ensurePartitionTable,
  partitionOfId,
  placeJob,
  readPartitionTable,
  type PartitionTable,
} from './partition-table.js';
import {
  defineJobScripts,
  inListingOrder,
  listPage,
  RedisPartition,
  unpipelinedScriptCommands,
  type JobScripts,
  type PartitionClaim,
  type RedisPartitionOptions,
} from './redis-partition.js';
import { RedisKeys } from './redis-keys.js';

export { JOB_FIELDS } from './redis-partition.js';

export interface RedisJobStoreOptions extends RedisPartitionOptions {
  /**
   * REDIS_PARTITIONS: how many partitions new jobs are spread over (1 to MAX_PARTITIONS). Default: 1 on a single Redis,
   * PARTITIONS_PER_MASTER per master on a Cluster.
   */
  partitions?: number;
}

/** How often an instance reads the partition table again, to find partitions another instance added. */
const TABLE_REFRESH_MS = 10_000;
/**
 * A partition whose claim found nothing is not asked again until a signal says it has work, its next due time comes,
 * or this long passed (the worker pool's own safety net against a lost signal: worker-pool.ts MAX_IDLE_MS).
 */
const EMPTY_RECHECK_MS = 30_000;
/**
 * A place under a fleet-wide max_concurrency is held this long past its lease's end: instances' clocks may differ by
 * up to this much without two jobs ever holding one place (the lease's end is stamped by the partition's clock).
 */
const FLEET_CLOCK_MARGIN_MS = 2000;

/** What a claimer knows of one partition, so idle partitions are not asked on every claim. */
interface PartitionHint {
  /** When a claim last found it empty (null: it may have work). */
  emptyAt: number | null;
  /** Its signals so far: a claim that began before a signal must not mark the partition empty. */
  signals: number;
  /** The earliest time it may have work nobody signals (its nextWakeAt; Infinity: none; undefined: not read yet). */
  wakeAt: number | undefined;
}

/**
 * Jobs in Redis, spread over partitions: shared by every instance using the same Redis and key prefix, and kept
 * across restarts.
 *
 * Each partition (redis-partition.ts) has its own hash tag, so every state change is one atomic script in one slot,
 * and on a Redis Cluster the partitions spread over the masters. This store:
 * - places a new job in a partition (partition-table.ts placeJob) and writes the partition into its id, so every
 *   later call about the job goes to that partition alone;
 * - claims from partitions in turn, one partition's batch per script call, skipping partitions it knows to be idle
 *   until they signal work (PartitionHint);
 * - holds fleet-wide limits across partitions (max_concurrency, rate) in the base partition: a claim first takes a
 *   grant there (limit_grant.lua), each claimed job then holds a place until its lease ends (limit_confirm, renew,
 *   release); key_concurrency needs nothing, since a key's jobs all live in one partition;
 * - merges listings (by id, which orders every partition's jobs alike), statistics and signals.
 * With one partition it is the partition, untouched: today's layout and speed.
 */
export class RedisJobStore implements JobStore {
  readonly kind = 'redis' as const;
  /** The base partition's keys: also where operator state, schedules and the /v1 rate limit keep theirs. */
  readonly keys: RedisKeys;
  private readonly partitions: RedisPartition[] = [];
  private readonly hints: PartitionHint[] = [];
  private cursor = 0;
  private webhookCursor = 0;
  private subscriber: RedisClient | undefined;
  private subscribed: Promise<void> | undefined;
  /** Events channel → its partition. */
  private readonly eventChannels = new Map<string, number>();
  /** Channel of a watched job → its watchers (one Redis subscription per job, whatever their number). */
  private readonly watchers = new Map<string, Set<(version: number | null) => void>>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    readonly redis: RedisClient,
    private readonly options: RedisJobStoreOptions,
    private readonly scripts: JobScripts,
    private table: PartitionTable,
    /** New jobs go to partitions 0 to active - 1. */
    readonly active: number,
  ) {
    this.keys = new RedisKeys(options.keyPrefix);
    this.addPartitions(table.tags);
    this.refreshTimer = setInterval(() => void this.refreshTable().catch(() => undefined), TABLE_REFRESH_MS);
    this.refreshTimer.unref();
  }

  /** Connects and checks the server answers; throws StoreUnavailableError otherwise (and closes the client). */
  static async connect(options: RedisJobStoreOptions): Promise<RedisJobStore> {
    const redis = createClient({ ...options, unpipelinedCommands: unpipelinedScriptCommands });
    redis.on('error', () => undefined); // connection errors surface per command as StoreUnavailableError
    let table: PartitionTable;
    let active: number;
    try {
      await withDeadline(
        (async () => {
          await redis.connect();
          await redis.ping();
        })(),
        options.connectTimeoutMs + 1000,
      );
      active = Math.min(MAX_PARTITIONS, options.partitions ?? defaultPartitionCount(redis));
      table = await guardRedis(
        () => ensurePartitionTable(redis, new RedisKeys(options.keyPrefix), options.keyPrefix, active, Date.now()),
        options.connectTimeoutMs + 1000,
      );
    } catch (error) {
      redis.disconnect();
      throw new StoreUnavailableError(`cannot connect to Redis: ${(error as Error).message}`, { cause: error });
    }
    const store = new RedisJobStore(redis, options, defineJobScripts(redis), table, active);
    try {
      await Promise.all(store.partitions.map((partition) => partition.adoptLegacyReadyJobs()));
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** How many partitions there are (new jobs use the first `active`). */
  get partitionCount(): number {
    return this.partitions.length;
  }

  /** The keys of the partition a job id names (tests and the benchmarks read Redis directly with them). */
  keysOf(id: string): RedisKeys {
    return this.partitionOf(id).keys;
  }

  private addPartitions(tags: string[]): void {
    for (const tag of tags.slice(this.partitions.length)) {
      const index = this.partitions.length;
      const keys = new RedisKeys(tag);
      this.partitions.push(new RedisPartition(this.redis, keys, this.options, this.scripts));
      this.hints.push({ emptyAt: null, signals: 0, wakeAt: undefined });
      this.eventChannels.set(keys.events, index);
      if (this.subscriber) void this.listenTo(keys.events).catch(() => undefined);
    }
  }

  /** Partitions another instance added (a higher REDIS_PARTITIONS) become this instance's to read and claim from. */
  private refreshTable(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const table = await this.guard(() => readPartitionTable(this.redis, this.keys));
        if (table && table.tags.length > this.partitions.length) {
          this.table = table;
          this.addPartitions(table.tags);
        }
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private partitionOf(id: string): RedisPartition {
    return this.partitions[partitionOfId(id, this.table)] ?? this.partitions[0]!;
  }

  /** The partition of a job id, reading the table again first when the id names a partition not known here yet. */
  private async partitionOfFresh(id: string): Promise<RedisPartition> {
    if (partitionOfId(id, this.table) >= this.partitions.length) await this.refreshTable().catch(() => undefined);
    return this.partitionOf(id);
  }

  /** This instance just queued work in the partition: its next claim looks there (without waiting for the signal). */
  private queuedIn(partition: RedisPartition): void {
    const hint = this.hints[this.partitions.indexOf(partition)];
    if (hint) hint.emptyAt = null;
  }

  private get partitioned(): boolean {
    return this.partitions.length > 1;
  }

  // ---- one job: its partition alone ----

  async create(job: NewJob, options?: CreateOptions): Promise<JobRecord> {
    const [partition, placed] = this.place(job, null);
    const created = await partition.create(placed, await this.activeLimitIn(partition, job.tenant, options));
    this.queuedIn(partition);
    return created;
  }

  async createOnce(
    job: NewJob,
    idempotency: Idempotency,
    options?: CreateOptions,
  ): Promise<{ job: JobRecord; replayed: boolean } | 'key-reused'> {
    const [partition, placed] = this.place(job, idempotency);
    const outcome = await partition.createOnce(
      placed,
      idempotency,
      await this.activeLimitIn(partition, job.tenant, options),
    );
    this.queuedIn(partition);
    return outcome;
  }

  /**
   * The partition a new job goes to, and the job with that partition written into its id. A job whose id is older than
   * the table (a backdated creation time) goes to partition 0, where such ids are looked for.
   */
  private place(job: NewJob, idempotency: Idempotency | null): [RedisPartition, NewJob] {
    const index = jobIdTime(job.id) < this.table.epoch ? 0 : placeJob(job, idempotency, this.active);
    return [this.partitions[index]!, { ...job, id: withPartition(job.id, index) }];
  }

  /**
   * A tenant's active-job limit as it applies in one partition: what the other partitions' active jobs of the tenant
   * leave. Read before the create, so submits racing on several instances may pass it together (by at most their
   * number); within one partition the create's own check is atomic.
   */
  private async activeLimitIn(
    partition: RedisPartition,
    tenant: string,
    options: CreateOptions | undefined,
  ): Promise<CreateOptions | undefined> {
    if (!this.partitioned || options?.maxActive === undefined) return options;
    const elsewhere = sum(
      await Promise.all(this.partitions.filter((p) => p !== partition).map((p) => p.activeJobsOf(tenant))),
    );
    if (elsewhere >= options.maxActive) throw new TooManyActiveJobsError(options.maxActive);
    return { ...options, maxActive: options.maxActive - elsewhere };
  }

  async findByIdempotencyKey(tenant: string, key: string): Promise<JobRecord | undefined> {
    // The key lives where its job was placed, which its concurrency key may have decided: every partition is asked.
    const found = await Promise.all(this.partitions.map((p) => p.findByIdempotencyKey(tenant, key)));
    return found.find((job) => job !== undefined);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return (await this.partitionOfFresh(id)).get(id);
  }

  async goneAt(id: string, tenant?: string): Promise<number | null> {
    return (await this.partitionOfFresh(id)).goneAt(id, tenant);
  }

  async cancel(id: string, now: number): ReturnType<JobStore['cancel']> {
    return (await this.partitionOfFresh(id)).cancel(id, now);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.partitionOfFresh(id)).delete(id);
  }

  async retry(id: string, now: number): ReturnType<JobStore['retry']> {
    const partition = await this.partitionOfFresh(id);
    const reply = await partition.retry(id, now);
    this.queuedIn(partition);
    return reply;
  }

  async runNow(id: string, now: number): ReturnType<JobStore['runNow']> {
    const partition = await this.partitionOfFresh(id);
    const reply = await partition.runNow(id, now);
    this.queuedIn(partition);
    return reply;
  }

  async logs(id: string): Promise<JobLogLine[]> {
    return (await this.partitionOfFresh(id)).logs(id);
  }

  async importJob(job: JobRecord, logs: JobLogLine[], now: number): ReturnType<JobStore['importJob']> {
    const partition = await this.partitionOfFresh(job.id);
    const outcome = await partition.importJob(job, logs, now);
    this.queuedIn(partition);
    return outcome;
  }

  async reportProgress(lease: HeldLease, progress: ProgressUpdate, now: number): Promise<boolean> {
    return this.partitionOf(lease.jobId).reportProgress(lease, progress, now);
  }

  async finish(
    lease: HeldLease,
    outcome: AttemptOutcome,
    now: number,
    options: { concurrencyLimited?: boolean } = {},
  ): Promise<FinishResult> {
    if (!this.partitioned) return this.partitions[0]!.finish(lease, outcome, now, options);
    const [result] = (
      await this.finishAndClaim([{ lease, outcome, concurrencyLimited: options.concurrencyLimited }], null, now)
    ).results;
    return result!;
  }

  async appendLogs(entries: { jobId: string; lines: JobLogLine[] }[]): Promise<void> {
    await Promise.all(
      this.groupBy(entries, (entry) => entry.jobId).map(([partition, group]) => partition.appendLogs(group)),
    );
  }

  async settleWebhookDelivery(delivery: WebhookDelivery, state: WebhookDeliveryState, now: number): Promise<void> {
    await this.partitionOf(delivery.jobId).settleWebhookDelivery(delivery, state, now);
  }

  // ---- across partitions ----

  async runningWithKey(type: string, tenant: string, key: string): Promise<number> {
    // One partition holds a key's jobs, unless REDIS_PARTITIONS changed while some ran: count them all.
    return sum(await Promise.all(this.partitions.map((p) => p.runningWithKey(type, tenant, key))));
  }

  /**
   * One listing over every partition: each round reads the next ids of every partition's indexes, merges them in
   * listing order (ids order every partition's jobs alike, so the last id listed is the cursor for all of them) and
   * reads only the jobs the page needs, each from its partition (listPage: the rule of a listing, as one partition's).
   */
  async list(query: ListQuery): Promise<ListPage> {
    if (!this.partitioned) return this.partitions[0]!.list(query);
    if (query.stuckAt !== undefined) return this.listStuck(query);
    const sources = new Map(
      await Promise.all(this.partitions.map(async (p) => [p, await p.listSource(query)] as const)),
    );
    return listPage(query, {
      candidates: async (after, want) => {
        const pages = await Promise.all([...sources.values()].map((source) => source.candidates(after, want)));
        return inListingOrder(pages.flat(), query.order).slice(0, want);
      },
      read: async (ids) => {
        const records = new Map<string, JobRecord | undefined>();
        await Promise.all(
          this.groupBy(ids, (id) => id).map(async ([partition, group]) => {
            const read = await sources.get(partition)!.read(group);
            group.forEach((id, i) => records.set(id, read[i]));
          }),
        );
        return ids.map((id) => records.get(id));
      },
    });
  }

  /**
   * Running jobs whose lease lapsed, from every partition: a k-way merge of their pages. A partition that stopped
   * short bounds the page, so the next one goes on from there without skipping.
   */
  private async listStuck(query: ListQuery): Promise<ListPage> {
    const pages = await Promise.all(this.partitions.map((p) => p.list(query)));
    const before = (a: string, b: string): boolean => (query.order === 'desc' ? a > b : a < b);
    let bound: string | null = null;
    for (const page of pages) {
      if (page.nextAfter !== null && (bound === null || before(page.nextAfter, bound))) bound = page.nextAfter;
    }
    const merged = pages
      .flatMap((page) => page.jobs)
      .filter((job) => bound === null || !before(bound, job.id))
      .sort((a, b) => (before(a.id, b.id) ? -1 : 1));
    const jobs = merged.slice(0, query.limit);
    if (merged.length > query.limit) return { jobs, nextAfter: jobs[jobs.length - 1]!.id };
    return { jobs, nextAfter: bound };
  }

  async purge(statuses: JobStatus[], completedBefore: number): Promise<number> {
    return sum(await Promise.all(this.partitions.map((p) => p.purge(statuses, completedBefore))));
  }

  /** Drops expired jobs from the indexes; runs on a timer in each partition, exposed for tests. */
  async sweep(now: number): Promise<number> {
    return sum(await Promise.all(this.partitions.map((p) => p.sweep(now))));
  }

  async stats(now: number): Promise<StoreStats> {
    if (!this.partitioned) return this.partitions[0]!.stats(now);
    const all = await Promise.all(this.partitions.map((p) => p.stats(now)));
    const add = (into: Record<string, number>, from: Record<string, number>): void => {
      for (const [name, count] of Object.entries(from)) into[name] = (into[name] ?? 0) + count;
    };
    const counts = {} as Record<JobStatus, number>;
    const byType: StoreStats['byType'] = {};
    const delayedByType: Record<string, number> = {};
    const keysAtCap: Record<string, number> = {};
    const tenants = new Map<string, { tenant: string; queued: number; running: number }>();
    for (const stats of all) {
      add(counts, stats.counts);
      for (const [type, perType] of Object.entries(stats.byType))
        add((byType[type] ??= {} as Record<JobStatus, number>), perType);
      add(delayedByType, stats.delayedByType);
      add(keysAtCap, stats.keysAtCap);
      for (const entry of stats.tenants) {
        const merged = tenants.get(entry.tenant) ?? { tenant: entry.tenant, queued: 0, running: 0 };
        merged.queued += entry.queued;
        merged.running += entry.running;
        tenants.set(entry.tenant, merged);
      }
    }
    const ages = all.map((stats) => stats.oldestReadyAgeS).filter((age): age is number => age !== null);
    return {
      counts,
      byType,
      ready: sum(all.map((stats) => stats.ready)),
      delayed: sum(all.map((stats) => stats.delayed)),
      delayedByType,
      oldestReadyAgeS: ages.length > 0 ? Math.max(...ages) : null,
      finishedLastMinute: sum(all.map((stats) => stats.finishedLastMinute)),
      // Each partition names its top tenants: a tenant just below the top in every partition may be missed.
      tenants: topTenants([...tenants.values()]),
      keysAtCap,
    };
  }

  /** With partitions, every partition's slot answers (its master may be down while the others are up). */
  async ping(): Promise<number> {
    if (!this.partitioned) return this.partitions[0]!.ping();
    const started = performance.now();
    await Promise.all(
      this.partitions.map((partition, index) =>
        this.guard(() => this.redis.exists(partition.keys.types)).catch((error: unknown) => {
          throw new StoreUnavailableError(`partition ${index} unreachable: ${(error as Error).message}`, {
            cause: error,
          });
        }),
      ),
    );
    return performance.now() - started;
  }

  async persistence(): Promise<{ aof: boolean; rdb: boolean | null }> {
    return this.partitions[0]!.persistence();
  }

  // ---- claiming ----

  async claim(request: ClaimRequest): Promise<JobRecord[]> {
    if (!this.partitioned) return this.partitions[0]!.claim(request);
    return (await this.finishAndClaim([], request, request.now)).claimed;
  }

  /**
   * Each partition's finishes go to it (the first partition to claim from takes its finishes and the claim in one
   * call); the claim then goes on to further partitions in turn until `max` jobs are claimed or none may have more.
   */
  async finishAndClaim(
    finishes: FinishRequest[],
    claim: ClaimRequest | null,
    now: number,
  ): Promise<FinishAndClaimResult> {
    if (!this.partitioned) return this.partitions[0]!.finishAndClaim(finishes, claim, now);
    const byPartition = new Map(
      this.groupBy(
        finishes.map((_, i) => i),
        (i) => finishes[i]!.lease.jobId,
      ),
    );
    const order = claim ? this.claimOrder(claim.now) : [];
    // Should the base partition not answer, this call claims nothing but still sends its finishes.
    const grants = claim && order.length > 0 ? await this.grantLimits(claim).catch(() => undefined) : undefined;
    const results: FinishResult[] = new Array<FinishResult>(finishes.length);
    const claimed: JobRecord[] = [];

    const finishIn = async (partition: RedisPartition, request: PartitionClaim | null, hint?: number) => {
      const indices = byPartition.get(partition) ?? [];
      byPartition.delete(partition);
      const signals = hint === undefined ? 0 : this.hints[hint]!.signals;
      const at = request && grants?.at !== undefined ? Math.max(now, grants.at) : now;
      const reply = await partition.finishAndClaim(
        indices.map((i) => finishes[i]!),
        request && { ...request, now: Math.max(request.now, at) },
        at,
      );
      // A retried or released job is queued again there.
      if (indices.some((i) => ['retry', 'released'].includes(finishes[i]!.outcome.kind))) this.queuedIn(partition);
      indices.forEach((finishIndex, i) => (results[finishIndex] = reply.results[i]!));
      if (request && hint !== undefined) this.noteClaim(hint, signals, reply.claimed, request);
      return reply.claimed;
    };

    let next = 0;
    const first = claim && grants ? this.partitionClaim(claim, grants, claimed.length) : null;
    const firstIndex = first ? order[next++] : undefined;
    const calls: Promise<JobRecord[]>[] = [];
    if (first && firstIndex !== undefined) calls.push(finishIn(this.partitions[firstIndex]!, first, firstIndex));
    for (const partition of [...byPartition.keys()]) calls.push(finishIn(partition, null));
    try {
      const settled = await Promise.allSettled(calls);
      for (const call of settled) if (call.status === 'fulfilled') this.takeGranted(call.value, grants, claimed);
      const failed = settled.find((call): call is PromiseRejectedResult => call.status === 'rejected');
      if (failed) {
        // A partition could not be reached (its master failing over): the call fails and its finishes are sent again.
        // Jobs claimed meanwhile from a healthy partition go back at once, their attempt not counted, rather than wait
        // out a lease nobody holds.
        await this.handBack(claimed.splice(0));
        throw failed.reason;
      }
      while (claim && grants && next < order.length && claimed.length < claim.max) {
        const request = this.partitionClaim(claim, grants, claimed.length);
        if (!request) break;
        const index = order[next++]!;
        try {
          this.takeGranted(await finishIn(this.partitions[index]!, request, index), grants, claimed);
        } catch {
          break; // a claim only: what was claimed so far stands, the next claim tries again
        }
      }
    } finally {
      if (grants) await this.confirmGrants(claim!, grants, claimed);
      await this.releasePlaces(finishes.filter((finish) => finish.concurrencyLimited).map((finish) => finish.lease));
    }
    return { results, claimed };
  }

  /** Partitions that may have work, in turn from the next one (so no partition starves). */
  private claimOrder(now: number): number[] {
    const n = this.partitions.length;
    const start = this.cursor;
    this.cursor = (this.cursor + 1) % n;
    const order: number[] = [];
    for (let i = 0; i < n; i++) {
      const index = (start + i) % n;
      const hint = this.hints[index]!;
      if (
        hint.emptyAt === null ||
        hint.wakeAt === undefined ||
        now >= hint.wakeAt ||
        now - hint.emptyAt >= EMPTY_RECHECK_MS
      )
        order.push(index);
    }
    return order;
  }

  /**
   * A claim that got fewer jobs than it could take found the partition empty (unless it signalled work meanwhile, or a
   * type used up its grant there: its jobs may wait). An empty partition's next due time is read in the background, so
   * a delayed job or a lapsing lease there is found in time without a signal.
   */
  private noteClaim(index: number, signalsBefore: number, claimed: JobRecord[], request: PartitionClaim): void {
    const hint = this.hints[index]!;
    const grants = request.grants ?? {};
    const grantUsedUp = Object.entries(grants).some(
      ([type, grant]) => claimed.filter((job) => job.type === type).length >= grant,
    );
    if (claimed.length >= request.max || grantUsedUp) {
      hint.emptyAt = null;
      return;
    }
    if (hint.signals !== signalsBefore) return;
    hint.emptyAt = request.now;
    hint.wakeAt = undefined;
    const limits = Object.fromEntries(
      Object.entries(request.limits ?? {}).map(([type, limit]) => [type, { ...limit, rate: undefined }]),
    );
    void this.partitions[index]!.nextWakeAt(request.types, limits)
      .then((at) => {
        if (hint.signals === signalsBefore && hint.emptyAt === request.now) hint.wakeAt = at ?? Infinity;
      })
      .catch(() => (hint.emptyAt = null));
  }

  /** This partition's share of the claim: what is left of `max` and of each limited type's grant. */
  private partitionClaim(claim: ClaimRequest, grants: FleetGrants, taken: number): PartitionClaim | null {
    const types = claim.types.filter((type) => grants.left[type] === undefined || grants.left[type] > 0);
    const request: PartitionClaim = { ...claim, types, max: claim.max - taken, grants: { ...grants.left } };
    if (types.length === 0 || allowedIn(request) === 0) return null;
    return request;
  }

  private takeGranted(jobs: JobRecord[], grants: FleetGrants | undefined, claimed: JobRecord[]): void {
    for (const job of jobs) {
      claimed.push(job);
      if (grants && grants.left[job.type] !== undefined) grants.left[job.type]!--;
    }
  }

  /** Grants for the claim's types with a fleet-wide max_concurrency or rate (limit_grant.lua). */
  private async grantLimits(claim: ClaimRequest): Promise<FleetGrants> {
    const limited = claim.types.filter((type) => isFleetLimited(claim.limits?.[type]));
    const grants: FleetGrants = { granted: {}, left: {} };
    if (limited.length === 0) return grants;
    const reply = (await this.guard(() =>
      this.scripts.limit_grant(
        [this.keys.partitions],
        [
          claim.now,
          claim.leaseMs + FLEET_CLOCK_MARGIN_MS,
          claim.leaseId,
          claim.max,
          ...limited.flatMap((type) => {
            const limit = claim.limits![type]!;
            return [type, limit.maxConcurrency ?? 0, limit.rate?.max ?? 0, limit.rate?.perMs ?? 0];
          }),
        ],
      ),
    )) as number[];
    grants.at = Number(reply[0]);
    limited.forEach((type, i) => {
      grants.granted[type] = Number(reply[i + 1]);
      grants.left[type] = Number(reply[i + 1]);
    });
    return grants;
  }

  /**
   * Swaps the grants used for the jobs claimed with them, and gives the rest back. Should that fail, the jobs claimed
   * under a grant are handed back (released) rather than run without a place: the limit is never exceeded.
   */
  private async confirmGrants(claim: ClaimRequest, grants: FleetGrants, claimed: JobRecord[]): Promise<void> {
    const types = Object.keys(grants.granted).filter((type) => grants.granted[type]! > 0);
    if (types.length === 0) return;
    const args: (string | number)[] = [claim.leaseId, FLEET_CLOCK_MARGIN_MS];
    for (const type of types) {
      const limit = claim.limits![type]!;
      const jobs = claimed.filter((job) => job.type === type);
      args.push(type, grants.granted[type]!, limit.maxConcurrency ? '1' : '0', limit.rate ? '1' : '0', jobs.length);
      for (const job of jobs) args.push(job.id, job.lease!.until, job.startedAt ?? claim.now);
    }
    try {
      await this.guard(() => this.scripts.limit_confirm([this.keys.partitions], args));
    } catch {
      const unplaced = claimed.filter((job) => types.includes(job.type));
      await this.handBack(unplaced);
      claimed.splice(0, claimed.length, ...claimed.filter((job) => !unplaced.includes(job)));
    }
  }

  /** Releases jobs just claimed (back to the queue, the attempt not counted), as far as their partitions answer. */
  private async handBack(jobs: JobRecord[]): Promise<void> {
    await Promise.allSettled(
      jobs.map((job) =>
        this.partitionOf(job.id).finish({ jobId: job.id, leaseId: job.lease!.id }, { kind: 'released' }, Date.now()),
      ),
    );
  }

  /** Ended attempts give their places under fleet-wide max_concurrency back (limit_release.lua). */
  private async releasePlaces(leases: HeldLease[]): Promise<void> {
    if (leases.length === 0) return;
    // A place not given back (Redis unreachable now) lapses on its own when its lease would have ended.
    await this.guard(() =>
      this.scripts.limit_release(
        [this.keys.partitions],
        leases.flatMap((lease) => [lease.jobId, lease.leaseId]),
      ),
    ).catch(() => undefined);
  }

  async renewLeases(leases: HeldLease[], leaseMs: number, now: number): Promise<RenewResult> {
    if (!this.partitioned) return this.partitions[0]!.renewLeases(leases, leaseMs, now);
    if (leases.length === 0) return { lost: [], cancelRequested: [] };
    // Places under fleet-wide limits first: a place never ends before the lease it stands for.
    await this.guard(() =>
      this.scripts.limit_renew(
        [this.keys.partitions],
        [now + leaseMs + FLEET_CLOCK_MARGIN_MS, ...leases.flatMap((lease) => [lease.jobId, lease.leaseId])],
      ),
    );
    const replies = await Promise.all(
      this.groupBy(leases, (lease) => lease.jobId).map(([partition, group]) =>
        partition.renewLeases(group, leaseMs, now),
      ),
    );
    return {
      lost: replies.flatMap((reply) => reply.lost),
      cancelRequested: replies.flatMap((reply) => reply.cancelRequested),
    };
  }

  async nextWakeAt(types: string[], limits: Record<string, ClaimLimit> = {}): Promise<number | null> {
    if (!this.partitioned) return this.partitions[0]!.nextWakeAt(types, limits);
    // Partitions do not hold rate windows when partitioned: the fleet's are read here.
    const partitionLimits = Object.fromEntries(
      Object.entries(limits).map(([type, limit]) => [type, { ...limit, rate: undefined }]),
    );
    const fleetLimited = types.filter((type) => isFleetLimited(limits[type]));
    const [perPartition, fleetHeads] = await Promise.all([
      Promise.all(this.partitions.map((p) => p.nextWakeAt(types, partitionLimits))),
      this.guard(() =>
        Promise.all(
          fleetLimited.map(async (type) => {
            const limit = limits[type]!;
            const [running, rate] = await Promise.all([
              limit.maxConcurrency ? this.redis.zrange(this.keys.fleetRunning(type), 0, 0, 'WITHSCORES') : [],
              limit.rate ? this.redis.zrange(this.keys.fleetRate(type), 0, 0, 'WITHSCORES') : [],
            ]);
            const times: number[] = [];
            // A place held by a worker that died frees when it lapses; a rate window frees a claim as it slides.
            if (running.length === 2) times.push(Number(running[1]) + 1);
            if (rate.length === 2) times.push(Number(rate[1]) + limit.rate!.perMs + 1);
            return times.length > 0 ? Math.min(...times) : null;
          }),
        ),
      ),
    ]);
    perPartition.forEach((at, i) => (this.hints[i]!.wakeAt = at ?? Infinity));
    const times = [...perPartition, ...fleetHeads].filter((at): at is number => at !== null);
    return times.length > 0 ? Math.min(...times) : null;
  }

  async claimWebhookDeliveries(
    now: number,
    max: number,
    leaseMs: number,
  ): ReturnType<JobStore['claimWebhookDeliveries']> {
    if (!this.partitioned) return this.partitions[0]!.claimWebhookDeliveries(now, max, leaseMs);
    const deliveries: WebhookDelivery[] = [];
    let nextDueAt: number | null = null;
    const n = this.partitions.length;
    const start = this.webhookCursor;
    this.webhookCursor = (start + 1) % n;
    for (let i = 0; i < n; i++) {
      const reply = await this.partitions[(start + i) % n]!.claimWebhookDeliveries(
        now,
        max - deliveries.length,
        leaseMs,
      );
      deliveries.push(...reply.deliveries);
      if (reply.nextDueAt !== null && (nextDueAt === null || reply.nextDueAt < nextDueAt)) nextDueAt = reply.nextDueAt;
    }
    return { deliveries, nextDueAt };
  }

  // ---- signals ----

  async subscribe(listener: (event: StoreEvent) => void): Promise<() => void> {
    this.listeners.add(listener);
    this.subscribed ??= this.openSubscriber();
    await this.subscribed;
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * The partitions' channels are sharded on a Cluster (redis-partition.ts defineJobScripts): heard from each channel's
   * master, one SSUBSCRIBE per channel (a sharded subscribe takes channels of one slot).
   */
  private get sharded(): boolean {
    return this.redis instanceof Cluster;
  }

  private listenTo(channel: string): Promise<unknown> {
    return this.sharded ? this.subscriber!.ssubscribe(channel) : this.subscriber!.subscribe(channel);
  }

  private stopListening(channel: string): Promise<unknown> {
    return this.sharded ? this.subscriber!.sunsubscribe(channel) : this.subscriber!.unsubscribe(channel);
  }

  private async openSubscriber(): Promise<void> {
    const subscriber = subscriberFor(this.redis, { sharded: this.sharded });
    const onMessage = (channel: string, message: string) => {
      const watchers = this.watchers.get(channel);
      if (watchers) {
        const version = message === 'gone' ? null : Number(message);
        for (const watcher of watchers) watcher(version);
        return;
      }
      let event: StoreEvent;
      try {
        event = JSON.parse(message) as StoreEvent;
      } catch {
        return;
      }
      const partition = this.eventChannels.get(channel);
      if (partition !== undefined && event.kind === 'work') {
        const hint = this.hints[partition]!;
        hint.signals++;
        hint.emptyAt = null;
      }
      for (const each of this.listeners) each(event);
    };
    subscriber.on(this.sharded ? 'smessage' : 'message', onMessage);
    this.subscriber = subscriber;
    await this.guard(() => Promise.all([...this.eventChannels.keys()].map((channel) => this.listenTo(channel))));
  }

  async watch(id: string, listener: (version: number | null) => void): Promise<() => void> {
    const channel = (await this.partitionOfFresh(id)).keys.changed(id);
    let watchers = this.watchers.get(channel);
    const first = watchers === undefined;
    if (!watchers) this.watchers.set(channel, (watchers = new Set()));
    watchers.add(listener);
    const stop = () => {
      watchers.delete(listener);
      if (watchers.size > 0 || this.watchers.get(channel) !== watchers) return;
      this.watchers.delete(channel);
      if (this.subscriber) this.stopListening(channel).catch(() => undefined);
    };
    try {
      this.subscribed ??= this.openSubscriber();
      await this.subscribed;
      if (first) await this.guard(() => this.listenTo(channel));
    } catch (error) {
      stop();
      throw error;
    }
    return stop;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.refreshTimer);
    for (const partition of this.partitions) partition.stop();
    this.listeners.clear();
    // The subscriber holds no state worth a graceful QUIT; a paused Redis would never answer it.
    this.subscriber?.disconnect();
    await quit(this.redis, this.options.commandTimeoutMs);
  }

  /** `items` grouped by the partition of each one's job id. */
  private groupBy<T>(items: T[], idOf: (item: T) => string): [RedisPartition, T[]][] {
    const groups = new Map<RedisPartition, T[]>();
    for (const item of items) {
      const partition = this.partitionOf(idOf(item));
      const group = groups.get(partition);
      if (group) group.push(item);
      else groups.set(partition, [item]);
    }
    return [...groups];
  }

  private guard<T>(operation: () => Promise<T>): Promise<T> {
    return guardRedis(operation, this.options.commandTimeoutMs);
  }
}

/** What a claim across partitions was granted under fleet-wide limits, per limited type, and what is left of it. */
interface FleetGrants {
  /** The time the grants were checked at: the claim stamps its jobs no earlier (limit_grant.lua). */
  at?: number;
  granted: Record<string, number>;
  left: Record<string, number>;
}

const isFleetLimited = (limit: ClaimLimit | undefined): boolean =>
  limit !== undefined && (limit.maxConcurrency !== undefined || limit.rate !== undefined);

/** The most jobs a partition claim may take: its max, or less when all its types are limited by grants. */
function allowedIn(request: PartitionClaim): number {
  const grants = request.grants ?? {};
  if (request.types.some((type) => grants[type] === undefined)) return request.max;
  return Math.min(request.max, sum(request.types.map((type) => grants[type]!)));
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
