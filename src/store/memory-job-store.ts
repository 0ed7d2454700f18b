import {
  emptyProgress,
  isTerminal,
  jobStatuses,
  leaseExpiredError,
  type AttemptRecord,
  type CacheRequest,
  type JobError,
  type JobLogLine,
  type JobRecord,
  type JobStatus,
  type NewJob,
  type WebhookDeliveryState,
  type WebhookEvent,
} from '../jobs/job.js';
import { highestIdAt, lowestIdAt } from '../jobs/job-id.js';
import { MinHeap } from './min-heap.js';
import { claimOrder, MemoryFairQueue, type InTurn, type QueueEntry } from './memory-fair-queue.js';
import {
  progressRules,
  TooManyActiveJobsError,
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
  DEFAULT_POISON_AFTER,
  topTenants,
  LOG_LINES_MAX,
  poisonError,
  WEBHOOK_PROGRESS_INTERVAL_MS,
  WEBHOOK_RETRY_WINDOW_MS,
} from './job-store.js';

interface StoredJob extends JobRecord {
  queueSeq: number;
  /** When the last job.progress webhook delivery was queued. */
  webhookProgressAt: number;
  /** Set on a job whose result later submits may reuse. */
  cacheLead: CacheRequest | null;
  /** How many of its leases lapsed (POISON_AFTER). */
  lapses: number;
  /** Its keys take turns in the fair queue (fair_by key at submit). */
  fairByKey: boolean;
}

/**
 * Jobs in this process's memory: lost on restart, not shared between instances. The fallback when no
 * Redis is configured, and a fast store for tests. Same contract as the Redis store.
 */
export class MemoryJobStore implements JobStore {
  readonly kind = 'memory' as const;
  private readonly jobs = new Map<string, StoredJob>();
  /** All ids, ascending: ids sort by creation time, so this is the listing index. */
  private readonly ids: string[] = [];
  private readonly fair = new MemoryFairQueue(
    (entry) => this.isCurrent(entry),
    (id) => this.jobs.get(id)?.fairByKey === true,
  );
  private readonly delayed = new MinHeap<QueueEntry>(
    (a, b) => a.runAt < b.runAt || (a.runAt === b.runAt && a.id < b.id),
  );
  private readonly running = new Set<string>();
  /** `tenant:key` → the job an idempotency key names. */
  private readonly idempotencyKeys = new Map<string, { jobId: string; fingerprint: string; expiresAt: number }>();
  private readonly watchers = new Map<string, Set<(version: number | null) => void>>();
  /** Id → when a deleted or expired job went. */
  private readonly gone = new Map<string, { at: number; tenant: string }>();
  private readonly finishedPerSecond = new Map<number, number>();
  /** Claim times of rate-limited types within their window. */
  private readonly rateLogs = new Map<string, number[]>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  /** Webhook deliveries not yet settled, with when each is due (or its lease lapses). */
  private readonly deliveries = new Map<string, { delivery: WebhookDelivery; dueAt: number }>();
  /** Result reuse: cache digest → the job whose result is reused (`expiresAt` null while it is active). */
  private readonly cacheEntries = new Map<string, { jobId: string; expiresAt: number | null }>();
  /** Leader id → the jobs that finish when it does. */
  private readonly followers = new Map<string, Set<string>>();
  private readonly logLines = new Map<string, JobLogLine[]>();
  private nextSeq = 1;
  private clock = 0;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: { jobTtlMs: number; sweepIntervalMs?: number; poisonAfter?: number }) {
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), options.sweepIntervalMs ?? 10_000);
    this.sweepTimer.unref();
  }

  async createOnce(
    newJob: NewJob,
    idempotency: Idempotency,
    options: CreateOptions = {},
  ): Promise<{ job: JobRecord; replayed: boolean } | 'key-reused'> {
    const now = Date.now();
    const name = `${newJob.tenant}:${idempotency.key}`;
    const existing = this.idempotencyKeys.get(name);
    if (existing && existing.expiresAt > now) {
      if (existing.fingerprint !== idempotency.fingerprint) return 'key-reused';
      const job = this.live(existing.jobId, now);
      if (job) return { job: structuredClone(stripInternal(job)), replayed: true };
    }
    const job = this.createNow(newJob, options); // synchronous: a concurrent repeat sees the key set below
    this.idempotencyKeys.set(name, {
      jobId: newJob.id,
      fingerprint: idempotency.fingerprint,
      expiresAt: now + idempotency.ttlMs,
    });
    return { job, replayed: false };
  }

  async findByIdempotencyKey(tenant: string, key: string): Promise<JobRecord | undefined> {
    const entry = this.idempotencyKeys.get(`${tenant}:${key}`);
    return entry && entry.expiresAt > Date.now() ? this.get(entry.jobId) : undefined;
  }

  /** Counts by scanning: the memory store is for one process and tests, not for a million jobs. */
  private refuseOverActiveLimit(tenant: string, { maxActive }: CreateOptions): void {
    if (maxActive === undefined) return;
    let active = 0;
    for (const job of this.jobs.values())
      if (job.tenant === tenant && (job.status === 'queued' || job.status === 'running')) active++;
    if (active >= maxActive) throw new TooManyActiveJobsError(maxActive);
  }

  async create(newJob: NewJob, options: CreateOptions = {}): Promise<JobRecord> {
    return this.createNow(newJob, options);
  }

  private createNow(newJob: NewJob, options: CreateOptions): JobRecord {
    const { cache, fairByKey, ...fields } = newJob;
    const now = newJob.createdAt;
    const leader = cache?.mode === 'reuse' ? this.reusable(cache, now) : undefined;
    if (leader?.status !== 'succeeded') this.refuseOverActiveLimit(newJob.tenant, options);
    const job: StoredJob = {
      ...fields,
      status: 'queued',
      progress: emptyProgress(),
      result: null,
      error: null,
      attempt: 0,
      attemptBudget: newJob.maxAttempts,
      version: 1,
      startedAt: null,
      updatedAt: newJob.createdAt,
      completedAt: null,
      expiresAt: null,
      lease: null,
      cancelRequested: false,
      webhook: newJob.webhook ?? null,
      webhookDelivery: null,
      cachedFrom: leader?.id ?? null,
      workerId: null,
      attempts: [],
      queueSeq: 0,
      webhookProgressAt: 0,
      cacheLead: null,
      lapses: 0,
      concurrencyKey: newJob.concurrencyKey ?? null,
      scheduleId: newJob.scheduleId ?? null,
      scheduledFor: newJob.scheduleId ? (newJob.scheduledFor ?? newJob.runAt) : null,
      fairByKey: fairByKey === true,
    };
    this.jobs.set(job.id, job);
    this.insertId(job.id);
    if (leader?.status === 'succeeded') {
      this.finishAsLeaderDid(job, leader, now);
    } else if (leader) {
      let following = this.followers.get(leader.id);
      if (!following) this.followers.set(leader.id, (following = new Set()));
      following.add(job.id); // not queued for a worker: the leader's finish ends it
    } else {
      if (cache) {
        job.cacheLead = cache;
        this.cacheEntries.set(cache.digest, { jobId: job.id, expiresAt: null });
      }
      this.enqueue(job, now);
    }
    return structuredClone(stripInternal(job));
  }

  /** The job a submit may reuse: one that succeeded within the TTL, or one still queued or running. */
  private reusable(cache: CacheRequest, now: number): StoredJob | undefined {
    const entry = this.cacheEntries.get(cache.digest);
    const job = entry && this.live(entry.jobId, now);
    if (!job) return undefined;
    if (job.status === 'succeeded' && job.completedAt! >= now - cache.ttlMs) return job;
    return job.status === 'queued' || job.status === 'running' ? job : undefined;
  }

  private finishAsLeaderDid(job: StoredJob, leader: StoredJob, now: number): void {
    if (leader.status === 'succeeded') {
      job.result = structuredClone(leader.result);
      job.error = null;
      job.progress = { ...job.progress, percent: 100, updatedAt: now };
    } else job.error = leader.error;
    this.finalize(job, leader.status, now);
  }

  /** A leader finished (or was deleted): its followers finish as it did, or run on their own when it was canceled. */
  private settleFollowers(leader: StoredJob, status: JobStatus, now: number): void {
    const { digest, ttlMs } = leader.cacheLead!;
    const entry = this.cacheEntries.get(digest);
    if (entry?.jobId === leader.id) {
      if (status === 'succeeded') entry.expiresAt = now + ttlMs;
      else this.cacheEntries.delete(digest);
    }
    for (const id of this.followers.get(leader.id) ?? []) {
      const follower = this.jobs.get(id);
      if (!follower || follower.status !== 'queued' || follower.cachedFrom !== leader.id) continue;
      if (status === 'succeeded' || status === 'failed') this.finishAsLeaderDid(follower, leader, now);
      else {
        follower.cachedFrom = null;
        follower.runAt = now;
        this.touch(follower, now);
        this.enqueue(follower, now);
      }
    }
    this.followers.delete(leader.id);
  }

  async goneAt(id: string, tenant?: string): Promise<number | null> {
    const now = Date.now();
    const job = this.jobs.get(id);
    if (job?.expiresAt != null && job.expiresAt <= now)
      return tenant === undefined || job.tenant === tenant ? job.expiresAt : null; // not yet swept
    const gone = this.gone.get(id);
    if (!gone || gone.at + this.options.jobTtlMs <= now) return null;
    return tenant === undefined || gone.tenant === tenant ? gone.at : null;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const job = this.live(id, Date.now());
    return job && structuredClone(stripInternal(job));
  }

  async list(query: ListQuery): Promise<ListPage> {
    const now = Date.now();
    const statuses = query.statuses && query.statuses.length > 0 ? new Set(query.statuses) : undefined;
    const low = query.createdAfter !== undefined ? lowestIdAt(query.createdAfter + 1) : '';
    const high = query.createdBefore !== undefined ? highestIdAt(query.createdBefore - 1) : '\uffff';
    const descending = query.order === 'desc';
    const found: JobRecord[] = [];
    let scanned = 0;
    let index = descending
      ? (query.after !== undefined ? this.lowerIndex(query.after) : this.ids.length) - 1
      : query.after !== undefined
        ? this.upperIndex(query.after)
        : 0;
    for (; index >= 0 && index < this.ids.length; index += descending ? -1 : 1) {
      const id = this.ids[index]!;
      if (id < low || id > high) {
        if (descending ? id < low : id > high) break;
        continue;
      }
      if (query.match && scanned >= (query.scanLimit ?? 5000))
        return { jobs: found, nextAfter: this.ids[index + (descending ? 1 : -1)]! };
      const job = this.live(id, now);
      if (!job) continue;
      scanned++;
      if (statuses && !statuses.has(job.status)) continue;
      if (query.type !== undefined && job.type !== query.type) continue;
      if (query.tenant !== undefined && job.tenant !== query.tenant) continue;
      if (query.stuckAt !== undefined && !(job.status === 'running' && job.lease && job.lease.until <= query.stuckAt))
        continue;
      if (query.match && !query.match(job)) continue;
      if (found.length === query.limit) return { jobs: found, nextAfter: found[found.length - 1]!.id };
      found.push(structuredClone(stripInternal(job)));
    }
    return { jobs: found, nextAfter: null };
  }

  async cancel(id: string, now: number): ReturnType<JobStore['cancel']> {
    const job = this.live(id, now);
    if (!job) return undefined;
    if (job.status === 'queued') {
      this.finalize(job, 'canceled', now);
      return { job: structuredClone(stripInternal(job)), outcome: 'canceled' };
    }
    if (job.status === 'running') {
      if (!job.cancelRequested) {
        job.cancelRequested = true;
        this.touch(job, now);
        this.emit({ kind: 'cancel', jobId: id });
      }
      return { job: structuredClone(stripInternal(job)), outcome: 'cancel-requested' };
    }
    return { job: structuredClone(stripInternal(job)), outcome: 'unchanged' };
  }

  async delete(id: string): Promise<boolean> {
    const job = this.jobs.get(id);
    if (!job) return false;
    if (job.status === 'running') this.emit({ kind: 'cancel', jobId: id });
    const now = Date.now();
    if (job.cacheLead && (job.status === 'queued' || job.status === 'running'))
      this.settleFollowers(job, 'canceled', now);
    const live = job.expiresAt === null || job.expiresAt > now;
    this.remove(job, live ? now : job.expiresAt!);
    return live;
  }

  async retry(id: string, now: number): ReturnType<JobStore['retry']> {
    const job = this.live(id, now);
    if (!job) return undefined;
    if (job.status !== 'failed' && job.status !== 'canceled') return 'not-retryable';
    job.maxAttempts = job.attempt + job.attemptBudget;
    job.completedAt = null;
    job.expiresAt = null;
    job.cancelRequested = false;
    job.cachedFrom = null;
    job.progress = emptyProgress();
    job.runAt = now;
    this.setStatus(job, 'queued');
    this.touch(job, now);
    this.enqueue(job, now);
    return structuredClone(stripInternal(job));
  }

  async purge(statuses: JobStatus[], completedBefore: number): Promise<number> {
    let deleted = 0;
    for (const job of [...this.jobs.values()]) {
      if (statuses.includes(job.status) && isTerminal(job.status) && (job.completedAt ?? Infinity) < completedBefore) {
        this.remove(job, Date.now());
        deleted++;
      }
    }
    return deleted;
  }

  async stats(now: number): Promise<StoreStats> {
    this.promoteDue(now);
    const counts = Object.fromEntries(jobStatuses.map((s) => [s, 0])) as Record<JobStatus, number>;
    const byType: StoreStats['byType'] = {};
    let ready = 0;
    let delayed = 0;
    const delayedByType: Record<string, number> = {};
    let oldestReady: number | null = null;
    for (const job of this.jobs.values()) {
      if (job.expiresAt !== null && job.expiresAt <= now) continue;
      counts[job.status]++;
      const perType = (byType[job.type] ??= Object.fromEntries(jobStatuses.map((s) => [s, 0])) as Record<
        JobStatus,
        number
      >);
      perType[job.status]++;
      if (job.status === 'queued') {
        if (job.runAt <= now) {
          ready++;
          oldestReady = Math.min(oldestReady ?? Infinity, job.runAt);
        } else {
          delayed++;
          delayedByType[job.type] = (delayedByType[job.type] ?? 0) + 1;
        }
      }
    }
    const perTenant = new Map<string, { tenant: string; queued: number; running: number }>();
    for (const job of this.jobs.values()) {
      if (job.status !== 'queued' && job.status !== 'running') continue;
      let entry = perTenant.get(job.tenant);
      if (!entry) perTenant.set(job.tenant, (entry = { tenant: job.tenant, queued: 0, running: 0 }));
      entry[job.status]++;
    }
    let finishedLastMinute = 0;
    const second = Math.floor(now / 1000);
    for (let s = second - 59; s <= second; s++) finishedLastMinute += this.finishedPerSecond.get(s) ?? 0;
    return {
      counts,
      byType,
      ready,
      delayed,
      delayedByType,
      oldestReadyAgeS: oldestReady === null ? null : Math.max(0, (now - oldestReady) / 1000),
      finishedLastMinute,
      tenants: topTenants([...perTenant.values()]),
      keysAtCap: this.fair.keysAtCap(),
    };
  }

  async ping(): Promise<number> {
    return 0;
  }

  async persistence(): Promise<null> {
    return null;
  }

  async claim(request: ClaimRequest): Promise<JobRecord[]> {
    return this.claimReady(request);
  }

  /**
   * Claim-lib.lua's order: jobs in turn (memory-fair-queue.ts) across the types by ready score. (The Redis store plans
   * several turns at once where it can; the order is the same, which the contract suite checks.)
   */
  private claimReady(request: ClaimRequest): JobRecord[] {
    const now = this.monotonic(request.now);
    this.reapLapsedLeases(now);
    this.promoteDue(now);
    const budget = this.claimBudgets(request, now);
    const claimed: JobRecord[] = [];
    const nextOf = new Map<string, InTurn>();
    const refill = (type: string): void => {
      nextOf.delete(type);
      if ((budget.get(type) ?? 0) <= 0) return;
      const inTurn = this.fair.nextInTurn(type, request.limits?.[type]?.keyConcurrency ?? 0);
      if (inTurn) nextOf.set(type, inTurn);
    };
    for (const type of request.types) refill(type);
    while (claimed.length < request.max) {
      let best: string | undefined;
      for (const type of request.types) {
        const next = nextOf.get(type);
        if (next && (best === undefined || claimOrder(next.entry, nextOf.get(best)!.entry))) best = type;
      }
      if (best === undefined) break;
      const type = best;
      const next = nextOf.get(type)!;
      const job = this.jobs.get(next.entry.id)!;
      job.queueSeq = 0; // its queue entry is stale from here on
      const limit = request.limits?.[type];
      this.fair.tookTurn(
        type,
        next,
        job.fairByKey,
        limit?.keyConcurrency ?? 0,
        request.tenantWeights?.[job.tenant] ?? 1,
      );
      budget.set(type, budget.get(type)! - 1);
      if (limit?.rate) this.rateLog(type).push(now);
      job.attempt++;
      job.startedAt = now;
      job.progress = emptyProgress();
      job.lease = { id: request.leaseId, workerId: request.workerId, until: now + request.leaseMs };
      job.workerId = request.workerId;
      this.setStatus(job, 'running');
      this.touch(job, now);
      this.queueWebhook(job, 'job.started', now);
      claimed.push(structuredClone(stripInternal(job)));
      refill(type);
    }
    return claimed;
  }

  /** How many jobs of each type this claim may start under the fleet-wide limits (this process is the fleet). */
  /** Claims and finishes never use a time earlier than the last one used (as in the Redis store). */
  private monotonic(now: number): number {
    this.clock = Math.max(this.clock, now);
    return this.clock;
  }

  private claimBudgets(request: ClaimRequest, now: number): Map<string, number> {
    const budget = new Map<string, number>();
    for (const type of request.types) {
      const limit = request.limits?.[type];
      let allowed = request.max;
      if (limit?.maxConcurrency !== undefined) {
        let running = 0;
        for (const id of this.running) if (this.jobs.get(id)?.type === type) running++;
        allowed = Math.min(allowed, limit.maxConcurrency - running);
      }
      if (limit?.rate) {
        const log = this.rateLog(type);
        // The window is closed, [now - perMs, now], as in the Redis store.
        while (log.length > 0 && log[0]! < now - limit.rate.perMs) log.shift();
        allowed = Math.min(allowed, limit.rate.max - log.length);
      }
      budget.set(type, allowed);
    }
    return budget;
  }

  private rateLog(type: string): number[] {
    let log = this.rateLogs.get(type);
    if (!log) this.rateLogs.set(type, (log = []));
    return log;
  }

  async renewLeases(leases: HeldLease[], leaseMs: number, now: number): Promise<RenewResult> {
    const result: RenewResult = { lost: [], cancelRequested: [] };
    for (const lease of leases) {
      const job = this.heldJob(lease);
      if (!job) {
        result.lost.push(lease.jobId);
        continue;
      }
      job.lease!.until = now + leaseMs;
      if (job.cancelRequested) result.cancelRequested.push(job.id);
    }
    return result;
  }

  async reportProgress(lease: HeldLease, update: ProgressUpdate, now: number): Promise<boolean> {
    const job = this.heldJob(lease);
    if (!job) return false;
    job.progress = {
      percent: progressRules.next(job.progress, update.percent),
      step: update.step ?? job.progress.step,
      message: update.message ?? job.progress.message,
      updatedAt: now,
    };
    this.touch(job, now);
    if (now - job.webhookProgressAt >= WEBHOOK_PROGRESS_INTERVAL_MS && this.queueWebhook(job, 'job.progress', now))
      job.webhookProgressAt = now;
    return true;
  }

  async finish(
    lease: HeldLease,
    outcome: AttemptOutcome,
    now: number,
    options: { concurrencyLimited?: boolean } = {},
  ): Promise<FinishResult> {
    return this.finishHeld(lease, outcome, now, options);
  }

  private finishHeld(
    lease: HeldLease,
    outcome: AttemptOutcome,
    at: number,
    options: { concurrencyLimited?: boolean },
  ): FinishResult {
    const now = this.monotonic(at);
    const job = this.heldJob(lease);
    if (!job) return 'lost';
    if (options.concurrencyLimited && this.fair.hasReady(job.type)) this.emit({ kind: 'work', type: job.type });
    job.lease = null;
    this.running.delete(job.id);
    const ended: AttemptRecord['outcome'] = job.cancelRequested ? 'canceled' : outcome.kind;
    const error =
      !job.cancelRequested && (outcome.kind === 'failed' || outcome.kind === 'retry') ? outcome.error : null;
    this.endAttempt(job, ended, error, now);
    if (job.cancelRequested) {
      this.finalize(job, 'canceled', now);
    } else if (outcome.kind === 'succeeded') {
      job.result = outcome.result;
      job.error = null;
      job.progress = { ...job.progress, percent: 100, updatedAt: now };
      this.finalize(job, 'succeeded', now);
    } else if (outcome.kind === 'failed') {
      job.error = outcome.error;
      this.finalize(job, 'failed', now);
    } else if (outcome.kind === 'canceled') {
      this.finalize(job, 'canceled', now);
    } else if (outcome.kind === 'retry') {
      job.error = outcome.error;
      job.runAt = outcome.runAt;
      this.requeue(job, now);
    } else {
      job.attempt--;
      job.runAt = now;
      this.requeue(job, now);
    }
    return { status: job.status, version: job.version };
  }

  /** May answer the time of another type's delayed job: an early wake-up costs one empty claim. */
  async finishAndClaim(
    finishes: FinishRequest[],
    claim: ClaimRequest | null,
    now: number,
  ): Promise<FinishAndClaimResult> {
    const results: FinishResult[] = [];
    for (const finish of finishes)
      results.push(
        this.finishHeld(finish.lease, finish.outcome, now, { concurrencyLimited: finish.concurrencyLimited }),
      );
    return { results, claimed: claim ? this.claimReady(claim) : [] };
  }

  async nextWakeAt(_types: string[], limits: Record<string, ClaimLimit> = {}): Promise<number | null> {
    let entry = this.delayed.peek();
    while (entry && !this.isCurrent(entry)) {
      this.delayed.pop();
      entry = this.delayed.peek();
    }
    let next = entry?.runAt ?? Infinity;
    for (const id of this.running) next = Math.min(next, this.jobs.get(id)?.lease?.until ?? Infinity);
    for (const [type, limit] of Object.entries(limits)) {
      const oldest = limit.rate ? this.rateLogs.get(type)?.[0] : undefined;
      if (oldest !== undefined) next = Math.min(next, oldest + limit.rate!.perMs + 1);
    }
    return next === Infinity ? null : next;
  }

  async subscribe(listener: (event: StoreEvent) => void): Promise<() => void> {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async claimWebhookDeliveries(
    now: number,
    max: number,
    leaseMs: number,
  ): ReturnType<JobStore['claimWebhookDeliveries']> {
    const due = [...this.deliveries.values()]
      .filter((entry) => entry.dueAt <= now)
      .sort((a, b) => a.dueAt - b.dueAt)
      .slice(0, max);
    for (const entry of due) entry.dueAt = now + leaseMs;
    let nextDueAt: number | null = null;
    for (const entry of this.deliveries.values())
      if (!due.includes(entry)) nextDueAt = Math.min(nextDueAt ?? Infinity, entry.dueAt);
    return { deliveries: due.map((entry) => structuredClone(entry.delivery)), nextDueAt };
  }

  async settleWebhookDelivery(delivery: WebhookDelivery, state: WebhookDeliveryState, now: number): Promise<void> {
    const entry = this.deliveries.get(delivery.id);
    if (entry && state.status === 'retrying' && state.nextAttemptAt !== null) {
      entry.delivery.attempts = state.attempts;
      entry.dueAt = state.nextAttemptAt;
      this.emit({ kind: 'webhook' });
    } else this.deliveries.delete(delivery.id);
    const job = this.live(delivery.jobId, now);
    if (!job) return;
    job.webhookDelivery = { ...state };
    this.touch(job, now);
  }

  private endAttempt(job: StoredJob, outcome: AttemptRecord['outcome'], error: JobError | null, now: number): void {
    job.attempts.push({
      attempt: job.attempt,
      workerId: job.workerId,
      startedAt: job.startedAt,
      endedAt: now,
      outcome,
      error: error && { ...error },
    });
  }

  async appendLogs(entries: { jobId: string; lines: JobLogLine[] }[]): Promise<void> {
    for (const { jobId, lines } of entries) {
      if (!this.jobs.has(jobId) || lines.length === 0) continue;
      const kept = [...(this.logLines.get(jobId) ?? []), ...structuredClone(lines)];
      this.logLines.set(jobId, kept.slice(-LOG_LINES_MAX));
    }
  }

  async logs(id: string): Promise<JobLogLine[]> {
    return this.live(id, Date.now()) ? structuredClone(this.logLines.get(id) ?? []) : [];
  }

  async runNow(id: string, now: number): ReturnType<JobStore['runNow']> {
    const job = this.live(id, now);
    if (!job) return undefined;
    if (job.status !== 'queued' || job.runAt <= now || job.queueSeq === 0) return 'not-delayed';
    job.runAt = now;
    this.touch(job, now);
    this.enqueue(job, now); // the delayed entry is now stale (its seq no longer matches)
    return structuredClone(stripInternal(job));
  }

  async importJob(record: JobRecord, logs: JobLogLine[], now: number): ReturnType<JobStore['importJob']> {
    if (this.jobs.has(record.id)) return 'exists';
    const finished = isTerminal(record.status);
    if (finished && record.expiresAt !== null && record.expiresAt <= now) return 'expired';
    const job: StoredJob = {
      ...structuredClone(record),
      queueSeq: 0,
      webhookProgressAt: 0,
      cacheLead: null,
      lapses: 0,
      concurrencyKey: record.concurrencyKey ?? null,
      scheduleId: record.scheduleId ?? null,
      scheduledFor: record.scheduledFor ?? null,
      fairByKey: false,
    };
    if (!finished) {
      Object.assign(job, {
        status: 'queued',
        lease: null,
        cancelRequested: false,
        cachedFrom: null,
        progress: emptyProgress(),
      });
    }
    this.jobs.set(job.id, job);
    this.insertId(job.id);
    if (!finished) this.enqueue(job, now);
    if (logs.length > 0) this.logLines.set(job.id, structuredClone(logs).slice(-LOG_LINES_MAX));
    return 'imported';
  }

  /** Queues a delivery of `event` when the job's webhook asks for it; true when it did. */
  private queueWebhook(job: StoredJob, event: WebhookEvent, now: number): boolean {
    if (!job.webhook?.events.includes(event)) return false;
    const id = `${job.id}:${job.version}`;
    const delivery: WebhookDelivery = {
      id,
      jobId: job.id,
      event,
      url: job.webhook.url,
      createdAt: now,
      attempts: 0,
      job: structuredClone(stripInternal(job)),
    };
    this.deliveries.set(id, { delivery, dueAt: now });
    this.emit({ kind: 'webhook' });
    return true;
  }

  async runningWithKey(type: string, tenant: string, key: string): Promise<number> {
    return this.fair.runningWithKey(type, tenant, key);
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private emit(event: StoreEvent): void {
    // Delivered asynchronously, as from a remote store, so no caller depends on re-entrancy.
    queueMicrotask(() => {
      for (const listener of this.listeners) listener(event);
    });
  }

  private live(id: string, now: number): StoredJob | undefined {
    const job = this.jobs.get(id);
    if (!job || (job.expiresAt !== null && job.expiresAt <= now)) return undefined;
    return job;
  }

  private heldJob(lease: HeldLease): StoredJob | undefined {
    const job = this.jobs.get(lease.jobId);
    return job && job.status === 'running' && job.lease?.id === lease.leaseId ? job : undefined;
  }

  private isCurrent(entry: QueueEntry): boolean {
    const job = this.jobs.get(entry.id);
    return job !== undefined && job.status === 'queued' && job.queueSeq === entry.seq;
  }

  private enqueue(job: StoredJob, now: number): void {
    job.queueSeq = this.nextSeq++;
    const entry: QueueEntry = { id: job.id, seq: job.queueSeq, priority: job.priority, runAt: job.runAt };
    if (job.runAt > now) {
      this.delayed.push(entry);
      this.emit({ kind: 'work', type: job.type }); // an idle worker must learn the new due time (as the Redis store does)
      return;
    }
    this.fair.enqueue(job.type, job.tenant, job.concurrencyKey ?? '', entry);
    this.emit({ kind: 'work', type: job.type });
  }

  private promoteDue(now: number): void {
    for (let entry = this.delayed.peek(); entry && entry.runAt <= now; entry = this.delayed.peek()) {
      this.delayed.pop();
      const job = this.jobs.get(entry.id);
      if (job && this.isCurrent(entry)) this.fair.enqueue(job.type, job.tenant, job.concurrencyKey ?? '', entry);
    }
  }

  private reapLapsedLeases(now: number): void {
    for (const id of [...this.running]) {
      const job = this.jobs.get(id)!;
      if (!job.lease || job.lease.until > now) continue;
      this.running.delete(id);
      job.lease = null;
      job.lapses++;
      const poison =
        (this.options.poisonAfter ?? DEFAULT_POISON_AFTER) > 0 &&
        job.lapses >= (this.options.poisonAfter ?? DEFAULT_POISON_AFTER);
      this.endAttempt(
        job,
        job.cancelRequested ? 'canceled' : poison ? 'poison' : 'lease-expired',
        leaseExpiredError,
        now,
      );
      if (job.cancelRequested) {
        this.finalize(job, 'canceled', now);
      } else if (poison) {
        job.error = poisonError(this.options.poisonAfter ?? DEFAULT_POISON_AFTER);
        this.finalize(job, 'failed', now);
      } else {
        job.error = leaseExpiredError;
        if (job.attempt >= job.maxAttempts) this.finalize(job, 'failed', now);
        else {
          job.runAt = now;
          this.requeue(job, now);
        }
      }
    }
  }

  private requeue(job: StoredJob, now: number): void {
    job.lease = null;
    job.progress = emptyProgress();
    this.setStatus(job, 'queued');
    this.touch(job, now);
    this.enqueue(job, now);
  }

  private finalize(job: StoredJob, status: JobStatus, now: number): void {
    job.lease = null;
    const wasQueued = job.status === 'queued';
    job.queueSeq = 0;
    if (wasQueued) this.fair.dequeued(job.type, job.tenant, job.concurrencyKey ?? '');
    job.completedAt = now;
    job.expiresAt = now + this.options.jobTtlMs;
    this.setStatus(job, status);
    this.touch(job, now);
    this.queueWebhook(job, `job.${status}` as WebhookEvent, now);
    const second = Math.floor(now / 1000);
    this.finishedPerSecond.set(second, (this.finishedPerSecond.get(second) ?? 0) + 1);
    if (job.cacheLead) this.settleFollowers(job, status, now);
  }

  private setStatus(job: StoredJob, status: JobStatus): void {
    if (job.status === 'running' && status !== 'running') this.stoppedRunning(job);
    job.status = status;
    if (status === 'running') this.running.add(job.id);
    else this.running.delete(job.id);
  }

  /** Its concurrency key's slot is free; a flow held back at the key's cap may be claimed again. */
  private stoppedRunning(job: StoredJob): void {
    if (this.fair.stoppedRunning(job.type, job.tenant, job.concurrencyKey)) this.emit({ kind: 'work', type: job.type });
  }

  private touch(job: StoredJob, now: number): void {
    job.version++;
    job.updatedAt = now;
    this.notifyWatchers(job.id, job.version);
  }

  private notifyWatchers(id: string, version: number | null): void {
    const watchers = this.watchers.get(id);
    if (!watchers) return;
    queueMicrotask(() => {
      for (const watcher of watchers) watcher(version);
    });
  }

  async watch(id: string, listener: (version: number | null) => void): Promise<() => void> {
    let watchers = this.watchers.get(id);
    if (!watchers) this.watchers.set(id, (watchers = new Set()));
    watchers.add(listener);
    return () => {
      watchers.delete(listener);
      if (watchers.size === 0 && this.watchers.get(id) === watchers) this.watchers.delete(id);
    };
  }

  private remove(job: StoredJob, goneAt: number): void {
    if (job.status === 'running') this.stoppedRunning(job);
    this.notifyWatchers(job.id, null);
    this.logLines.delete(job.id);
    this.gone.set(job.id, { at: goneAt, tenant: job.tenant });
    this.jobs.delete(job.id);
    this.running.delete(job.id);
    if (job.status === 'queued') this.fair.dequeued(job.type, job.tenant, job.concurrencyKey ?? '');
    const index = this.lowerIndex(job.id);
    if (this.ids[index] === job.id) this.ids.splice(index, 1);
  }

  private sweep(now: number): void {
    for (const job of [...this.jobs.values()])
      if (job.expiresAt !== null && job.expiresAt <= now) this.remove(job, job.expiresAt);
    for (const [id, gone] of this.gone) if (gone.at + this.options.jobTtlMs <= now) this.gone.delete(id);
    for (const [name, entry] of this.idempotencyKeys) if (entry.expiresAt <= now) this.idempotencyKeys.delete(name);
    for (const second of this.finishedPerSecond.keys())
      if (second < Math.floor(now / 1000) - 120) this.finishedPerSecond.delete(second);
    // A delivery nobody settled (no instance dispatching webhooks) is dropped once it could no longer be retried.
    for (const [digest, entry] of this.cacheEntries)
      if (entry.expiresAt !== null && entry.expiresAt <= now) this.cacheEntries.delete(digest);
    for (const [id, { delivery }] of this.deliveries)
      if (delivery.createdAt + WEBHOOK_RETRY_WINDOW_MS + 3_600_000 <= now) this.deliveries.delete(id);
  }

  private insertId(id: string): void {
    const last = this.ids[this.ids.length - 1];
    if (last === undefined || last < id) this.ids.push(id);
    else this.ids.splice(this.lowerIndex(id), 0, id);
  }

  /** First index whose id is >= `id`. */
  private lowerIndex(id: string): number {
    let low = 0;
    let high = this.ids.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.ids[mid]! < id) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** First index whose id is > `id`. */
  private upperIndex(id: string): number {
    let low = 0;
    let high = this.ids.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.ids[mid]! <= id) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

function stripInternal(job: StoredJob): JobRecord {
  const {
    queueSeq: _queueSeq,
    webhookProgressAt: _webhookProgressAt,
    cacheLead: _cacheLead,
    lapses: _lapses,
    fairByKey: _fairByKey,
    ...record
  } = job;
  return record;
}
