import type { JobLogLine } from './job.js';

/*
 * What a job's log line is, wherever it was written (a handler's ctx.log, a remote worker's POST
 * /v1/leases/{lease_id}/logs): its levels, its longest kept length, and the masking of secrets in its text.
 * Pure, so the worker pool and the routes share it without depending on each other.
 */

export const LOG_LEVELS = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
] as const satisfies readonly JobLogLine['level'][];
/** Longest kept line; the rest is cut. */
export const LOG_LINE_MAX = 2000;

const SECRET_TEXT: [RegExp, string][] = [
  [/(bearer\s+)[^\s"',;]+/gi, '$1[redacted]'],
  [
    /(\b(?:password|passwd|pwd|secret|token|api[-_]?key|access[-_]?key)["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi,
    '$1[redacted]',
  ],
  [/whsec_[A-Za-z0-9+/=]+/g, 'whsec_[redacted]'],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)[^@\s/]+@/gi, '$1[redacted]@'],
];

/** Masks what looks like a secret in a logged line: values of secret-named fields, tokens, URL passwords. */
export function redact(text: string): string {
  let redacted = text;
  for (const [pattern, replacement] of SECRET_TEXT) redacted = redacted.replace(pattern, replacement);
  return redacted;
}

/** A line as it is kept: secrets masked, then cut to LOG_LINE_MAX. */
export const keptLineText = (text: string): string => redact(text).slice(0, LOG_LINE_MAX);
