import type { AdminRole } from '../config.js';

/**
 * The OpsStore contract: the operator state that is not jobs, behind its own seam. Both implementations
 * (memory-ops-store.ts, redis-ops-store.ts) pass the same behaviour suite (test/ops/ops-store.contract.ts).
 * In Redis it lives under the job store's key prefix (`{prefix}:`, one hash tag, so Redis Cluster works) and
 * is shared by every instance; in memory it lives and dies with the process.
 *
 * - Bulk snapshots: the ids a bulk action's dry run matched, kept for a while under a random, unguessable
 *   token. `takeSnapshot` is one-shot (taking it deletes it), so a snapshot acts at most once.
 * - Type pauses: which job types workers must not claim, with who paused them, why and when. Every change
 *   (and every drain / resume of a worker) is published as a ControlMessage to `subscribeControl`
 *   listeners on every instance, so worker pools hear it at once instead of at their next poll.
 * - Worker registry: each worker pool `beat`s its WorkerRecord every `beatIntervalMs` (a store option,
 *   default 10 s), and also soon after its work changes (a job started or ended; coalesced by the pool's
 *   WorkerControl to a few writes a second at most), so `slots_busy` and `job_ids` follow within a second.
 *   `workers(now)` rates each: `live` (beat within 3 × beatIntervalMs), `stale` (within
 *   5 minutes), `dead` (older; dead records are dropped once their beat is more than an hour old).
 *   An operator's drain (`setDraining`) is kept apart from the beat record, so a beat never undoes it.
 * - Audit: every admin write (who, what, on what, how many jobs), newest first, the last 10,000 kept.
 * - Stats history: finished jobs (with wait and run times) and queue depth, in fixed time buckets, kept
 *   bounded (see HISTORY_WINDOWS) and, in Redis, across restarts.
 * - Declared job types: the types an operator declared for remote workers (no in-process handler), with
 *   their input's JSON Schema and defaults. Every change publishes `{kind: 'types'}`, so each instance
 *   re-reads them (src/job-types/declared-types.ts keeps the cache). The store does not check the schema.
 *
 * Failures of the backend surface as StoreUnavailableError (answered 503), quickly, never as a hang.
 */
export interface OpsStore {
  readonly kind: 'memory' | 'redis';

  /** Keeps `snapshot` for `ttlMs`; answers its token (random, unguessable). */
  saveSnapshot(snapshot: BulkSnapshot, ttlMs: number): Promise<string>;
  /** The snapshot, deleting it (one-shot); undefined when unknown, expired or already taken. */
  takeSnapshot(token: string): Promise<BulkSnapshot | undefined>;

  /** Workers stop claiming jobs of `type` (running ones finish); replaces an earlier pause of it. Publishes `pause`. */
  pauseType(type: string, pause: TypePause): Promise<void>;
  /** Lifts the pause; true when the type was paused. Publishes `resume` (also when it was not paused). */
  resumeType(type: string): Promise<boolean>;
  /** Every paused type with who paused it, why and when. */
  pausedTypes(): Promise<Record<string, TypePause>>;
  /**
   * Calls `listener` on every pause, resume and drain change, made on any instance sharing the store (this
   * one included). Resolves once the subscription is in place, to a function that ends it. Messages may be
   * missed during a reconnect: a worker pool also re-reads `pausedTypes` / `isDraining` now and then.
   */
  subscribeControl(listener: (message: ControlMessage) => void): Promise<() => void>;

  /** Stores (replaces) the worker's record. `record.draining` is the pool's own view; see `setDraining`. */
  beat(record: WorkerRecord): Promise<void>;
  /**
   * Every known worker with its state at `now`, ordered by id; `draining` is true when an operator drained
   * it or the pool itself reports draining (shutting down). Drops dead records older than an hour.
   */
  workers(now: number): Promise<WorkerView[]>;
  /**
   * An operator drains (true) or resumes (false) a worker: kept apart from its beat record, so its beats do not
   * undo it. False (and nothing stored) when no worker with this id is known. Publishes `drain`.
   */
  setDraining(id: string, draining: boolean): Promise<boolean>;
  /** Whether an operator drained this worker (what a worker pool checks besides the control messages). */
  isDraining(id: string): Promise<boolean>;
  /** One worker's record as `workers` lists it (state at `now`, drain included), or undefined when unknown. */
  worker(id: string, now: number): Promise<WorkerView | undefined>;
  /** Forgets a worker's record and any drain of it (a remote worker that deregistered); true when it was known. */
  removeWorker(id: string): Promise<boolean>;
  /**
   * Records a call of the registered worker `id` at `now` in one atomic step: `beat_at` becomes `now`, its held
   * leases change as `change` says and `leases_lost` grows by `change.lost`. Atomic, so calls of one worker
   * on several instances at once never undo each other's lease changes. Undefined (and nothing written) when
   * no such worker is registered: a call that ends after the worker deregistered does not bring it back.
   */
  recordWorkerCall(id: string, change: WorkerCallChange, now: number): Promise<WorkerRecord | undefined>;

  /** Appends an entry to the audit log (the oldest beyond AUDIT_LOG_CAP are dropped). */
  audit(entry: AuditEntry): Promise<void>;
  /** Newest first: up to `limit` entries older than the cursor `before` (the `next_cursor` of the previous page). */
  auditLog(query: { limit: number; before?: string }): Promise<AuditPage>;

  /** Counts finished jobs and their wait and run times (worker pools send them in batches). */
  recordFinished(samples: FinishedSample[]): Promise<void>;
  /** The queue depth (ready jobs) of each type at `at`; a bucket shows the latest depth recorded in it. */
  recordDepth(at: number, depthByType: Record<string, number>): Promise<void>;
  /** The window ending at `now`, oldest bucket first, every bucket present (empty ones with no types). */
  history(window: HistoryWindow, now: number): Promise<History>;

  /**
   * Stores `def` under `def.type`, replacing an earlier declaration of it (which keeps its `created_at`);
   * answers what is stored now and whether the type was new. Publishes `types`.
   */
  declareType(def: DeclaredTypeDef): Promise<{ def: DeclaredTypeDef; created: boolean }>;
  /** Forgets the declaration; true when the type was declared. Publishes `types` (also when it was not). */
  removeDeclaredType(type: string): Promise<boolean>;
  /** Every declared type, ordered by type. */
  declaredTypes(): Promise<DeclaredTypeDef[]>;

  /** Ends the control subscription (never closes a Redis client it was given). Idempotent. */
  close(): Promise<void>;
}

export type BulkAction = 'retry' | 'cancel' | 'delete';

/** What a bulk action's dry run matched: the action, the job ids, the filter that found them, who asked. */
export interface BulkSnapshot {
  action: BulkAction;
  ids: string[];
  filter?: unknown;
  /** The admin key id that made the dry run. */
  by: string;
}

export interface TypePause {
  /** The admin key id that paused it. */
  by: string;
  reason: string;
  /** Epoch ms. */
  at: number;
}

export type ControlMessage =
  | { kind: 'pause'; type: string; pause: TypePause }
  | { kind: 'resume'; type: string }
  | { kind: 'drain'; workerId: string; draining: boolean }
  /** A declared job type was added, replaced or removed: re-read `declaredTypes`. */
  | { kind: 'types' };

/**
 * A job type declared by an operator (PUT /admin/job-types/{type}) and served by remote workers. Null means
 * "not set" (the service's default applies). Times are epoch ms.
 */
export interface DeclaredTypeDef {
  type: string;
  /** The input's JSON Schema (2020-12), as the operator gave it. */
  input_schema: Record<string, unknown>;
  description: string | null;
  /** Default timeout of an attempt (a job's own `timeout_s` overrides it). */
  timeout_s: number | null;
  /** Default attempts (a job's own `max_attempts` overrides it). */
  max_attempts: number | null;
  /** At most this many jobs of the type running at once across the fleet. */
  max_concurrency: number | null;
  /** At most `max` claims per `per_s` seconds across the fleet. */
  rate: { max: number; per_s: number } | null;
  /** The lease a remote worker gets on a job of this type, in seconds (the service's default when null). */
  lease_s: number | null;
  /**
   * At most this many jobs of the type with one tenant's concurrency key running at once across the fleet. This and
   * `fair_by` are absent from declarations stored before they existed: read absent as null.
   */
  key_concurrency?: number | null;
  /** Who takes turns at claims: `tenant` (default) or `key` (a tenant's concurrency keys too). */
  fair_by?: 'tenant' | 'key' | null;
  created_at: number;
  updated_at: number;
}

/** What a worker pool reports on each beat. Times are epoch ms. */
export interface WorkerRecord {
  /** The pool's worker id (unique per process). */
  id: string;
  host: string;
  pid: number;
  /** The service version it runs. */
  version: string;
  /** ROLE of its instance: `all` or `worker`. */
  role: string;
  started_at: number;
  beat_at: number;
  /** The job types it claims. */
  types: string[];
  slots_total: number;
  slots_busy: number;
  /** The jobs it is running. */
  job_ids: string[];
  /** Leases it lost since it started (its jobs were reclaimed, e.g. after it stalled). */
  leases_lost: number;
  /** The pool's own view: it is draining (shutting down, or it heard an operator's drain). */
  draining: boolean;
  /**
   * `remote`: a worker process that pulls jobs over HTTP (POST /v1/workers), whose record the service writes on
   * each of its calls (`beat_at` is its last call, `pid` 0, `host` its address, `role` `remote`); absent or
   * `in-process`: a worker pool of an instance. The fields below are a remote worker's only.
   */
  kind?: 'in-process' | 'remote';
  /** The name the worker gave itself. */
  name?: string;
  labels?: Record<string, string>;
  /** The name of the worker key that registered it: only that key may call for it. */
  key_name?: string;
  /** Its lease length, and the heartbeat interval it was told: its beat interval when rating its state. */
  lease_s?: number;
  heartbeat_s?: number;
  /** The leases it holds, as the protocol spells them (`<job id>.<lease>`); `job_ids` are their jobs. */
  lease_ids?: string[];
}

/** How a remote worker's call changed the leases it holds (see OpsStore.recordWorkerCall). */
export interface WorkerCallChange {
  /** Leases it was handed (a claim). */
  add?: HeldRemoteLease[];
  /** Leases it gave up (settled, released, lost). */
  remove?: string[];
  /** Everything it holds now (a heartbeat lists them): replaces the leases kept, before `add` and `remove`. */
  replace?: HeldRemoteLease[];
  /** Leases it lost in this call. */
  lost?: number;
}

export interface HeldRemoteLease {
  leaseId: string;
  jobId: string;
}

/** `record` after the call `change` at `now`: the one rule both stores apply (the Redis store in its script). */
export function afterWorkerCall(record: WorkerRecord, change: WorkerCallChange, now: number): WorkerRecord {
  const held = new Map<string, string>();
  if (change.replace) for (const lease of change.replace) held.set(lease.leaseId, lease.jobId);
  else (record.lease_ids ?? []).forEach((leaseId, i) => held.set(leaseId, record.job_ids[i] ?? ''));
  for (const lease of change.add ?? []) held.set(lease.leaseId, lease.jobId);
  for (const leaseId of change.remove ?? []) held.delete(leaseId);
  return {
    ...record,
    beat_at: now,
    lease_ids: [...held.keys()],
    job_ids: [...held.values()],
    slots_busy: held.size,
    leases_lost: record.leases_lost + (change.lost ?? 0),
  };
}

export type WorkerState = 'live' | 'stale' | 'dead';

export type WorkerView = WorkerRecord & { state: WorkerState };

/** A worker is `live` while its last beat is younger than this many beat intervals. */
export const LIVE_BEATS = 3;
/** … `stale` while younger than this, `dead` after. */
export const STALE_AFTER_MS = 5 * 60_000;
/** Dead workers' records are dropped once their beat is this old. */
export const PRUNE_DEAD_AFTER_MS = 60 * 60_000;
export const DEFAULT_BEAT_INTERVAL_MS = 10_000;

/** A worker's state at `now`: live within LIVE_BEATS beats, stale within 5 minutes, dead after. */
/** The workers that claim jobs now: live and not draining (what `alarm` and /health count). */
export const servingWorkers = (workers: WorkerView[]): WorkerView[] =>
  workers.filter((worker) => worker.state === 'live' && !worker.draining);

export function workerState(beatAt: number, now: number, beatIntervalMs: number): WorkerState {
  const age = now - beatAt;
  if (age < LIVE_BEATS * beatIntervalMs) return 'live';
  if (age < STALE_AFTER_MS) return 'stale';
  return 'dead';
}

/**
 * A record as listed: its state (rated by its own heartbeat interval when it has one, a remote worker's, else
 * the store's `beatIntervalMs`) and an operator's drain.
 */
export function workerView(
  record: WorkerRecord,
  operatorDrained: boolean,
  now: number,
  beatIntervalMs: number,
): WorkerView {
  const interval = record.heartbeat_s !== undefined ? record.heartbeat_s * 1000 : beatIntervalMs;
  return { ...record, draining: record.draining || operatorDrained, state: workerState(record.beat_at, now, interval) };
}

export interface AuditEntry {
  /** Epoch ms. */
  at: number;
  /** An admin key (its id and role), or `api`: a client's write through /v1 (schedules), `key_id` its tenant or `open`. */
  actor: { key_id: string; role: AdminRole | 'api' };
  /** What was done: `type.pause`, `worker.drain`, `bulk.retry`, `job.cancel`, … */
  action: string;
  /** What it was done to: a job id, a type, a worker id, `filter`, `ids` … */
  target: string;
  /** How many jobs (or things) it changed. */
  count: number;
  detail?: Record<string, unknown>;
}

/** An entry as listed, with its id (increasing: later entries have larger ids). */
export type AuditRecord = AuditEntry & { id: string };

export interface AuditPage {
  entries: AuditRecord[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next_cursor: string | null;
}

/** The audit log keeps the newest this many entries. */
export const AUDIT_LOG_CAP = 10_000;

/** One finished job, as a worker pool reports it. */
export interface FinishedSample {
  type: string;
  status: 'succeeded' | 'failed' | 'canceled';
  /** From becoming runnable (run_at) to the start of its last attempt; null when it never started. */
  waitMs: number | null;
  /** Of its last attempt; null when it never ran. */
  runMs: number | null;
  /** When it finished, epoch ms. */
  at: number;
}

export type HistoryWindow = '1h' | '24h' | '7d';

/**
 * The bucket width of each window, and how long buckets of that width are kept (a little more than the
 * window, so the oldest bucket of a window is whole): one minute for 1 h, ten minutes for 24 h, one hour
 * for 7 d. A finished sample is counted in all three at once: that is the downsampling.
 */
export const HISTORY_WINDOWS: Record<HistoryWindow, { windowMs: number; bucketMs: number; keepMs: number }> = {
  '1h': { windowMs: 3_600_000, bucketMs: 60_000, keepMs: 2 * 3_600_000 },
  '24h': { windowMs: 86_400_000, bucketMs: 600_000, keepMs: 25 * 3_600_000 },
  '7d': { windowMs: 7 * 86_400_000, bucketMs: 3_600_000, keepMs: 8 * 86_400_000 },
};

export interface Percentiles {
  /** How many samples the percentiles come from. */
  count: number;
  p50: number;
  p95: number;
  p99: number;
}

/** One type in one bucket. */
export interface TypeHistory {
  succeeded: number;
  failed: number;
  canceled: number;
  /** succeeded + failed + canceled. */
  finished: number;
  /** The latest queue depth recorded in the bucket; null when none was. */
  depth: number | null;
  /** Milliseconds, from log-scale histograms: each value within ~9 % of the exact percentile. */
  wait_ms: Percentiles | null;
  run_ms: Percentiles | null;
}

export interface HistoryBucket {
  /** Start of the bucket, epoch ms. */
  at: number;
  /** Only the types with something recorded in the bucket. */
  types: Record<string, TypeHistory>;
}

export interface History {
  window: HistoryWindow;
  bucket_ms: number;
  /** Start of the first bucket and end of the last (epoch ms). */
  from: number;
  to: number;
  buckets: HistoryBucket[];
}
