// The signatures of format.js (plain JS served to the browser as is). One declaration for both readers:
// the TypeScript tests that import format.js, and format.js itself, whose exports are typed from here
// (`@type {typeof import('./format.js').…}`: the type checker reads this file for that specifier), so the
// two cannot drift apart. It has no DOM types: the project's Node tsconfig reads it too.

/** A duration in seconds as text ("350 ms", "4.2 s", "3 min 5 s", "2 h 7 min", "1 d 3 h"); "—" for no value. */
export function fmtDuration(seconds: number | null | undefined): string;

/** How long ago `iso` was at `now` (epoch ms): "3 min 5 s ago", or "in 2 h". */
export function ago(iso: string | null | undefined, now: number): string;

/** A time in the browser's time zone, "2026-01-02 13:04:05"; "—" for none, the text itself when it is no time. */
export function fmtTime(iso: string | null | undefined): string;

/** "updated 13:04:05": when a view last read its data. */
export function updatedAt(now: number): string;

/** A long id shortened for a table cell ("01JD…ZC2N7G"); short ones as they are. */
export function shortId(id: string): string;

/** "1 job", "3 jobs". */
export function plural(count: number, noun: string): string;

/** A number the API sent, or 0 for anything else (absent, null, NaN). */
export function num(value: unknown): number;

/** JSON as shown in the page: indented, "undefined" for no value. */
export function pretty(value: unknown): string;

/** When a schedule fires: "cron 0 3 * * * (Europe/Paris)", "every 1 h 30 min"; "—" when it says neither. */
export function scheduleRule(schedule: { cron?: string | null; every_s?: number | null; timezone?: string }): string;

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
