import { format } from 'node:util';
import type { Logger } from 'pino';
import type { JobLogLine } from '../jobs/job.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
/** Longest kept line; the rest is cut. */
const LINE_MAX = 2000;
const SECRET_KEY = /pass(word|wd)?|secret|token|authori[sz]ation|api[-_]?key|cookie|credential|private[-_]?key/i;
const SECRET_TEXT: [RegExp, string][] = [
  [/(bearer\s+)[^\s"',;]+/gi, '$1[redacted]'],
  [/(\b(?:password|passwd|pwd|secret|token|api[-_]?key|access[-_]?key)["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi, '$1[redacted]'],
  [/whsec_[A-Za-z0-9+/=]+/g, 'whsec_[redacted]'],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)[^@\s/]+@/gi, '$1[redacted]@'],
];

/** Masks what looks like a secret in a line a handler logged: values of secret-named fields, tokens, URL passwords. */
export function redact(text: string): string {
  let redacted = text;
  for (const [pattern, replacement] of SECRET_TEXT) redacted = redacted.replace(pattern, replacement);
  return redacted;
}

function redactFields(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return { type: value.name, message: value.message };
  if (value === null || typeof value !== 'object' || depth > 4) return value;
  if (Array.isArray(value)) return value.slice(0, 50).map((item) => redactFields(item, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, SECRET_KEY.test(key) ? '[redacted]' : redactFields(item, depth + 1)]));
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
  for (const level of LEVELS) {
    const write: (...args: unknown[]) => void = base[level].bind(base);
    const kept = level === 'info' || level === 'warn' || level === 'error' || level === 'fatal' || base.isLevelEnabled(level);
    (logger as unknown as Record<string, (...args: unknown[]) => void>)[level] = (...args: unknown[]) => {
      write(...args);
      if (kept) keep({ at: Date.now(), attempt, level, message: redact(lineText(args)).slice(0, LINE_MAX) });
    };
  }
  return logger;
}
