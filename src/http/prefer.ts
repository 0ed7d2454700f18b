/** Longest `Prefer: wait=N` honoured, in seconds (RFC 7240 leaves the cap to the server). */
export const MAX_WAIT_S = 60;

/** The `wait` preference of a `Prefer` header (RFC 7240), capped at MAX_WAIT_S; undefined without one. */
export function preferredWaitS(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return undefined;
  const match = /(?:^|[,;\s])wait\s*=\s*"?(\d+)"?/i.exec(value);
  return match ? Math.min(MAX_WAIT_S, Number(match[1])) : undefined;
}
