import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { BackoffOptions } from '../backoff.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import type { JobRecord } from '../jobs/job.js';
import type { AttemptOutcome, ClaimLimit, FinishResult, JobStore, StoreEvent } from '../store/job-store.js';
import { JobLogBuffer } from './job-log.js';
import { waitOf, type WorkerPoolObserver } from './pool-observer.js';
import { RunningAttempt } from './run-attempt.js';
import { STORE_RETRY_MS, StoreSync, type PendingFinish } from './store-sync.js';

export interface WorkerPoolOptions {
  store: JobStore;
  handlers: HandlerRegistry;
  log: Logger;
  concurrency: number;
  leaseMs: number;
  backoff: BackoffOptions;
  /** Fleet-wide per-type limits (max concurrency, rate, key concurrency), enforced by the store's claim. */
  limits?: Record<string, ClaimLimit>;
  /** TENANT_WEIGHTS: claims per fair round of a tenant (default 1), passed with every claim. */
  tenantWeights?: Record<string, number>;
  /** Most jobs leased in one claim call. */
  claimBatch?: number;
  /** Least time between two progress writes of one job. */
  progressIntervalMs?: number;
  /** Told of attempts, outcomes, lost leases and store call times (the service's metrics). */
  observer?: WorkerPoolObserver;
}

/** The longest an idle worker sleeps without a signal: a safety net should a pub/sub message be lost. */
const MAX_IDLE_MS = 30_000;

/**
 * Runs jobs in this process: claims ready jobs from the store into `concurrency` slots, runs their handlers,
 * renews their leases and records each attempt's outcome. The pool decides: which slots are taken, when to
 * claim (signals, sleeping until the next due time, operators' pauses and drains), when to stop, and which
 * leases to renew. The parts with state of their own are apart, so each can be read alone: the store loop
 * of outcomes and claims (StoreSync), one attempt from handler call to outcome (RunningAttempt, with its
 * ProgressWriter), and the handlers' log lines (JobLogBuffer).
 */
export class WorkerPool {
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  /** The attempts of this pool: those in a slot, and those whose outcome is still being written. */
  private readonly running = new Map<string, RunningAttempt>();
  private readonly log: Logger;
  private readonly types: string[];
  private readonly sync: StoreSync;
  private readonly logs: JobLogBuffer;
  private state: 'idle' | 'running' | 'draining' | 'stopped' = 'idle';
  /** Handlers running now: the slots in use. A job whose outcome is still being written holds no slot. */
  private handlersActive = 0;
  /** Bumped by every work signal; a look for the next due time that saw one meanwhile does not sleep. */
  private wakeGeneration = 0;
  private wakeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  /** What a drain waits for: each attempt until its outcome is written (or given up), and each claimed job handed back. */
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
    this.logs = new JobLogBuffer(options.store, this.log);
    const { store, leaseMs, limits, tenantWeights, claimBatch, observer } = options;
    this.sync = new StoreSync(
      {
        store,
        log: this.log,
        workerId: this.workerId,
        leaseMs,
        concurrency: options.concurrency,
        limits,
        tenantWeights,
        claimBatch,
        observer,
      },
      {
        freeSlots: () =>
          this.state === 'running' && this.claimTypes().length > 0 ? this.options.concurrency - this.handlersActive : 0,
        claimTypes: () => this.claimTypes(),
        claimed: (jobs) => this.claimed(jobs),
        noWorkLeft: () => void this.sleepUntilNextDue(),
        finished: (finish, result) => this.finished(finish, result),
      },
    );
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
      this.log.info(
        { drained: this.operatorDrained },
        this.operatorDrained ? 'drained by an operator: claiming nothing' : 'resumed by an operator',
      );
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
    this.sync.giveUpWritesAfter(Date.now() + graceMs + 1000);
    this.clearWakeTimer();
    await this.sync.callsEnded(); // a claim in flight must not start jobs after this point
    if (this.running.size > 0)
      this.log.info({ running: this.running.size, graceMs }, 'draining: waiting for running jobs');
    const allDone = await this.waitForRunning(graceMs);
    if (!allDone) {
      this.log.warn(
        { jobIds: [...this.running.keys()] },
        'grace period over: aborting running jobs and re-queueing them',
      );
      for (const running of this.running.values()) running.abort('shutdown');
      await this.waitForRunning(Infinity);
    }
    this.stop();
  }

  private stop(): void {
    this.state = 'stopped';
    this.clearWakeTimer();
    this.sync.stop();
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
      this.running.get(event.jobId)?.abort('canceled');
    } else if (event.kind === 'work' && this.claimTypes().includes(event.type)) {
      this.wake();
    }
  }

  /** There may be work: claim as long as slots are free and work is found. */
  private wake(): void {
    this.wakeGeneration++;
    if (this.state !== 'running') return;
    this.clearWakeTimer();
    this.sync.claimAgain();
  }

  /** A claim came back: start its jobs, or hand them back if draining began while it was in flight. */
  private claimed(jobs: JobRecord[]): boolean {
    if (this.state !== 'running') {
      for (const job of jobs) {
        // Handed back without counting the attempt; a drain waits for it like for a running job.
        const done = this.sync.queueFinish(
          job,
          { jobId: job.id, leaseId: job.lease!.id },
          { kind: 'released' },
          this.log,
        );
        this.settled.add(done);
        void done.then(() => this.settled.delete(done));
      }
      return false;
    }
    for (const job of jobs) this.startJob(job);
    return true;
  }

  private async sleepUntilNextDue(): Promise<void> {
    const generation = this.wakeGeneration;
    let next: number | null;
    try {
      next = await this.options.store.nextWakeAt(this.claimTypes(), this.options.limits);
    } catch (error) {
      this.sync.markStoreDown(error);
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
    const running = new RunningAttempt(job, this.options.store, this.options.progressIntervalMs);
    this.running.set(job.id, running);
    this.handlersActive++;
    this.counters.started++;
    this.options.observer?.attemptStarted(job.type, waitOf(job));
    this.changed();
    const done = this.runJob(running).finally(() => this.settled.delete(done));
    this.settled.add(done);
  }

  private async runJob(running: RunningAttempt): Promise<void> {
    const { job } = running;
    const handler = this.options.handlers.get(job.type)!;
    const log = this.log.child({ jobId: job.id, jobType: job.type, attempt: job.attempt });
    const { outcome, runMs } = await running.run({
      handler,
      log,
      keepLogLine: this.logs.keep,
      backoff: this.options.backoff,
    });
    this.logs.flush();
    this.handlersActive--;
    running.handlerDone = true;
    this.changed();
    if (outcome)
      await this.sync.queueFinish(job, running.lease, outcome, log, runMs); // this promise is in `settled` until then
    else {
      this.running.delete(job.id); // lease lost: nothing to write
      this.sync.kick();
    }
  }

  /** The store loop is done with an outcome: count it, and forget the job unless a newer attempt of it runs here. */
  private finished(finish: PendingFinish, result: FinishResult | null): void {
    if (result === 'lost') {
      this.counters.leasesLost++;
      this.options.observer?.leaseLost();
      finish.log.warn(
        { outcome: finish.outcome.kind },
        'lease lost before the outcome was written; another attempt owns the job now',
      );
    } else if (result !== null) {
      this.count(result.status, finish.outcome);
      if (finish.runMs !== null)
        this.options.observer?.attemptFinished(finish.job.type, result.status, finish.runMs, waitOf(finish.job));
      finish.log.debug({ status: result.status, outcome: finish.outcome.kind }, 'attempt finished');
    }
    if (this.running.get(finish.job.id)?.lease.leaseId === finish.lease.leaseId) this.running.delete(finish.job.id);
  }

  private count(status: JobRecord['status'], outcome: AttemptOutcome): void {
    if (status === 'succeeded') this.counters.succeeded++;
    else if (status === 'failed') this.counters.failed++;
    else if (status === 'canceled') this.counters.canceled++;
    else if (outcome.kind === 'retry') this.counters.retried++;
  }

  private async renewLeases(): Promise<void> {
    if (this.sync.outcomesWaiting) this.sync.kick(); // a backstop: waiting outcomes must not wait for a signal
    if (this.running.size === 0) return;
    const leases = [...this.running.values()].map((running) => running.lease);
    const callStarted = this.options.observer ? performance.now() : 0;
    try {
      const { lost, cancelRequested } = await this.options.store.renewLeases(leases, this.options.leaseMs, Date.now());
      this.options.observer?.storeCall('renewLeases', (performance.now() - callStarted) / 1000);
      this.sync.markStoreUp();
      for (const jobId of cancelRequested) this.running.get(jobId)?.abort('canceled');
      for (const jobId of lost) {
        const running = this.running.get(jobId);
        if (!running || running.aborted) continue;
        this.counters.leasesLost++;
        this.options.observer?.leaseLost();
        this.log.warn({ jobId }, 'lease lost (the job was reclaimed, canceled or deleted); aborting the handler');
        running.abort('lease-lost');
      }
    } catch (error) {
      this.options.observer?.storeCall('renewLeases', (performance.now() - callStarted) / 1000);
      this.sync.markStoreDown(error);
    }
  }
}
