// Types of format.js (plain JS served to the browser as is) for the TypeScript tests that import it.

/** A duration in seconds as text ("350 ms", "4.2 s", "3 min 5 s", "2 h 7 min", "1 d 3 h"); "—" for no value. */
export function fmtDuration(seconds: number | null | undefined): string;

/** How long ago `iso` was at `now` (epoch ms): "3 min 5 s ago", or "in 2 h". */
export function ago(iso: string | null | undefined, now: number): string;

export interface HistoryPoint {
  /** Start of the bucket, epoch ms. */
  at: number;
  finished: number;
  failed: number;
  /** Finishes of the last minute not yet in the history, added to the current bucket. */
  pending?: number;
}

/** The "Last hour" chart's points from a GET /admin/stats/history answer, topped up to `finishedLastMinute`. */
export function historyPoints(data: unknown, finishedLastMinute?: number, now?: number): HistoryPoint[];
