/**
 * `runWorker`: a remote worker over the pull-worker protocol (README, "Remote workers"), for Node 20+ and any
 * runtime with `fetch`. Part of the `async-job-service/client` entry (re-exported by jobs-client.ts); like the
 * rest of the client it imports nothing of the server.
 *
 * It registers, claims jobs of its declared types with a long-poll (never more than its free slots, and only
 * while the service says `active`), runs `handle(job, ctx)` for each, renews every lease it holds in one
 * heartbeat call every `heartbeat_s` with each job's latest progress, and settles outcomes: the completions
 * and failures of one tick go out as one `POST /v1/leases:complete`. `ctx.signal` aborts when the job was
 * canceled (the job is then released), its lease was lost (its outcome is dropped: every write would answer 409)
 * or the worker stops and its grace ran out. Guarantees are the service's: at-least-once, fenced by the lease.
 */

/** A job as a remote worker receives it. */
export interface RemoteJob {
  id: string;
  type: string;
  input: unknown;
  /** 1 for the first run; `id` + `attempt` keep side effects idempotent. */
  attempt: number;
  maxAttempts: number;
  /** The service fails the attempt with `timeout` then (null: no timeout). */
  timeoutAt: string | null;
  metadata: Record<string, string>;
  priority: number;
  /** The lease that fences every write of this attempt. */
  leaseId: string;
}

export type RemoteLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** ctx.log: lines kept with the attempt (operators read them), sent in batches. */
export type RemoteJobLog = Record<RemoteLogLevel, (message: string | Record<string, unknown>, text?: string) => void>;

/** Why ctx.signal aborted (its `reason`). */
export type RemoteAbortReason = 'canceled' | 'lease-lost' | 'shutdown';

/** What `handle` gets besides the job: the shape of an in-process handler's ctx. */
export interface RemoteJobContext {
  jobId: string;
  attempt: number;
  /** Aborts on cancel, lease loss, or a stop whose grace ran out; `signal.reason` is a RemoteAbortReason. */
  signal: AbortSignal;
  log: RemoteJobLog;
  /** Records progress (percent 0..100, or null when unknown); sent with the next heartbeat (the latest counts). */
  progress(percent: number | null, details?: { step?: string; message?: string }): void;
}

/** Where runWorker reports what it does (default: errors and warnings to console.error). */
export interface RunWorkerLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface RunWorkerOptions {
  /** The service, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** A key of the service's WORKER_KEYS, sent as `Authorization: Bearer …` (leave out for an open service). */
  workerKey?: string;
  /** Shown to operators (default `ts-worker`). */
  name?: string;
  /** Declared job types this worker runs. */
  types: string[];
  /** Jobs run at once. */
  slots: number;
  /** Your labels (host, version …), shown to operators. */
  labels?: Record<string, string>;
  /**
   * Runs one job; its (JSON) return value is the result. A throw fails the attempt: `retryable` unless the
   * error says `retryable: false` (as JobFailure does), with the error's `code` (default `handler-error`) and
   * `retryAfterS` when it has them.
   */
  handle(job: RemoteJob, ctx: RemoteJobContext): unknown;
  fetch?: typeof fetch;
  /** Aborting it stops the worker (as `stop()`). */
  signal?: AbortSignal;
  logger?: RunWorkerLogger;
  /** Most jobs one claim asks for (default: the service's max_claim). */
  maxClaim?: number;
  /** Longest long-poll of a claim, seconds (default: the service's max_wait_s). */
  waitS?: number;
  /** Heartbeat more often than the service asks, seconds (never less often). */
  heartbeatS?: number;
  /** On stop, how long running jobs may still finish before they are released (default 10 000 ms). */
  graceMs?: number;
}

export interface RemoteWorkerHandle {
  /** Stops claiming, lets running jobs finish (up to graceMs), releases the rest and deregisters. Idempotent. */
  stop(): Promise<void>;
  /** Settles once the worker stopped; rejects when it could not register (a bad key, an undeclared type). */
  done: Promise<void>;
  /** The id the service gave it (undefined until registered). */
  readonly workerId: string | undefined;
  /** What it did so far. */
  readonly counts: Readonly<{ claimed: number; completed: number; failed: number; released: number; dropped: number }>;
}

/** A problem answer of a worker endpoint. */
export class WorkerProtocolError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${status} ${code}: ${detail}`);
    this.name = 'WorkerProtocolError';
  }
}

export function runWorker(options: RunWorkerOptions): RemoteWorkerHandle {
  return new RemoteWorkerRunner(options).handle;
}

// ------------------------------------------------------------------------------------------ internals

const BATCH_MAX = 100;
/** Settle calls (leases:complete) on their way at once: the next batch forms while one is answered. */
const SETTLES_IN_FLIGHT = 2;
const LOG_LINES_PER_CALL = 200;
const LOG_BUFFER_MAX = 1000;
const MESSAGE_MAX = 2000;
const DETAIL_MAX = 16_000;
const REQUEST_TIMEOUT_MS = 30_000;
const CODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

interface LeaseAnswer {
  lease_id: string;
  lease_until: string;
  job: {
    id: string;
    type: string;
    input: unknown;
    attempt: number;
    max_attempts: number;
    timeout_at: string | null;
    metadata: Record<string, string>;
    priority: number;
  };
}

interface Registration {
  worker_id: string;
  heartbeat_s: number;
  lease_s: number;
  max_wait_s: number;
  max_claim: number;
}

interface Progress {
  percent: number | null;
  step?: string;
  message?: string;
}

/** One held lease: a job this worker runs. */
interface Held {
  job: RemoteJob;
  controller: AbortController;
  progress: Progress | undefined;
  progressVersion: number;
  progressSent: number;
  logs: { level: RemoteLogLevel; message: string }[];
  logsDropped: number;
  cancelRequested: boolean;
  lost: boolean;
  /** Released by the worker on stop: the outcome is dropped. */
  abandoned: boolean;
  /** When its outcome went on its way (undefined before): the settle's answer, not a heartbeat, decides then. */
  settlingSince: number | undefined;
}

type SettleItem =
  | { lease_id: string; result: unknown }
  | {
      lease_id: string;
      error: { code: string; message: string; detail?: string };
      retryable: boolean;
      retry_after_s?: number;
    };

interface PendingSettle {
  item: SettleItem;
  held: Held;
  resolve: (status: 'ok' | 'lost' | 'failed') => void;
}

const defaultLogger: RunWorkerLogger = {
  info: () => undefined,
  warn: (message, fields) => console.error(`[runWorker] ${message}`, fields ?? ''),
  error: (message, fields) => console.error(`[runWorker] ${message}`, fields ?? ''),
};

/** Resolves every waiter at once on notify(); a waiter also wakes after its timeout. */
class Notifier {
  private waiters = new Set<() => void>();

  notify(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.waiters.add(done);
    });
  }
}

class RemoteWorkerRunner {
  readonly handle: RemoteWorkerHandle;
  private readonly fetch: typeof fetch;
  private readonly log: RunWorkerLogger;
  private readonly counts = { claimed: 0, completed: 0, failed: 0, released: 0, dropped: 0 };
  private readonly held = new Map<string, Held>();
  private readonly notifier = new Notifier();
  private readonly pending: PendingSettle[] = [];
  private registration: Registration | undefined;
  private state: 'active' | 'drain' | 'stop' = 'active';
  private stopping = false;
  private readonly done: Promise<void>;
  private readonly stopController = new AbortController();
  private claimAbort: AbortController | undefined;
  private heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatRunning: Promise<void> | undefined;
  private beatSoon = false;
  private lastRenewal = Date.now();
  /** The calls that change the service's record of this worker, one at a time (see call()). */
  private lane: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private flushing = 0;
  private registering: Promise<void> | undefined;

  constructor(private readonly options: RunWorkerOptions) {
    if (!Number.isInteger(options.slots) || options.slots < 1)
      throw new RangeError('runWorker: slots must be a positive integer');
    if (options.types.length === 0) throw new RangeError('runWorker: types must name at least one declared job type');
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.log = options.logger ?? defaultLogger;
    this.done = this.main();
    const workerId = () => this.registration?.worker_id;
    const counts = () => ({ ...this.counts });
    this.handle = Object.defineProperties({ stop: () => this.stop(), done: this.done } as RemoteWorkerHandle, {
      workerId: { get: workerId, enumerable: true },
      counts: { get: counts, enumerable: true },
    });
    this.done.catch(() => undefined); // the caller reads it; never an unhandled rejection
    if (options.signal) {
      if (options.signal.aborted) void this.stop();
      else options.signal.addEventListener('abort', () => void this.stop(), { once: true });
    }
  }

  // ------------------------------------------------------------------------------------ lifecycle

  private async main(): Promise<void> {
    await this.register();
    if (!this.registration) return; // stopped before it registered
    this.scheduleHeartbeat();
    await this.claimLoop();
    await this.shutdown();
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.stopController.abort();
      this.claimAbort?.abort();
      this.notifier.notify();
    }
    return this.done.catch(() => undefined);
  }

  private async register(): Promise<void> {
    let delay = 250;
    while (!this.stopping) {
      try {
        const labels = { lang: 'typescript', ...this.options.labels };
        const answer = await this.call<Registration>('POST', '/v1/workers', {
          body: {
            name: this.options.name ?? 'ts-worker',
            types: this.options.types,
            slots: this.options.slots,
            labels,
          },
          signal: this.stopController.signal,
        });
        this.registration = answer;
        this.lastRenewal = Date.now();
        this.setState('active');
        this.log.info('registered', {
          workerId: answer.worker_id,
          heartbeatS: answer.heartbeat_s,
          leaseS: answer.lease_s,
        });
        return;
      } catch (error) {
        if (this.stopping) return;
        // A refusal (bad key, undeclared type, scope) will not pass by retrying.
        if (error instanceof WorkerProtocolError && error.status < 500 && error.status !== 429) throw error;
        this.log.warn('could not register; retrying', { error: describe(error), retryInMs: delay });
        await this.notifier.wait(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  /** The service forgot this worker (no call for lease_s): its leases are gone; register again (once for all callers). */
  private async lostRegistration(seenId: string): Promise<void> {
    if (this.registration?.worker_id !== seenId) return;
    this.registering ??= (async () => {
      for (const held of this.held.values()) this.markLost(held, 'worker-not-found');
      this.log.warn('the service no longer knows this worker; registering again', { workerId: seenId });
      try {
        await this.register();
      } finally {
        this.registering = undefined;
      }
    })();
    await this.registering;
  }

  private async shutdown(): Promise<void> {
    const graceMs = this.options.graceMs ?? 10_000;
    const deadline = Date.now() + graceMs;
    while (this.held.size > 0 && Date.now() < deadline) await this.notifier.wait(Math.min(250, deadline - Date.now()));
    const rest = [...this.held.values()].filter((held) => !held.lost && !held.abandoned);
    for (const held of rest) {
      held.abandoned = true;
      held.controller.abort('shutdown' satisfies RemoteAbortReason);
    }
    await Promise.all(rest.map((held) => this.settleOne(held, 'release')));
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.heartbeatRunning;
    const id = this.registration?.worker_id;
    if (id) {
      try {
        await this.call('DELETE', `/v1/workers/${id}`);
        this.log.info('deregistered', { workerId: id });
      } catch (error) {
        this.log.warn('could not deregister', { workerId: id, error: describe(error) });
      }
    }
  }

  private setState(state: 'active' | 'drain' | 'stop'): void {
    if (state === this.state) return;
    this.log.info(`service says ${state}`, { was: this.state });
    this.state = state;
    this.notifier.notify();
  }

  // ------------------------------------------------------------------------------------ claiming

  private heartbeatMs(): number {
    const serverMs = (this.registration?.heartbeat_s ?? 10) * 1000;
    return this.options.heartbeatS ? Math.max(50, Math.min(serverMs, this.options.heartbeatS * 1000)) : serverMs;
  }

  private async claimLoop(): Promise<void> {
    let backoff = 250;
    let foundNothing = false;
    while (!this.stopping) {
      const free = this.options.slots - this.held.size;
      if (this.state !== 'active' || free <= 0 || this.registering) {
        await this.notifier.wait(this.heartbeatMs());
        continue;
      }
      const registration = this.registration!;
      const longestWaitS = Math.max(
        0,
        Math.min(this.options.waitS ?? registration.max_wait_s, registration.max_wait_s),
      );
      // A claim waits only when the one before found nothing. One that does not wait goes through the lane (see
      // call()); a long-poll cannot hold the lane for its wait (settles must go meanwhile), and the service reads
      // the worker's record again each time the long-poll wakes.
      const waitS: number = foundNothing ? longestWaitS : 0;
      const max = Math.max(1, Math.min(free, this.options.maxClaim ?? registration.max_claim, registration.max_claim));
      const abort = new AbortController();
      this.claimAbort = abort;
      const started = Date.now();
      let leases: LeaseAnswer[];
      try {
        leases = (
          await this.call<{ leases: LeaseAnswer[] }>('POST', `/v1/workers/${registration.worker_id}/leases`, {
            body: { max },
            headers: waitS > 0 ? { prefer: `wait=${waitS}` } : {},
            signal: abort.signal,
            timeoutMs: waitS * 1000 + REQUEST_TIMEOUT_MS,
            lane: waitS === 0,
          })
        ).leases;
        backoff = 250;
      } catch (error) {
        if (this.stopping) break;
        if (error instanceof WorkerProtocolError && error.code === 'worker-not-found') {
          await this.lostRegistration(registration.worker_id);
          continue;
        }
        this.log.warn('claim failed; retrying', { error: describe(error), retryInMs: backoff });
        await this.notifier.wait(backoff);
        backoff = Math.min(backoff * 2, 10_000);
        continue;
      } finally {
        this.claimAbort = undefined;
      }
      if (this.stopping) {
        // Leased while we were stopping: not started, back to the queue at once.
        await Promise.all(leases.map((lease) => this.settleOne(this.newHeld(lease), 'release')));
        break;
      }
      for (const lease of leases) this.start(lease);
      foundNothing = leases.length === 0 && waitS === 0;
      if (leases.length > 0) continue;
      if (waitS > 0 && Date.now() - started < (waitS * 1000) / 2) {
        // A long-poll answered empty long before its wait ended: drained, the service stopping, or its record of
        // our leases is behind. A heartbeat now tells which (and writes the record right); then claim again.
        this.beatNow();
        await this.notifier.wait(Math.min(1000, this.heartbeatMs()));
      } else if (longestWaitS === 0 && waitS === 0) {
        await this.notifier.wait(1000); // no long-poll allowed: poll once a second
      }
    }
  }

  private newHeld(lease: LeaseAnswer): Held {
    const { job } = lease;
    return {
      job: {
        id: job.id,
        type: job.type,
        input: job.input,
        attempt: job.attempt,
        maxAttempts: job.max_attempts,
        timeoutAt: job.timeout_at,
        metadata: job.metadata,
        priority: job.priority,
        leaseId: lease.lease_id,
      },
      controller: new AbortController(),
      progress: undefined,
      progressVersion: 0,
      progressSent: 0,
      logs: [],
      logsDropped: 0,
      cancelRequested: false,
      lost: false,
      abandoned: false,
      settlingSince: undefined,
    };
  }

  // ------------------------------------------------------------------------------------ running

  private start(lease: LeaseAnswer): void {
    const held = this.newHeld(lease);
    this.held.set(lease.lease_id, held);
    this.counts.claimed++;
    void this.run(held).finally(() => this.free(held));
  }

  /** The job's slot is free (its outcome settled or dropped). Idempotent. */
  private free(held: Held): void {
    if (this.held.get(held.job.leaseId) !== held) return;
    this.held.delete(held.job.leaseId);
    this.notifier.notify();
  }

  private context(held: Held): RemoteJobContext {
    const line = (level: RemoteLogLevel) => (message: string | Record<string, unknown>, text?: string) => {
      if (held.logs.length >= LOG_BUFFER_MAX) {
        held.logsDropped++;
        return;
      }
      const rendered = typeof message === 'string' ? message : `${text ?? ''}${text ? ' ' : ''}${safeJson(message)}`;
      held.logs.push({ level, message: rendered });
    };
    return {
      jobId: held.job.id,
      attempt: held.job.attempt,
      signal: held.controller.signal,
      log: {
        trace: line('trace'),
        debug: line('debug'),
        info: line('info'),
        warn: line('warn'),
        error: line('error'),
        fatal: line('fatal'),
      },
      progress: (percent, details = {}) => {
        held.progress = {
          percent: percent === null ? null : Math.max(0, Math.min(100, percent)),
          ...(details.step !== undefined ? { step: String(details.step).slice(0, 256) } : {}),
          ...(details.message !== undefined ? { message: String(details.message).slice(0, 2000) } : {}),
        };
        held.progressVersion++;
      },
    };
  }

  private async run(held: Held): Promise<void> {
    let outcome: { kind: 'complete'; result: unknown } | { kind: 'fail'; item: SettleItem } | { kind: 'release' };
    try {
      const result = await this.options.handle(held.job, this.context(held));
      outcome = { kind: 'complete', result: result === undefined ? null : result };
      if (!isJson(outcome.result)) {
        outcome = {
          kind: 'fail',
          item: {
            lease_id: held.job.leaseId,
            error: { code: 'result-not-json', message: "the handler's result is not JSON" },
            retryable: false,
          },
        };
      }
    } catch (error) {
      const failure = error as {
        code?: unknown;
        retryable?: unknown;
        retryAfterS?: unknown;
        name?: unknown;
        message?: unknown;
        stack?: unknown;
      } | null;
      const ownFailure =
        failure !== null &&
        typeof failure === 'object' &&
        (typeof failure.code === 'string' || failure.retryable === false);
      if (held.controller.signal.aborted && !ownFailure) {
        outcome = { kind: 'release' }; // it stopped because it was asked to
      } else {
        const code =
          typeof failure?.code === 'string' && CODE_PATTERN.test(failure.code) ? failure.code : 'handler-error';
        const message =
          (error instanceof Error ? `${error.name}: ${error.message}` : `thrown: ${safeJson(error)}`).slice(
            0,
            MESSAGE_MAX,
          ) || 'handler-error';
        const detail = error instanceof Error && error.stack ? error.stack.slice(0, DETAIL_MAX) : undefined;
        const retryAfter =
          typeof failure?.retryAfterS === 'number' && failure.retryAfterS >= 0 ? failure.retryAfterS : undefined;
        outcome = {
          kind: 'fail',
          item: {
            lease_id: held.job.leaseId,
            error: { code, message, ...(detail ? { detail } : {}) },
            retryable: failure?.retryable !== false,
            ...(retryAfter !== undefined ? { retry_after_s: retryAfter } : {}),
          },
        };
      }
    }
    if (held.lost || held.abandoned) {
      this.counts.dropped++;
      this.log.info('outcome dropped', { jobId: held.job.id, reason: held.lost ? 'lease lost' : 'released on stop' });
      return;
    }
    // A canceled job's result is not wanted any more: hand it back (the service ends it canceled).
    if (held.cancelRequested || outcome.kind === 'release') {
      await this.settleOne(held, 'release');
      return;
    }
    const item: SettleItem =
      outcome.kind === 'complete' ? { lease_id: held.job.leaseId, result: outcome.result } : outcome.item;
    const status = await this.enqueueSettle(held, item);
    if (status === 'ok') this.counts[outcome.kind === 'complete' ? 'completed' : 'failed']++;
    else this.counts.dropped++;
  }

  // ------------------------------------------------------------------------------------ settling

  /** Queues an outcome: those of one tick go out as one POST /v1/leases:complete. */
  private enqueueSettle(held: Held, item: SettleItem): Promise<'ok' | 'lost' | 'failed'> {
    held.settlingSince = Date.now();
    return new Promise<'ok' | 'lost' | 'failed'>((resolve) => {
      this.pending.push({
        item,
        held,
        resolve: (status) => {
          this.free(held); // the slot is free once the service answered (not before: see call())
          resolve(status);
        },
      });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    // At most SETTLES_IN_FLIGHT batches on their way: what finishes meanwhile waits for the next one (bigger batches under load).
    if (this.flushScheduled || this.flushing >= SETTLES_IN_FLIGHT || this.pending.length === 0) return;
    this.flushScheduled = true;
    nextTick(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing++;
    const batch = this.pending.splice(0, BATCH_MAX);
    const answered = new Set<PendingSettle>();
    for (const each of batch) {
      const resolve = each.resolve;
      each.resolve = (status) => {
        if (answered.has(each)) return;
        answered.add(each);
        resolve(status);
      };
    }
    try {
      await Promise.all(batch.map(({ held }) => this.flushLogs(held)));
      const live = batch.filter(({ held }) => !held.lost);
      for (const each of batch) if (each.held.lost) each.resolve('lost');
      if (live.length > 0) {
        const answer = await this.withRetry('settle', () =>
          this.call<{ items: { lease_id: string; status: 'ok' | 'lost' }[] }>('POST', '/v1/leases:complete', {
            body: { items: live.map((each) => each.item) },
            lane: false,
          }),
        );
        live.forEach((each, i) => {
          const status = answer ? (answer.items[i]?.status ?? 'lost') : 'failed';
          if (status === 'lost')
            this.log.warn('lease lost: outcome dropped', { jobId: each.held.job.id, leaseId: each.item.lease_id });
          each.resolve(status);
        });
      }
    } finally {
      for (const each of batch) each.resolve('failed'); // (only those not answered: an unexpected throw)
      this.flushing--;
      this.scheduleFlush();
    }
  }

  /** release (or a single settle) of one lease, retried while the service cannot be reached. */
  private async settleOne(held: Held, verb: 'release'): Promise<void> {
    held.settlingSince = Date.now();
    try {
      await this.flushLogs(held);
      const answer = await this.withRetry(verb, () =>
        this.call<{ job_status: string }>('POST', `/v1/leases/${encodeURIComponent(held.job.leaseId)}/${verb}`),
      );
      if (answer) {
        this.counts.released++;
        this.log.info('released', { jobId: held.job.id, jobStatus: answer.job_status });
      } else this.counts.dropped++;
    } finally {
      this.free(held);
    }
  }

  /** Runs a write until it answers; a lost lease (409/404) answers undefined at once, an unreachable service after lease_s. */
  private async withRetry<T>(what: string, write: () => Promise<T>): Promise<T | undefined> {
    const deadline = Date.now() + Math.max(5, this.registration?.lease_s ?? 30) * 1000;
    let delay = 100;
    for (;;) {
      try {
        return await write();
      } catch (error) {
        if (error instanceof WorkerProtocolError && (error.code === 'lease-lost' || error.code === 'lease-not-found')) {
          this.log.warn(`${what}: lease lost, outcome dropped`, { error: error.message });
          return undefined;
        }
        const transient = !(error instanceof WorkerProtocolError) || error.status >= 500 || error.status === 429;
        if (!transient || Date.now() + delay > deadline) {
          this.log.error(`${what} failed`, { error: describe(error) });
          return undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  private async flushLogs(held: Held): Promise<void> {
    if (held.logsDropped > 0) {
      held.logs.push({ level: 'warn', message: `${held.logsDropped} log line(s) dropped: the buffer was full` });
      held.logsDropped = 0;
    }
    while (held.logs.length > 0 && !held.lost) {
      const lines = held.logs.splice(0, LOG_LINES_PER_CALL);
      try {
        await this.call('POST', `/v1/leases/${encodeURIComponent(held.job.leaseId)}/logs`, { body: { lines } });
      } catch (error) {
        if (error instanceof WorkerProtocolError && error.code === 'lease-lost') this.markLost(held, 'lease-lost');
        else if (!(error instanceof WorkerProtocolError) || error.status >= 500) held.logs.unshift(...lines); // next time
        return;
      }
    }
  }

  private markLost(held: Held, why: string): void {
    if (held.lost) return;
    held.lost = true;
    held.controller.abort('lease-lost' satisfies RemoteAbortReason);
    this.log.warn('lease lost', { jobId: held.job.id, leaseId: held.job.leaseId, why });
  }

  // ------------------------------------------------------------------------------------ heartbeats

  private scheduleHeartbeat(delayMs = this.heartbeatMs()): void {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatRunning = this.heartbeat().finally(() => {
        this.heartbeatRunning = undefined;
        if (this.heartbeatTimer !== undefined) this.scheduleHeartbeat(this.beatSoon ? 0 : undefined);
        this.beatSoon = false;
      });
    }, delayMs);
  }

  private beatNow(): void {
    if (this.heartbeatRunning) this.beatSoon = true;
    else if (this.heartbeatTimer !== undefined) this.scheduleHeartbeat(0);
  }

  private async heartbeat(): Promise<void> {
    const registration = this.registration;
    if (!registration || this.registering) return;
    // A lease whose outcome is on its way is left out (the service would count it lost once settled), unless
    // that write is taking long (retrying): then it keeps the lease renewed meanwhile.
    const now = Date.now();
    const beating = [...this.held.values()].filter(
      (held) =>
        !held.lost &&
        !held.abandoned &&
        (held.settlingSince === undefined || now - held.settlingSince > 2 * this.heartbeatMs()),
    );
    const versions = beating.map((held) =>
      held.progressVersion > held.progressSent ? held.progressVersion : undefined,
    );
    const leases = beating.map((held, i) => ({
      lease_id: held.job.leaseId,
      ...(versions[i] !== undefined && held.progress ? { progress: held.progress } : {}),
    }));
    let answer: {
      worker: 'active' | 'drain' | 'stop';
      leases: { lease_id: string; status: 'ok' | 'cancel_requested' | 'lost' }[];
    };
    try {
      answer = await this.call('POST', `/v1/workers/${registration.worker_id}/heartbeat`, { body: { leases } });
    } catch (error) {
      if (error instanceof WorkerProtocolError && error.code === 'worker-not-found' && !this.stopping) {
        await this.lostRegistration(registration.worker_id);
        return;
      }
      this.log.warn('heartbeat failed', { error: describe(error) });
      // Past lease_s without a renewal, the service has taken the leases back.
      if (Date.now() - this.lastRenewal > registration.lease_s * 1000)
        for (const held of this.held.values()) this.markLost(held, 'no renewal within lease_s');
      return;
    }
    this.lastRenewal = Date.now();
    beating.forEach((held, i) => {
      const version = versions[i];
      if (version !== undefined) held.progressSent = Math.max(held.progressSent, version);
    });
    const statuses = new Map(answer.leases.map((lease) => [lease.lease_id, lease.status]));
    for (const held of beating) {
      if (this.held.get(held.job.leaseId) !== held || held.settlingSince !== undefined) continue; // being settled: its answer decides
      const status = statuses.get(held.job.leaseId) ?? 'lost';
      if (status === 'lost') this.markLost(held, 'heartbeat');
      else if (status === 'cancel_requested' && !held.cancelRequested) {
        held.cancelRequested = true;
        held.controller.abort('canceled' satisfies RemoteAbortReason);
        this.log.info('cancel requested', { jobId: held.job.id });
      }
    }
    this.setState(answer.worker);
    await Promise.all(
      [...this.held.values()].filter((held) => held.logs.length > 0 && !held.lost).map((held) => this.flushLogs(held)),
    );
  }

  // ------------------------------------------------------------------------------------ HTTP

  /**
   * One request. Every call but a long-poll goes through the lane: one at a time, in the order made, so the
   * service's record of this worker (the leases it holds, hence its free slots) follows the worker's own view:
   * a heartbeat states its leases after the settles before it, never in between. (The service applies each
   * call atomically; overlapping them measured no faster, as the service's CPU per job bounds the rate.)
   */
  private async call<T = unknown>(
    method: string,
    path: string,
    init: {
      body?: unknown;
      headers?: Record<string, string>;
      signal?: AbortSignal;
      timeoutMs?: number;
      lane?: boolean;
    } = {},
  ): Promise<T> {
    if (init.lane === false) return this.request<T>(method, path, init);
    const previous = this.lane;
    let release!: () => void;
    this.lane = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await this.request<T>(method, path, init);
    } finally {
      release();
    }
  }

  private async request<T>(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number },
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.workerKey) headers.authorization = `Bearer ${this.options.workerKey}`;
    const timeout = AbortSignal.timeout(init.timeoutMs ?? REQUEST_TIMEOUT_MS);
    const response = await this.fetch(`${this.options.baseUrl.replace(/\/+$/, '')}${path}`, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout,
    });
    const text = await response.text();
    if (response.status >= 400) {
      let problem: { code?: string; detail?: string } = {};
      try {
        problem = JSON.parse(text) as typeof problem;
      } catch {
        // not a problem document
      }
      throw new WorkerProtocolError(
        response.status,
        problem.code ?? 'http-error',
        problem.detail ?? text.slice(0, 500),
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** After the I/O of this turn of the event loop (setImmediate in Node; a macrotask elsewhere). */
const nextTick = (callback: () => void): void => {
  if (typeof setImmediate === 'function') setImmediate(callback);
  else setTimeout(callback, 0);
};

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isJson(value: unknown): boolean {
  try {
    return JSON.stringify(value) !== undefined;
  } catch {
    return false;
  }
}
