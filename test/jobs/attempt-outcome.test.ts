import { describe, expect, it } from 'vitest';
import { failedAttemptOutcome, timeoutError } from '../../src/jobs/attempt-outcome.js';
import type { JobError } from '../../src/jobs/job.js';

const now = 1_700_000_000_000;
const retryable: JobError = { code: 'flaky', message: 'try again', retryable: true };
const fatal: JobError = { code: 'bad-input', message: 'never works', retryable: false };
/** The backoff doubles from 100 ms (no jitter here: the delay formula is src/backoff.ts's). */
const backoffMs = (attempt: number): number => 100 * 2 ** (attempt - 1);

describe('failedAttemptOutcome: the job rule for a failed attempt', () => {
  it.each([
    [
      'retryable, attempts left: retry after the backoff',
      { attempt: 1, maxAttempts: 3 },
      retryable,
      undefined,
      { kind: 'retry', error: retryable, runAt: now + 100 },
    ],
    [
      'the backoff grows with the attempt',
      { attempt: 2, maxAttempts: 3 },
      retryable,
      undefined,
      { kind: 'retry', error: retryable, runAt: now + 200 },
    ],
    [
      'a delay the worker named wins over the backoff',
      { attempt: 1, maxAttempts: 3 },
      retryable,
      5000,
      { kind: 'retry', error: retryable, runAt: now + 5000 },
    ],
    [
      'a zero delay retries now',
      { attempt: 1, maxAttempts: 3 },
      retryable,
      0,
      { kind: 'retry', error: retryable, runAt: now },
    ],
    [
      'the last attempt fails the job',
      { attempt: 3, maxAttempts: 3 },
      retryable,
      undefined,
      { kind: 'failed', error: retryable },
    ],
    [
      'not retryable fails the job at once',
      { attempt: 1, maxAttempts: 3 },
      fatal,
      1000,
      { kind: 'failed', error: fatal },
    ],
    [
      'a timeout is retryable',
      { attempt: 1, maxAttempts: 2 },
      timeoutError(),
      undefined,
      { kind: 'retry', error: timeoutError(), runAt: now + 100 },
    ],
  ] as const)('%s', (_name, job, error, retryAfterMs, expected) => {
    expect(
      failedAttemptOutcome(job, error, now, { backoffMs, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }),
    ).toEqual(expected);
  });

  it('the timeout error is the one the in-process pool records', () => {
    expect(timeoutError()).toEqual({
      code: 'timeout',
      message: 'the attempt ran longer than its timeout',
      retryable: true,
    });
  });
});
