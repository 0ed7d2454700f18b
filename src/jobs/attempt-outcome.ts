import type { JobError } from './job.js';

/**
 * The job rule for a failed attempt, wherever the attempt ran (the in-process pool, a remote worker, the
 * service's own timeout of a remote attempt): a retryable error with attempts left queues the job again,
 * otherwise the job fails. Pure: the callers hand it the clock and the retry delay (src/backoff.ts, with the
 * service's RETRY_BACKOFF_* settings).
 */

/** What a failed attempt leads to: the two failure kinds of the store's AttemptOutcome. */
export type FailureOutcome = { kind: 'retry'; error: JobError; runAt: number } | { kind: 'failed'; error: JobError };

export interface RetryTiming {
  /** The delay before the next attempt after failed attempt number `attempt` (the backoff). */
  backoffMs: (attempt: number) => number;
  /** A delay the worker named (a remote worker's `retry_after_s`): it wins over the backoff. */
  retryAfterMs?: number;
}

/** Retry when `error` is retryable and the job has attempts left (at `now` + the delay), else fail. */
export function failedAttemptOutcome(
  job: { attempt: number; maxAttempts: number },
  error: JobError,
  now: number,
  timing: RetryTiming,
): FailureOutcome {
  if (!error.retryable || job.attempt >= job.maxAttempts) return { kind: 'failed', error };
  const delay = timing.retryAfterMs ?? timing.backoffMs(job.attempt);
  return { kind: 'retry', error, runAt: now + Math.max(0, Math.round(delay)) };
}

/** The error of an attempt that ran past its timeout_s (in process or remote). */
export const timeoutError = (): JobError => ({
  code: 'timeout',
  message: 'the attempt ran longer than its timeout',
  retryable: true,
});
