import { format } from 'node:util';
import type { Logger } from 'pino';
import type { JobLogLine } from '../jobs/job.js';
import { keptLineText, LOG_LEVELS } from '../jobs/log-lines.js';
import { LOG_LINES_MAX, type JobStore } from '../store/job-store.js';

/*
 * A handler's own log lines, from `ctx.log` to the store: the capturing logger (jobLogger, with secrets masked
 * by jobs/log-lines.ts) and the buffer that batches the lines of every running job into one store call (JobLogBuffer).
 * Both sit here so what a line is, how it is cleaned and how it is kept are read in one place.
 */

const SECRET_KEY = /pass(word|wd)?|secret|token|authori[sz]ation|api[-_]?key|cookie|credential|private[-_]?key/i;

function redactFields(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return { type: value.name, message: value.message };
  if (value === null || typeof value !== 'object' || depth > 4) return value;
  if (Array.isArray(value)) return value.slice(0, 50).map((item) => redactFields(item, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      SECRET_KEY.test(key) ? '[redacted]' : redactFields(item, depth + 1),
    ]),
  );
}

function lineText(args: unknown[]): string {
  const [first, ...rest] = args;
  if (typeof first === 'string') return format(first, ...rest);
  const message = typeof rest[0] === 'string' ? format(rest[0], ...rest.slice(1)) : '';
  let fields: string;
  try {
    fields = JSON.stringify(redactFields(first instanceof Error ? { err: first } : first)) ?? '';
  } catch {
    fields = '[unserializable fields]';
  }
  return fields === '{}' || fields === '' ? message : `${message} ${fields}`.trim();
}

/**
 * The `ctx.log` a handler gets: its job's pino logger, whose lines (info and above, or any level the logger
 * has enabled) are also handed to `keep`, as text with secrets masked, so operators see them with the job.
 */
export function jobLogger(base: Logger, attempt: number, keep: (line: JobLogLine) => void): Logger {
  const logger = Object.create(base) as Logger;
  for (const level of LOG_LEVELS) {
    const write: (...args: unknown[]) => void = base[level].bind(base);
    const kept =
      level === 'info' || level === 'warn' || level === 'error' || level === 'fatal' || base.isLevelEnabled(level);
    (logger as unknown as Record<string, (...args: unknown[]) => void>)[level] = (...args: unknown[]) => {
      write(...args);
      if (kept) keep({ at: Date.now(), attempt, level, message: keptLineText(lineText(args)) });
    };
  }
  return logger;
}

/** How long a kept line may wait for the next batch: operators see a running job's lines within about this. */
const FLUSH_MS = 1000;

/**
 * The log lines handlers wrote, per job, not yet in the store. Lines are batched (all running jobs' lines in
 * one store call, within FLUSH_MS) rather than written one by one, since a chatty handler would otherwise cost
 * a store call per line; the pool flushes when an attempt ends, so its lines are stored with its outcome.
 * Writing is best effort: a failed write is logged and its lines are dropped, never retried.
 */
export class JobLogBuffer {
  private readonly pending = new Map<string, JobLogLine[]>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Pick<JobStore, 'appendLogs'>,
    private readonly log: Logger,
  ) {}

  /** Keeps one of `jobId`'s lines for the next flush (a function, so it can be handed to jobLogger as it is). */
  readonly keep = (jobId: string, line: JobLogLine): void => {
    let lines = this.pending.get(jobId);
    if (!lines) this.pending.set(jobId, (lines = []));
    if (lines.length < LOG_LINES_MAX) lines.push(line); // a flood between two writes keeps its first lines
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  };

  /** Sends every kept line now, in one store call (not awaited). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0) return;
    const entries = [...this.pending].map(([jobId, lines]) => ({ jobId, lines }));
    this.pending.clear();
    this.store
      .appendLogs(entries)
      .catch((error: unknown) => this.log.warn({ err: error, jobs: entries.length }, 'could not store job log lines'));
  }
}
