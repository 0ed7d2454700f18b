import type { Logger } from 'pino';
import { ZodError } from 'zod';
import { backoffMs, type BackoffOptions } from '../backoff.js';
import { JobFailure, type Handler, type JobAbortReason, type JobContext } from '../handlers/handler.js';
import { STACK_MAX, type JobError, type JobLogLine, type JobRecord } from '../jobs/job.js';
import type { AttemptOutcome, HeldLease, JobStore } from '../store/job-store.js';
import { jobLogger } from './job-log.js';
import { redact } from '../jobs/log-lines.js';
import { failedAttemptOutcome, timeoutError } from '../jobs/attempt-outcome.js';
import { ProgressWriter } from './progress-writer.js';

/*
 * One attempt of one job, from the handler's call to the outcome the store is to record. Everything a
 * handler may do (return, throw anything, ignore its signal, outlive its timeout) is turned into an
 * AttemptOutcome here, in one place, so the pool only schedules attempts and the store only records them.
 */

/** The part of a job's attempt that depends on where it runs: the pool's handler, logger, log buffer and retry delays. */
export interface AttemptDeps {
  handler: Handler;
  /** The attempt's logger (job id, type, attempt). */
  log: Logger;
  /** Where the lines the handler logs through `ctx.log` are kept for the store. */
  keepLogLine: (jobId: string, line: JobLogLine) => void;
  backoff: BackoffOptions;
}

/** One attempt of a claimed job, from its start in a slot until its outcome is known. */
export class RunningAttempt {
  readonly lease: HeldLease;
  /** performance.now() when the handler started. */
  private readonly startedAt = performance.now();
  /** Aborted by the pool (cancel, shutdown, lease lost) or by the attempt's own timeout; its reason decides the outcome. */
  private readonly controller = new AbortController();
  private readonly progress: ProgressWriter;
  /** Set by the pool when it frees the attempt's slot; the outcome may still be on its way to the store. */
  handlerDone = false;

  constructor(
    readonly job: JobRecord,
    store: Pick<JobStore, 'reportProgress'>,
    progressIntervalMs?: number,
  ) {
    this.lease = { jobId: job.id, leaseId: job.lease!.id };
    this.progress = new ProgressWriter(store, this.lease, this.controller, progressIntervalMs);
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  abort(reason: JobAbortReason): void {
    this.controller.abort(reason);
  }

  /**
   * Runs the handler, then writes the progress it reported last. Resolves with the outcome to write (null
   * when nothing may be written: the lease was lost) and how long the handler ran.
   */
  async run(deps: AttemptDeps): Promise<{ outcome: AttemptOutcome | null; runMs: number }> {
    const outcome = await this.callHandler(deps);
    const runMs = performance.now() - this.startedAt;
    await this.progress.finish(outcome !== null);
    return { outcome, runMs };
  }

  private async callHandler({ handler, log, keepLogLine, backoff }: AttemptDeps): Promise<AttemptOutcome | null> {
    const { job, controller, progress } = this;
    const timeoutS = job.timeoutS ?? handler.timeout_s ?? null;
    const timeout =
      timeoutS === null
        ? null
        : setTimeout(() => controller.abort('timeout' satisfies JobAbortReason), timeoutS * 1000);
    let handlerLog: Logger | undefined;
    const ctx: JobContext = {
      jobId: job.id,
      attempt: job.attempt,
      signal: controller.signal,
      // Made on first use: most handlers never log, and a capturing logger per job is not free.
      get log() {
        return (handlerLog ??= jobLogger(log, job.attempt, (line) => keepLogLine(job.id, line)));
      },
      progress: (percent, details) => progress.report(percent, details),
    };
    try {
      const input = handler.input.parse(job.input);
      const result = await untilAborted(handler.run(input, ctx), controller.signal);
      return { kind: 'succeeded', result };
    } catch (thrown) {
      return outcomeOfFailure(job, controller.signal, thrown, log, backoff);
    } finally {
      if (timeout) clearTimeout(timeout);
      progress.stop();
    }
  }
}

/** Null when nothing should be written: the lease was lost to another worker. */
function outcomeOfFailure(
  job: JobRecord,
  signal: AbortSignal,
  thrown: unknown,
  log: Logger,
  backoff: BackoffOptions,
): AttemptOutcome | null {
  if (signal.aborted) {
    const reason = signal.reason as JobAbortReason;
    if (reason === 'canceled') return { kind: 'canceled' };
    if (reason === 'shutdown') return { kind: 'released' };
    if (reason === 'lease-lost') return null;
    return failOrRetry(job, timeoutError(), backoff);
  }
  const error = toJobError(thrown);
  log.warn({ err: thrown, code: error.code, retryable: error.retryable }, 'attempt failed');
  return failOrRetry(job, error, backoff);
}

/** The shared job rule (jobs/attempt-outcome.ts) with this pool's backoff. */
const failOrRetry = (job: JobRecord, error: JobError, backoff: BackoffOptions): AttemptOutcome =>
  failedAttemptOutcome(job, error, Date.now(), { backoffMs: (attempt) => backoffMs(attempt, backoff) });

const stackOf = (thrown: Error): { stack?: string } =>
  thrown.stack ? { stack: redact(thrown.stack).slice(0, STACK_MAX) } : {};

/** Turns whatever a handler threw into a JobError, once, here. */
export function toJobError(thrown: unknown): JobError {
  if (thrown instanceof JobFailure)
    return { code: thrown.code, message: thrown.message, retryable: thrown.retryable, ...stackOf(thrown) };
  if (thrown instanceof ZodError) {
    return {
      code: 'invalid-input',
      message: `the job's input does not fit its type: ${thrown.issues.map((i) => i.message).join('; ')}`,
      retryable: false,
    };
  }
  if (thrown instanceof Error)
    return { code: 'handler-error', message: thrown.message || thrown.name, retryable: true, ...stackOf(thrown) };
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
