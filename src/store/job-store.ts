import type {
  JobError,
  JobLogLine,
  JobProgress,
  JobRecord,
  JobStatus,
  NewJob,
  WebhookDeliveryState,
  WebhookEvent,
} from '../jobs/job.js';

/**
 * The JobStore contract: the seam between the HTTP API / worker pool and where jobs live.
 * Both implementations (memory-job-store.ts, redis-job-store.ts) pass the same behaviour suite
 * (test/store/job-store.contract.ts).
 *
 * Guarantees
 * - Every method that changes what a client sees of a job does so atomically and bumps `version` by one
 *   (renewing a lease is not such a change).
 * - Reads never return a job past its `expiresAt`: it is as gone as a deleted one.
 * - `claim` hands each ready job to exactly one caller; a claimed job carries a fresh lease id.
 *   Every worker-side write (progress, finish, renew) takes that lease id and is refused (returns
 *   'lost' / false) once the lease lapsed and the job was reclaimed, canceled or deleted.
 * - Claim order (fair queueing): highest priority first; among ready jobs of equal priority, claims go round-robin
 *   over the tenants with ready work (a tenant of weight w gets w claims a round: `tenantWeights`), and within
 *   a tenant by earliest `runAt`, then id; with `fairByKey` jobs, round-robin over the tenant's concurrency
 *   keys first. A job is not claimed before `runAt`, nor while `keyConcurrency` jobs of its type with its
 *   tenant and key are running (such jobs do not hold back others). One tenant and no keys: the plain order.
 *   A partitioned Redis store keeps this order within each partition, and its claims take partitions in turn
 *   (job-store.contract.ts ContractOptions: what its contract run checks instead).
 * - Claim limits hold across every instance sharing the store: with `maxConcurrency` N no more than N jobs
 *   of the type are running; with `rate` no more than `max` of its claims fall in any `perMs` window.
 *   Finishing a job of a concurrency-limited type signals 'work' when jobs of that type wait.
 * - `list` order is by id (= creation time), descending by default, and pages by cursor without skipping
 *   or repeating jobs that do not change status between pages.
 * - Progress: `percent` never decreases within an attempt and is capped at 99 until the job succeeds
 *   (then 100); a new attempt starts from null.
 * - Failures of the backend surface as StoreUnavailableError, quickly (seconds), never as a hang.
 * - Webhooks: a job with a webhook gets a delivery queued, in the same atomic step as the change, for each
 *   event its webhook asks for: `job.started` (each claim), `job.progress` (at most one per 5 s) and the
 *   terminal `job.<status>`. A delivery carries the job as it was at that change and its id is
 *   `<job id>:<version>`. Deliveries outlive the job (they are kept until settled, at most ~25 h).
 *
 * - Finished jobs expire `jobTtlMs` (a store option) after they finished; active jobs never expire.
 * - Every ended attempt is appended to the job's `attempts` (worker, start, end, outcome, error). A job whose
 *   lease lapsed `poisonAfter` times (a store option, default DEFAULT_POISON_AFTER; 0 = never) fails with code `poison` instead of
 *   being handed to another worker to crash again.
 *
 * Deliberately not in the contract: connection handling, key layout, how TTL is enforced (only that
 * expired jobs are invisible), and the exact moment an expired lease is reclaimed (at the latest on the
 * next `claim` after it lapsed).
 */
export interface JobStore {
  readonly kind: 'memory' | 'redis';

  /**
   * Stores a new queued job (delayed when `runAt` is in the future) and signals idle workers. The job's id is the
   * answer's: a partitioned Redis store writes the partition it chose into it (job-id.ts withPartition), so callers
   * use `answer.id`, never `job.id` (createOnce likewise).
   */
  create(job: NewJob, options?: CreateOptions): Promise<JobRecord>;
  /**
   * `create`, unless the tenant's idempotency key already names a job: then that job (`replayed`), or
   * 'key-reused' when it was made from a request with another fingerprint. Atomic, so two concurrent
   * requests with one key make one job. A key naming a job that is gone names the new one.
   */
  createOnce(
    job: NewJob,
    idempotency: Idempotency,
    options?: CreateOptions,
  ): Promise<{ job: JobRecord; replayed: boolean } | 'key-reused'>;
  /** The job a tenant's idempotency key names, while the key is kept and the job exists. */
  findByIdempotencyKey(tenant: string, key: string): Promise<JobRecord | undefined>;
  /** The job, or undefined when it does not exist, was deleted or expired. */
  get(id: string): Promise<JobRecord | undefined>;
  /**
   * When a job that is no longer there went (deleted, purged or expired), for at least `jobTtlMs` after
   * it went; null for an id that never existed (or went longer ago), or, given `tenant`, was another's.
   */
  goneAt(id: string, tenant?: string): Promise<number | null>;
  list(query: ListQuery): Promise<ListPage>;

  /**
   * queued → canceled at once; running → cancel requested (the worker running it is signalled and the
   * job ends canceled); finished → unchanged. Undefined when the job does not exist.
   */
  cancel(
    id: string,
    now: number,
  ): Promise<{ job: JobRecord; outcome: 'canceled' | 'cancel-requested' | 'unchanged' } | undefined>;
  /** Removes the job and its result (signalling its worker if running). True when something was removed. */
  delete(id: string): Promise<boolean>;
  /** failed|canceled → queued now, granting `attemptBudget` more attempts; 'not-retryable' otherwise. */
  retry(id: string, now: number): Promise<JobRecord | 'not-retryable' | undefined>;
  /** Deletes finished jobs in `statuses` that completed before `completedBefore`; returns how many. */
  purge(statuses: JobStatus[], completedBefore: number): Promise<number>;
  stats(now: number): Promise<StoreStats>;
  /** Round trip to the backend in milliseconds; throws StoreUnavailableError when unreachable. */
  ping(): Promise<number>;
  /**
   * Whether the backend keeps jobs across its own restart: Redis with AOF and/or RDB snapshots (`rdb` null when
   * its `save` setting cannot be read, as on some managed Redis). Null for the memory store (it never does).
   */
  persistence(): Promise<{ aof: boolean; rdb: boolean | null } | null>;

  /** Leases up to `max` ready jobs of `types`; first re-queues (or fails) jobs whose lease lapsed. */
  claim(request: ClaimRequest): Promise<JobRecord[]>;
  /**
   * `finish` for each of `finishes`, in order, then `claim` (when given), as one atomic step: how a busy
   * worker spends one round trip per batch instead of two per job.
   */
  finishAndClaim(finishes: FinishRequest[], claim: ClaimRequest | null, now: number): Promise<FinishAndClaimResult>;
  /**
   * Extends the leases held. Answers the ids whose lease was lost (reclaimed, finished or gone) and those
   * still held but asked to cancel: a backstop should the cancel signal not have arrived.
   */
  renewLeases(leases: HeldLease[], leaseMs: number, now: number): Promise<RenewResult>;
  reportProgress(lease: HeldLease, progress: ProgressUpdate, now: number): Promise<boolean>;
  /**
   * Ends the attempt. A cancel requested meanwhile wins over any other outcome. `concurrencyLimited`: the
   * type has a fleet-wide concurrency limit, so the freed slot is signalled ('work') when jobs of it wait.
   */
  finish(
    lease: HeldLease,
    outcome: AttemptOutcome,
    now: number,
    options?: { concurrencyLimited?: boolean },
  ): Promise<FinishResult>;
  /**
   * The earliest time a claim could find work nobody signals: a delayed job's `runAt`, a lease's expiry,
   * or the end of a rate window that holds back ready jobs.
   * Idle workers sleep until then (or until a 'work' event). May be early, never late.
   */
  nextWakeAt(types: string[], limits?: Record<string, ClaimLimit>): Promise<number | null>;

  /**
   * Signals from any instance sharing the store: new work, cancel of a running job. Resolves once the
   * subscription is in place (signals sent after that reach the listener) to a function that ends it.
   */
  subscribe(listener: (event: StoreEvent) => void): Promise<() => void>;
  /**
   * Calls `listener` on every change of the job, from any instance, with its new version (null once
   * deleted). Resolves once the watch is in place, to a function that ends it. Changes may be coalesced
   * or (on a reconnect) missed: a watcher re-reads the job rather than trusting the version it hears.
   */
  watch(id: string, listener: (version: number | null) => void): Promise<() => void>;
  /**
   * Up to `max` webhook deliveries due at `now`, each leased for `leaseMs`: until it is settled or the lease
   * lapses, no other caller gets it. `nextDueAt`: when the earliest delivery not handed out falls due.
   */
  claimWebhookDeliveries(
    now: number,
    max: number,
    leaseMs: number,
  ): Promise<{ deliveries: WebhookDelivery[]; nextDueAt: number | null }>;
  /**
   * Ends an attempt of a delivery: drops it (delivered or given up) or schedules its retry at
   * `state.nextAttemptAt`; the job (when still there) shows `state` as its last delivery, as a change.
   */
  settleWebhookDelivery(delivery: WebhookDelivery, state: WebhookDeliveryState, now: number): Promise<void>;
  /**
   * Adds log lines a handler wrote (not fenced: the lines of an attempt whose lease lapsed are still its
   * lines). A job keeps its last LOG_LINES_MAX lines; they go when the job goes.
   */
  appendLogs(entries: { jobId: string; lines: JobLogLine[] }[]): Promise<void>;
  logs(id: string): Promise<JobLogLine[]>;
  /** A queued job waiting for a later `runAt` becomes ready now; 'not-delayed' for any other job. */
  runNow(id: string, now: number): Promise<JobRecord | 'not-delayed' | undefined>;
  /**
   * Writes a job exported from a store (export/import), keeping its id, state, attempts and result. A running
   * job comes in queued (its lease meant nothing here). 'exists' when the id is taken; 'expired' for a finished
   * job past its expiry.
   */
  importJob(job: JobRecord, logs: JobLogLine[], now: number): Promise<'imported' | 'exists' | 'expired'>;
  /** How many jobs of `type` with this tenant and concurrency key are running (what `keyConcurrency` caps). */
  runningWithKey(type: string, tenant: string, key: string): Promise<number>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** The most partitions a Redis store may spread jobs over (REDIS_PARTITIONS; redis-job-store.ts). */
export const MAX_PARTITIONS = 256;

/** Log lines a job keeps (the last ones). */
export const LOG_LINES_MAX = 200;
/** How many lapsed leases make a job poison when the store's `poisonAfter` option is not given (POISON_AFTER's default). */
export const DEFAULT_POISON_AFTER = 3;
/** The error of a job failed as poison. */
export const poisonError = (lapses: number): JobError => ({
  code: 'poison',
  message: `The worker running this job died or hung ${lapses} times; it is not run again (POISON_AFTER). Retry it from the admin API once fixed.`,
  retryable: false,
});

/** One event to POST to a job's webhook. */
export interface WebhookDelivery {
  /** `<job id>:<version>`. */
  id: string;
  jobId: string;
  event: WebhookEvent;
  url: string;
  createdAt: number;
  /** Attempts made before this one. */
  attempts: number;
  /** The job as it was when the event happened. */
  job: JobRecord;
}

/** A job with a webhook asking for job.progress gets at most one such delivery per this many ms. */
export const WEBHOOK_PROGRESS_INTERVAL_MS = 5000;
/** Deliveries are retried for this long after the event. */
export const WEBHOOK_RETRY_WINDOW_MS = 86_400_000;

/** Thrown by a store when its backend cannot be reached; the HTTP layer answers 503 with Retry-After. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** A tenant already has `limit` active (queued or running) jobs: the new one was not stored. */
export class TooManyActiveJobsError extends Error {
  constructor(readonly limit: number) {
    super(`the tenant already has ${limit} or more active jobs`);
    this.name = 'TooManyActiveJobsError';
  }
}

export interface CreateOptions {
  /** Refuse (TooManyActiveJobsError) when the tenant has this many queued or running jobs already. */
  maxActive?: number;
}

export interface Idempotency {
  /** The client's Idempotency-Key. */
  key: string;
  /** Canonical digest of the request: a repeat must carry the same. */
  fingerprint: string;
  /** How long the key is kept. */
  ttlMs: number;
}

export interface ListQuery {
  /** Only this tenant's jobs (fast: a tenant has its own indexes); all tenants' when absent. */
  tenant?: string;
  statuses?: JobStatus[];
  type?: string;
  createdAfter?: number;
  createdBefore?: number;
  limit: number;
  /** The id of the last job of the previous page. */
  after?: string;
  order: 'asc' | 'desc';
  /** Only running jobs whose lease lapsed at `now` (admin view). */
  stuckAt?: number;
  /** A further test each listed job must pass (admin search on fields no index holds). */
  match?: (job: JobRecord) => boolean;
  /**
   * With `match`: look at no more than this many jobs, so a page of a rare match over millions of jobs still
   * answers quickly; the page may then hold fewer than `limit` jobs, with `nextAfter` to go on from.
   */
  scanLimit?: number;
}

export interface ListPage {
  jobs: JobRecord[];
  /** Id of the last job when more may follow, else null. */
  nextAfter: string | null;
}

/**
 * Fleet-wide limits of one job type, enforced inside the atomic claim: the one shape of a type's limits
 * (TYPE_LIMITS parses into it; a handler's `max_concurrency` and `rate` are turned into it by the registry).
 */
export interface ClaimLimit {
  /** At most this many jobs of the type running at once across every instance. */
  maxConcurrency?: number;
  /** At most `max` claims in any window of `perMs` milliseconds across every instance. */
  rate?: { max: number; perMs: number };
  /** At most this many jobs of the type with one tenant's concurrency key running at once across every instance. */
  keyConcurrency?: number;
  /**
   * `key`: claims are shared fairly between a tenant's concurrency keys too (not only between tenants). Read at
   * submit (it decides where a job waits: NewJob.fairByKey), not by the claim.
   */
  fairBy?: 'tenant' | 'key';
}

export interface ClaimRequest {
  types: string[];
  /** Per-type limits; a type without an entry is unlimited. */
  limits?: Record<string, ClaimLimit>;
  /** TENANT_WEIGHTS: claims per fair round of a tenant (default 1). */
  tenantWeights?: Record<string, number>;
  max: number;
  workerId: string;
  leaseId: string;
  leaseMs: number;
  now: number;
}

export interface RenewResult {
  lost: string[];
  cancelRequested: string[];
}

export interface HeldLease {
  jobId: string;
  leaseId: string;
}

export interface ProgressUpdate {
  percent: number | null;
  step: string | null;
  message: string | null;
}

export type AttemptOutcome =
  | { kind: 'succeeded'; result: unknown }
  | { kind: 'failed'; error: JobError }
  /** Failed attempt with attempts left: back to queued, runnable from `runAt`. */
  | { kind: 'retry'; error: JobError; runAt: number }
  | { kind: 'canceled' }
  /** Shutdown: back to queued at once without counting the attempt. */
  | { kind: 'released' };

export type FinishResult = { status: JobStatus; version: number } | 'lost';

export interface FinishRequest {
  lease: HeldLease;
  outcome: AttemptOutcome;
  concurrencyLimited?: boolean;
}

export interface FinishAndClaimResult {
  /** One per finish request, in order. */
  results: FinishResult[];
  claimed: JobRecord[];
}

export type StoreEvent = { kind: 'work'; type: string } | { kind: 'cancel'; jobId: string } | { kind: 'webhook' };

export interface StoreStats {
  counts: Record<JobStatus, number>;
  byType: Record<string, Record<JobStatus, number>>;
  /** Queued jobs whose runAt has come. */
  ready: number;
  /** Queued jobs waiting for a future runAt (delay or retry backoff). */
  delayed: number;
  /** `delayed` per type: every type with a delayed job (a type with none may be missing or 0). */
  delayedByType: Record<string, number>;
  oldestReadyAgeS: number | null;
  finishedLastMinute: number;
  /** The tenants with the most queued jobs (then running), at most STATS_TOP_TENANTS, each with both counts. */
  tenants: { tenant: string; queued: number; running: number }[];
  /** Per type: how many concurrency keys have ready jobs held back by `keyConcurrency` (types with none: absent or 0). */
  keysAtCap: Record<string, number>;
}

/** How many tenants `stats` lists (the ones with the largest backlog). */
export const STATS_TOP_TENANTS = 20;

/** The tenants with the largest backlog (queued, then running), without those with no active job. */
export function topTenants(entries: StoreStats['tenants']): StoreStats['tenants'] {
  return entries
    .filter((entry) => entry.queued > 0 || entry.running > 0)
    .sort((a, b) => b.queued - a.queued || b.running - a.running || (a.tenant < b.tenant ? -1 : 1))
    .slice(0, STATS_TOP_TENANTS);
}

export const progressRules = {
  /** How a reported percent is stored: clamped to 0..99 and never below the current one. */
  next(current: JobProgress, reported: number | null): number | null {
    if (reported === null) return current.percent;
    const clamped = Math.min(99, Math.max(0, Math.floor(reported)));
    return current.percent === null ? clamped : Math.max(current.percent, clamped);
  },
};
