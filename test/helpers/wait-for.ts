import { setTimeout as sleep } from 'node:timers/promises';

/** What a check answers while the condition does not hold yet (0 and '' count as "not yet" too: the check's answer must be truthy). */
export type NotYet = undefined | null | false;

export interface WaitForOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between two checks (default 10 ms). */
  intervalMs?: number;
  /** What is awaited, for the error on timeout: "timed out after 3000 ms waiting for <what>". */
  what?: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_INTERVAL_MS = 10;

/**
 * The one polling wait of the tests: calls `check` (at once, then every `intervalMs`) until it answers a
 * truthy value, and resolves with that value. A check that throws counts as "not yet" (the next call may
 * succeed). After `timeoutMs` it rejects with an Error naming `what` and the last answer or error seen.
 */
export async function waitFor<T>(
  check: () => T | NotYet | Promise<T | NotYet>,
  options: WaitForOptions = {},
): Promise<T> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = DEFAULT_INTERVAL_MS, what = 'the condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let last: { value: unknown } | { error: unknown };
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() >= deadline) {
      const seen = 'error' in last ? `threw ${describeError(last.error)}` : `answered ${describeValue(last.value)}`;
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; the last check ${seen}`,
        'error' in last ? { cause: last.error } : undefined,
      );
    }
    await sleep(intervalMs);
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : describeValue(error);
}

function describeValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
