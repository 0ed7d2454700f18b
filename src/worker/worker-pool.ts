import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ZodError } from 'zod';
import { StoreUnavailableError } from '../store/job-store.js';
import { STACK_MAX, type JobError, type JobLogLine, type JobRecord } from '../jobs/job.js';
import { jobLogger, redact } from './job-log.js';
import { JobFailure, type JobAbortReason, type JobContext } from '../handlers/handler.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import type { WorkerPoolObserver } from '../metrics/service-metrics.js';
import type {
  AttemptOutcome,
  ClaimLimit,
  ClaimRequest,
  FinishAndClaimResult,
  FinishResult,
  HeldLease,
  JobStore,
  ProgressUpdate,
  StoreEvent,
} from '../store/job-store.js';
import { LOG_LINES_MAX } from '../store/job-store.js';

export interface WorkerPoolOptions {
  store: JobStore;
  handlers: HandlerRegistry;
  log: Logger;
  concurrency: number;
  leaseMs: number;
  backoff: { baseMs: number; maxMs: number };
  /** Fleet-wide per-type limits (max concurrency, rate), enforced by the store's claim. */
  limits?: Record<string, ClaimLimit>;
  /** Most jobs leased in one claim call. */
  claimBatch?: number;
  /** Least time between two progress writes of one job. */
  progressIntervalMs?: number;
  /** Told of attempts, outcomes, lost leases and store call times (the service's metrics). */
  observer?: WorkerPoolObserver;
}

interface RunningJob {
  job: JobRecord;
  lease: HeldLease;
  controller: AbortController;
  pendingProgress: ProgressUpdate | null;
  progressTimer: NodeJS.Timeout | null;
  lastProgressWrite: number;
  progressWrite: Promise<void>;
  /** performance.now() when the handler started. */
  startedAt: number;
  /** The handler has ended (its slot is free); the outcome may still be on its way to the store. */
  handlerDone: boolean;
}

/** The longest an idle worker sleeps without a signal: a safety net should a pub/sub message be lost. */
const MAX_IDLE_MS = 30_000;
const STORE_RETRY_MS = 1000;
const OUTCOME_RETRY_MS = 250;
/** Most outcomes written in one store call. */
const FINISH_BATCH = 256;
/** Store calls one pool keeps in flight at once. */
const MAX_CALLS_IN_FLIGHT = 3;

interface PendingFinish {
  job: JobRecord;
  lease: HeldLease;
  outcome: AttemptOutcome;
  log: Logger;
  /** Writing is pointless after this: the lease has lapsed and the job is someone else's. */
  leaseEnd: number;
  settle: () => void;
  /** How long the handler ran; null for a claimed job handed back unrun. */
  runMs: number | null;
}

/**
 * Runs jobs in this process: claims ready jobs from the store into `concurrency` slots, runs their
 * handlers, renews their leases, coalesces their progress writes and records each attempt's outcome.
 */
export class WorkerPool {
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly running = new Map<string, RunningJob>();
  private readonly log: Logger;
  private readonly types: string[];
  private state: 'idle' | 'running' | 'draining' | 'stopped' = 'idle';
  /** Handlers running now: the slots in use. A job whose outcome is still being written holds no slot. */
  private handlersActive = 0;
  /** Outcomes waiting to be written: each store call sends all of them, with the next claim. */
  private pendingFinishes: PendingFinish[] = [];
  /** Log lines handlers wrote, per job, not yet in the store (written within a second, and when an attempt ends). */
  private readonly pendingLogs = new Map<string, JobLogLine[]>();
  private logFlushTimer: NodeJS.Timeout | null = null;
  /** Store calls in flight (at most MAX_CALLS_IN_FLIGHT), and the slots their claims may fill. */
  private readonly callsInFlight = new Set<Promise<void>>();
  private reservedSlots = 0;
  /** After a failed store call, no new call before this time. */
  private pausedUntil = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** False after a claim found less than it asked for and no signal came since: then only a signal claims. */
  private claimWanted = false;
  /** Bumped by every work signal; a claim that saw none during its call may sleep. */
  private wakeGeneration = 0;
  private wakeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private leaseCounter = 0;
  private storeDown = false;
  /** While draining, outcome writes to an unreachable store stop being retried after this time. */
  private giveUpWritesAt = Infinity;
  private readonly settled = new Set<Promise<void>>();
  readonly counters = { started: 0, succeeded: 0, failed: 0, retried: 0, canceled: 0, leasesLost: 0 };
  /** Types an operator paused (not claimed), and whether an operator drained this worker (claims nothing). */
  private pausedTypes: ReadonlySet<string> = new Set();
  private operatorDrained = false;
  /** Told (synchronously, with no arguments) whenever a slot is taken or freed, or claiming stops or resumes. */
  private readonly changeListeners = new Set<() => void>();

  constructor(private readonly options: WorkerPoolOptions) {
    this.log = options.log.child({ component: 'worker-pool', workerId: this.workerId });
    this.types = options.handlers.types;
  }

  get concurrency(): number {
    return this.options.concurrency;
  }

  /** Slots in use: handlers running now. */
  get busy(): number {
    return this.handlersActive;
  }

  /** The job types this pool runs. */
  get jobTypes(): readonly string[] {
    return this.types;
  }

  /**
   * The jobs whose handlers run now: one per busy slot (`busy` of them). A job whose handler ended but whose
   * outcome is still being written is not listed (its slot is free).
   */
  get runningJobIds(): string[] {
    const ids: string[] = [];
    for (const [id, running] of this.running) if (!running.handlerDone) ids.push(id);
    return ids;
  }

  /**
   * Calls `listener` whenever what the worker registry shows may have changed: a handler started or ended (a
   * slot taken or freed), or the pool began draining or was drained or resumed by an operator. It runs on the
   * pool's hot path (twice per job), synchronously: it must be cheap (set a flag) and must not throw.
   * Returns a function that removes it.
   */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => {
      this.changeListeners.delete(listener);
    };
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  /** True from the start of a shutdown drain, or while an operator has drained this worker. */
  get draining(): boolean {
    return this.state === 'draining' || this.state === 'stopped' || this.operatorDrained;
  }

  /**
   * An operator's queue control (src/worker/worker-control.ts): paused types are not claimed (running jobs
   * finish), and a drained worker claims nothing. Lifting either claims again at once.
   */
  setControl(control: { pausedTypes?: Iterable<string>; drained?: boolean }): void {
    const before = this.claimTypes().join(',');
    const wasDrained = this.operatorDrained;
    if (control.pausedTypes) this.pausedTypes = new Set(control.pausedTypes);
    if (control.drained !== undefined) this.operatorDrained = control.drained;
    if (this.operatorDrained !== wasDrained) {
      this.log.info({ drained: this.operatorDrained }, this.operatorDrained ? 'drained by an operator: claiming nothing' : 'resumed by an operator');
      this.changed();
    }
    if (before !== this.claimTypes().join(',') || wasDrained !== this.operatorDrained) this.wake();
  }

  private claimTypes(): string[] {
    if (this.operatorDrained) return [];
    return this.pausedTypes.size === 0 ? this.types : this.types.filter((type) => !this.pausedTypes.has(type));
  }

  /** Subscribes to the store's signals, then starts claiming. */
  async start(): Promise<void> {
    if (this.state !== 'idle' || this.options.concurrency === 0) return;
    this.state = 'running';
    const unsubscribe = await this.options.store.subscribe((event) => this.onStoreEvent(event));
    if (this.state !== 'running') {
      unsubscribe(); // drained while subscribing
      return;
    }
    this.unsubscribe = unsubscribe;
    const heartbeatMs = Math.max(100, Math.floor(this.options.leaseMs / 3));
    this.heartbeatTimer = setInterval(() => void this.renewLeases(), heartbeatMs);
    this.heartbeatTimer.unref();
    this.log.info({ concurrency: this.options.concurrency, types: this.types }, 'worker pool started');
    this.wake();
  }

  /**
   * Stops claiming, waits up to `graceMs` for running jobs, then aborts the rest, which go back to
   * the queue without counting the attempt. Idempotent.
   */
  async drain(graceMs: number): Promise<void> {
    if (this.state === 'stopped' || this.state === 'draining') {
      await this.waitForRunning(Infinity);
      return;
    }
    this.state = 'draining';
    this.changed();
    this.giveUpWritesAt = Date.now() + graceMs + 1000;
    this.clearWakeTimer();
    await Promise.all(this.callsInFlight); // a claim in flight must not start jobs after this point
    if (this.running.size > 0) this.log.info({ running: this.running.size, graceMs }, 'draining: waiting for running jobs');
    const allDone = await this.waitForRunning(graceMs);
    if (!allDone) {
      this.log.warn({ jobIds: [...this.running.keys()] }, 'grace period over: aborting running jobs and re-queueing them');
      for (const running of this.running.values()) running.controller.abort('shutdown' satisfies JobAbortReason);
      await this.waitForRunning(Infinity);
    }
    this.stop();
  }

  private stop(): void {
    this.state = 'stopped';
    this.clearWakeTimer();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.unsubscribe?.();
  }

  private async waitForRunning(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.settled.size > 0) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(remaining, 2 ** 31 - 1))));
      await Promise.race([Promise.race(this.settled), timeout]);
      clearTimeout(timer);
    }
    return true;
  }

  private onStoreEvent(event: StoreEvent): void {
    if (event.kind === 'cancel') {
      this.running.get(event.jobId)?.controller.abort('canceled' satisfies JobAbortReason);
    } else if (event.kind === 'work' && this.claimTypes().includes(event.type)) {
      this.wake();
    }
  }

  /** There may be work: claim as long as slots are free and work is found. */
  private wake(): void {
    this.wakeGeneration++;
    if (this.state !== 'running') return;
    this.clearWakeTimer();
    this.claimWanted = true;
    this.kick();
  }

  /**
   * The only place this pool talks to the store about outcomes and claims. Each call writes every outcome
   * waiting and claims for the free slots; up to MAX_CALLS_IN_FLIGHT calls overlap, so Node and Redis
   * work at the same time, and outcomes that arrive while they are busy go out together in the next one
   * (group commit): a busy pool spends a fraction of a round trip per job.
   */
  private kick(): void {
    if (Date.now() < this.pausedUntil) return; // the store just failed; the retry timer kicks again
    while (this.callsInFlight.size < MAX_CALLS_IN_FLIGHT) {
      const finishes = this.pendingFinishes.splice(0, FINISH_BATCH);
      const free =
        this.state === 'running' && this.claimWanted && this.claimTypes().length > 0
          ? this.options.concurrency - this.handlersActive - this.reservedSlots
          : 0;
      if (finishes.length === 0 && free <= 0) return;
      const claim = free > 0 ? this.claimRequest(Math.min(free, this.options.claimBatch ?? 64)) : null;
      const call = this.syncCall(finishes, claim).finally(() => {
        this.callsInFlight.delete(call);
        this.kick();
      });
      this.callsInFlight.add(call);
    }
  }

  private async syncCall(finishes: PendingFinish[], claim: ClaimRequest | null): Promise<void> {
    const generation = this.wakeGeneration;
    this.reservedSlots += claim?.max ?? 0;
    let reply: FinishAndClaimResult;
    const callStarted = this.options.observer ? performance.now() : 0;
    try {
      reply = await this.options.store.finishAndClaim(
        finishes.map((finish) => ({ lease: finish.lease, outcome: finish.outcome, concurrencyLimited: this.isConcurrencyLimited(finish.job.type) })),
        claim,
        Date.now(),
      );
      this.markStoreUp();
    } catch (error) {
      this.onSyncFailure(finishes, error);
      return;
    } finally {
      this.reservedSlots -= claim?.max ?? 0;
      this.options.observer?.storeCall('finishAndClaim', (performance.now() - callStarted) / 1000);
    }
    finishes.forEach((finish, i) => this.settleFinish(finish, reply.results[i]!));
    if (!claim) return;
    if (this.state !== 'running') {
      // Draining began while the claim was in flight: hand those jobs back without counting the attempt.
      for (const job of reply.claimed) void this.queueFinish(job, { jobId: job.id, leaseId: job.lease!.id }, { kind: 'released' }, this.log);
      return;
    }
    for (const job of reply.claimed) this.startJob(job);
    if (reply.claimed.length < claim.max && generation === this.wakeGeneration) {
      this.claimWanted = false;
      void this.sleepUntilNextDue(generation);
    }
  }

  private claimRequest(max: number): ClaimRequest {
    return {
      types: this.claimTypes(),
      limits: this.options.limits,
      max,
      workerId: this.workerId,
      leaseId: `${this.workerId}:${++this.leaseCounter}`,
      leaseMs: this.options.leaseMs,
      now: Date.now(),
    };
  }

  /** The store did not take the call: outcomes are retried until their lease would lapse; claiming resumes later. */
  private onSyncFailure(finishes: PendingFinish[], error: unknown): void {
    const unavailable = error instanceof StoreUnavailableError;
    if (unavailable) this.markStoreDown(error);
    else this.log.error({ err: error }, 'store call failed');
    const now = Date.now();
    const keep = finishes.filter((finish) => unavailable && now < Math.min(finish.leaseEnd, this.giveUpWritesAt));
    for (const finish of finishes) {
      if (keep.includes(finish)) continue;
      finish.log.error({ err: error, outcome: finish.outcome.kind }, 'could not record the outcome; the lease will lapse and the job run again');
      this.forget(finish);
    }
    this.pendingFinishes.unshift(...keep);
    const pause = this.pendingFinishes.length > 0 ? OUTCOME_RETRY_MS : STORE_RETRY_MS;
    this.pausedUntil = Date.now() + pause;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      // A timer may fire a millisecond before Date.now() reaches pausedUntil: lift the pause here, or
      // kick() would return and nothing would send the waiting outcomes (their leases renewed forever).
      this.pausedUntil = 0;
      if (this.state === 'running') this.claimWanted = true;
      this.kick();
    }, pause);
    this.retryTimer.unref();
  }

  private async sleepUntilNextDue(generation: number): Promise<void> {
    let next: number | null;
    try {
      next = await this.options.store.nextWakeAt(this.claimTypes(), this.options.limits);
    } catch (error) {
      this.markStoreDown(error);
      next = Date.now() + STORE_RETRY_MS;
    }
    if (generation !== this.wakeGeneration) return; // a signal came meanwhile and was acted on
    this.sleepUntil(Math.min(next ?? Infinity, Date.now() + MAX_IDLE_MS));
  }

  private sleepUntil(at: number): void {
    if (this.state !== 'running') return;
    this.clearWakeTimer();
    this.wakeTimer = setTimeout(() => this.wake(), Math.max(0, at - Date.now()));
    this.wakeTimer.unref();
  }

  private clearWakeTimer(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
  }

  private startJob(job: JobRecord): void {
    const running: RunningJob = {
      job,
      lease: { jobId: job.id, leaseId: job.lease!.id },
      controller: new AbortController(),
      pendingProgress: null,
      progressTimer: null,
      lastProgressWrite: 0,
      progressWrite: Promise.resolve(),
      startedAt: performance.now(),
      handlerDone: false,
    };
    this.running.set(job.id, running);
    this.handlersActive++;
    this.counters.started++;
    this.options.observer?.attemptStarted(job.type, waitOf(job));
    this.changed();
    const done = this.runJob(running).finally(() => this.settled.delete(done));
    this.settled.add(done);
  }

  /** Queues an outcome for the sync loop; the promise resolves once it is written (or given up). */
  private queueFinish(job: JobRecord, lease: HeldLease, outcome: AttemptOutcome, log: Logger, runMs: number | null = null): Promise<void> {
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.settled.add(done);
    void done.then(() => this.settled.delete(done));
    this.pendingFinishes.push({ job, lease, outcome, log, leaseEnd: Date.now() + this.options.leaseMs, settle, runMs });
    this.kick();
    return done;
  }

  private settleFinish(finish: PendingFinish, result: FinishResult): void {
    if (result === 'lost') {
      this.counters.leasesLost++;
      this.options.observer?.leaseLost();
      finish.log.warn({ outcome: finish.outcome.kind }, 'lease lost before the outcome was written; another attempt owns the job now');
    } else {
      this.count(result.status, finish.outcome);
      if (finish.runMs !== null) this.options.observer?.attemptFinished(finish.job.type, result.status, finish.runMs, waitOf(finish.job));
      finish.log.debug({ status: result.status, outcome: finish.outcome.kind }, 'attempt finished');
    }
    this.forget(finish);
  }

  private forget(finish: PendingFinish): void {
    if (this.running.get(finish.job.id)?.lease.leaseId === finish.lease.leaseId) this.running.delete(finish.job.id);
    finish.settle();
  }

  private isConcurrencyLimited(type: string): boolean {
    return this.options.limits?.[type]?.maxConcurrency !== undefined;
  }

  private readonly keepLogLineBound = (jobId: string, line: JobLogLine): void => this.keepLogLine(jobId, line);

  private async runJob(running: RunningJob): Promise<void> {
    const keepLogLine = this.keepLogLineBound;
    const { job, controller } = running;
    const handler = this.options.handlers.get(job.type)!;
    const log = this.log.child({ jobId: job.id, jobType: job.type, attempt: job.attempt });
    const timeoutS = job.timeoutS ?? handler.timeout_s ?? null;
    const timeout = timeoutS === null ? null : setTimeout(() => controller.abort('timeout' satisfies JobAbortReason), timeoutS * 1000);
    let handlerLog: Logger | undefined;
    const ctx: JobContext = {
      jobId: job.id,
      attempt: job.attempt,
      signal: controller.signal,
      // Made on first use: most handlers never log, and a capturing logger per job is not free.
      get log() {
        return (handlerLog ??= jobLogger(log, job.attempt, (line) => keepLogLine(job.id, line)));
      },
      progress: (percent, details) => this.queueProgress(running, percent, details),
    };
    let outcome: AttemptOutcome | null;
    try {
      const input = handler.input.parse(job.input);
      const result = await untilAborted(handler.run(input, ctx), controller.signal);
      outcome = { kind: 'succeeded', result };
    } catch (thrown) {
      outcome = this.outcomeOfFailure(job, controller.signal, thrown, log);
    } finally {
      if (timeout) clearTimeout(timeout);
      if (running.progressTimer) clearTimeout(running.progressTimer);
      running.progressTimer = null;
    }
    const runMs = performance.now() - running.startedAt;
    // "The last one is always written": flush progress reported since the last write, before the outcome.
    if (outcome && running.pendingProgress && !controller.signal.aborted) {
      const update = running.pendingProgress;
      running.pendingProgress = null;
      running.progressWrite = running.progressWrite.then(() =>
        this.options.store.reportProgress(running.lease, update, Date.now()).then(() => undefined, () => undefined),
      );
    }
    await running.progressWrite;
    this.flushLogs();
    this.handlersActive--;
    running.handlerDone = true;
    this.changed();
    if (outcome) await this.queueFinish(job, running.lease, outcome, log, runMs);
    else {
      this.running.delete(job.id); // lease lost: nothing to write
      this.kick();
    }
  }

  private keepLogLine(jobId: string, line: JobLogLine): void {
    let lines = this.pendingLogs.get(jobId);
    if (!lines) this.pendingLogs.set(jobId, (lines = []));
    if (lines.length < LOG_LINES_MAX) lines.push(line); // a flood between two writes keeps its first lines
    if (!this.logFlushTimer) {
      this.logFlushTimer = setTimeout(() => this.flushLogs(), 1000);
      this.logFlushTimer.unref();
    }
  }

  private flushLogs(): void {
    if (this.logFlushTimer) clearTimeout(this.logFlushTimer);
    this.logFlushTimer = null;
    if (this.pendingLogs.size === 0) return;
    const entries = [...this.pendingLogs].map(([jobId, lines]) => ({ jobId, lines }));
    this.pendingLogs.clear();
    this.options.store.appendLogs(entries).catch((error: unknown) => this.log.warn({ err: error, jobs: entries.length }, 'could not store job log lines'));
  }

  /** Null when nothing should be written: the lease was lost to another worker. */
  private outcomeOfFailure(job: JobRecord, signal: AbortSignal, thrown: unknown, log: Logger): AttemptOutcome | null {
    if (signal.aborted) {
      const reason = signal.reason as JobAbortReason;
      if (reason === 'canceled') return { kind: 'canceled' };
      if (reason === 'shutdown') return { kind: 'released' };
      if (reason === 'lease-lost') return null;
      return this.failOrRetry(job, { code: 'timeout', message: `the attempt ran longer than its timeout`, retryable: true });
    }
    const error = toJobError(thrown);
    log.warn({ err: thrown, code: error.code, retryable: error.retryable }, 'attempt failed');
    return this.failOrRetry(job, error);
  }

  private failOrRetry(job: JobRecord, error: JobError): AttemptOutcome {
    if (!error.retryable || job.attempt >= job.maxAttempts) return { kind: 'failed', error };
    return { kind: 'retry', error, runAt: Date.now() + backoffMs(job.attempt, this.options.backoff) };
  }

  private count(status: JobRecord['status'], outcome: AttemptOutcome): void {
    if (status === 'succeeded') this.counters.succeeded++;
    else if (status === 'failed') this.counters.failed++;
    else if (status === 'canceled') this.counters.canceled++;
    else if (outcome.kind === 'retry') this.counters.retried++;
  }

  private queueProgress(running: RunningJob, percent: number | null, details: { step?: string; message?: string } = {}): void {
    if (running.controller.signal.aborted) return;
    const previous = running.pendingProgress;
    running.pendingProgress = {
      percent: percent === null || !Number.isFinite(percent) ? (previous?.percent ?? null) : percent,
      step: details.step || previous?.step || null,
      message: details.message || previous?.message || null,
    };
    if (running.progressTimer) return;
    const interval = this.options.progressIntervalMs ?? 250;
    const wait = Math.max(0, running.lastProgressWrite + interval - Date.now());
    running.progressTimer = setTimeout(() => {
      running.progressTimer = null;
      const update = running.pendingProgress;
      running.pendingProgress = null;
      if (!update || running.controller.signal.aborted) return;
      running.lastProgressWrite = Date.now();
      running.progressWrite = running.progressWrite.then(() =>
        this.options.store.reportProgress(running.lease, update, Date.now()).then(
          (held) => {
            if (!held) running.controller.abort('lease-lost' satisfies JobAbortReason);
          },
          () => undefined, // progress is best effort; the next write or the outcome carries on
        ),
      );
    }, wait);
  }

  private async renewLeases(): Promise<void> {
    if (this.pendingFinishes.length > 0) this.kick(); // a backstop: waiting outcomes must not wait for a signal
    if (this.running.size === 0) return;
    const leases = [...this.running.values()].map((running) => running.lease);
    const callStarted = this.options.observer ? performance.now() : 0;
    try {
      const { lost, cancelRequested } = await this.options.store.renewLeases(leases, this.options.leaseMs, Date.now());
      this.options.observer?.storeCall('renewLeases', (performance.now() - callStarted) / 1000);
      this.markStoreUp();
      for (const jobId of cancelRequested) this.running.get(jobId)?.controller.abort('canceled' satisfies JobAbortReason);
      for (const jobId of lost) {
        const running = this.running.get(jobId);
        if (!running || running.controller.signal.aborted) continue;
        this.counters.leasesLost++;
        this.options.observer?.leaseLost();
        this.log.warn({ jobId }, 'lease lost (the job was reclaimed, canceled or deleted); aborting the handler');
        running.controller.abort('lease-lost' satisfies JobAbortReason);
      }
    } catch (error) {
      this.options.observer?.storeCall('renewLeases', (performance.now() - callStarted) / 1000);
      this.markStoreDown(error);
    }
  }

  private markStoreDown(error: unknown): void {
    if (!this.storeDown) this.log.error({ err: error }, 'job store unreachable: claiming paused until it answers again');
    this.storeDown = true;
  }

  private markStoreUp(): void {
    if (this.storeDown) this.log.info('job store reachable again: claiming resumed');
    this.storeDown = false;
  }
}

/** Exponential backoff from `baseMs` doubling per attempt, capped at `maxMs`, with equal jitter. */
export function backoffMs(attempt: number, { baseMs, maxMs }: { baseMs: number; maxMs: number }): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

const stackOf = (thrown: Error): { stack?: string } => (thrown.stack ? { stack: redact(thrown.stack).slice(0, STACK_MAX) } : {});

/** How long a claimed attempt had been ready before it started. */
const waitOf = (job: JobRecord): number => (job.startedAt ?? Date.now()) - Math.max(job.runAt, job.createdAt);

/** Turns whatever a handler threw into a JobError, once, here. */
export function toJobError(thrown: unknown): JobError {
  if (thrown instanceof JobFailure) return { code: thrown.code, message: thrown.message, retryable: thrown.retryable, ...stackOf(thrown) };
  if (thrown instanceof ZodError) {
    return { code: 'invalid-input', message: `the job's input does not fit its type: ${thrown.issues.map((i) => i.message).join('; ')}`, retryable: false };
  }
  if (thrown instanceof Error) return { code: 'handler-error', message: thrown.message || thrown.name, retryable: true, ...stackOf(thrown) };
  return { code: 'handler-error', message: `handler threw a non-Error value: ${safeString(thrown)}`, retryable: true };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 200) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Settles with the handler, or rejects as soon as the signal fires: a handler ignoring its signal cannot hold the outcome. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(`aborted: ${String(signal.reason)}`));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
