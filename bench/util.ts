import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { defineHandler } from '../src/handlers/handler.js';
import { ANONYMOUS_TENANT, type NewJob } from '../src/jobs/job.js';
import { newJobId } from '../src/jobs/job-id.js';

/** The job input of every queue benchmark: `{"value":"xxx…"}`, exactly 120 bytes of JSON. */
export const PAYLOAD: { value: string } = { value: 'x'.repeat(120 - '{"value":""}'.length) };
if (JSON.stringify(PAYLOAD).length !== 120) throw new Error('payload is not 120 bytes');

/** Finished jobs are kept a day, the service's default JOB_TTL_S. */
export const JOB_TTL_MS = 86_400_000;

/** The small result both engines store for a finished no-op job. */
export const RESULT = { ok: true };

/** A no-op job type: validates its input like a real handler would, returns a small result. */
export const noopHandler = defineHandler({
  type: 'noop',
  input: z.object({ value: z.string() }).strict(),
  async run() {
    return RESULT;
  },
});

export const silentLog: Logger = pino({ level: 'silent' });

export function newJob(type: string, input: unknown, now = Date.now()): NewJob {
  return {
    id: newJobId(now),
    type,
    tenant: ANONYMOUS_TENANT,
    input,
    metadata: {},
    priority: 0,
    maxAttempts: 3,
    timeoutS: null,
    createdAt: now,
    runAt: now,
  };
}

export const uniqueSuffix = (): string => randomBytes(3).toString('hex');

/** Reads a positive number from the environment, else the default. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Stops a process the bench started: SIGTERM, then SIGKILL if it is still there after 5 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Polls `done` every `everyMs` until it is true or `timeoutMs` passed; true when done. */
export async function waitUntil(done: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

/** Nearest-rank percentile (q in 0..1) of numbers; NaN for none. */
export function percentile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function log(message: string): void {
  const at = new Date().toISOString().slice(11, 19);
  process.stdout.write(`[bench ${at}] ${message}\n`);
}

export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const fmtMs = (n: number): string => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : 'n/a');
export const fmtRatio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a');

/** Runs `work` for `count` items with at most `parallel` in flight. */
export async function inBatches(
  count: number,
  batch: number,
  work: (index: number) => Promise<unknown>,
): Promise<void> {
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    const pending: Promise<unknown>[] = [];
    for (let i = start; i < end; i++) pending.push(work(i));
    await Promise.all(pending);
  }
}

/** Median (the mean of the middle two for an even count); NaN when there is none or any value is NaN. */
export function median(values: number[]): number {
  if (values.length === 0 || values.some((value) => Number.isNaN(value))) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Index of the median element of `values` (the lower middle for an even count): "the median round". */
export function medianIndex(values: number[]): number {
  const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  return order[Math.floor((order.length - 1) / 2)]?.index ?? 0;
}

/** "0.91× (0.88, 0.91, 0.97)": the median ratio, then every round's ratio in round order. */
export function fmtRatios(ratios: number[]): string {
  if (ratios.length <= 1) return fmtRatio(ratios[0] ?? Number.NaN);
  return `${fmtRatio(median(ratios))} (${ratios.map((ratio) => (Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a')).join(', ')})`;
}
