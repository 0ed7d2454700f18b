/**
 * The one retry delay of the service: a job's next attempt (the worker pool) and a webhook's next delivery
 * (the dispatcher) both wait this long, each with its own base and cap. Pure, imports nothing of the app, so
 * both can use it without either depending on the other.
 *
 * Exponential, so a failing job or receiver is tried less and less often; with "equal jitter" (a random point
 * in the upper half of the step, 50–100 %), so jobs or deliveries that failed together (a receiver or a
 * dependency down) do not come back together in waves, while the delay still grows with each attempt (full
 * jitter, 0–100 %, could retry at once). The two callers had each written this same formula; they now share it.
 */

export interface BackoffOptions {
  /** The delay's upper bound before the first retry; each further attempt doubles it. */
  baseMs: number;
  /** The most any step may reach, whatever the attempt. */
  maxMs: number;
}

/**
 * The delay after failed attempt number `attempt` (1 for the first): a random whole number of milliseconds
 * between half and all of min(maxMs, baseMs · 2^(attempt − 1)). `random` is for tests (default Math.random).
 */
export function backoffMs(
  attempt: number,
  { baseMs, maxMs }: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
