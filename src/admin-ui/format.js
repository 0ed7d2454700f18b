// @ts-check
/*
 * The dashboard's text formatting and the chart's arithmetic: no DOM, no clock of their own (the time is an
 * argument), so they are unit-tested in Node (test/ui/format.test.ts). Their signatures are in format.d.ts.
 */

/**
 * A duration as text: "350 ms", "4.2 s", "42 s", "3 min 5 s", "2 h 7 min", "1 d 3 h". The value is rounded
 * to the precision it is shown with before it is split into units, so the smaller unit never reaches the size
 * of the larger one: 59.6 s is "1 min", 1 h 59.6 min is "2 h", 23 h 59.9 min is "1 d" (never "60 s",
 * "1 h 60 min" or "1 d 24 h"). A zero smaller unit is left out ("1 h", not "1 h 0 min"). "—" for no value.
 *
 * @type {typeof import('./format.js').fmtDuration}
 */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 0) return `-${fmtDuration(-seconds)}`;
  const ms = Math.round(seconds * 1000);
  if (ms < 1000) return `${ms} ms`;
  const tenths = Math.round(seconds * 10);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)} s`;
  const wholeSeconds = Math.round(seconds);
  if (wholeSeconds < 60) return `${wholeSeconds} s`;
  if (wholeSeconds < 3600) return twoUnits(Math.floor(wholeSeconds / 60), 'min', wholeSeconds % 60, 's');
  const minutes = Math.round(seconds / 60);
  if (minutes < 24 * 60) return twoUnits(Math.floor(minutes / 60), 'h', minutes % 60, 'min');
  const hours = Math.round(seconds / 3600);
  return twoUnits(Math.floor(hours / 24), 'd', hours % 24, 'h');
}

/** @type {(big: number, bigUnit: string, small: number, smallUnit: string) => string} */
const twoUnits = (big, bigUnit, small, smallUnit) =>
  small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`;

/** @type {typeof import('./format.js').ago} */
export function ago(iso, now) {
  if (!iso) return '—';
  const seconds = (now - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(seconds)) return String(iso);
  return seconds < 0 ? `in ${fmtDuration(-seconds)}` : `${fmtDuration(seconds)} ago`;
}

/** @type {(n: number) => string} */
const pad = (n) => String(n).padStart(2, '0');

/** @type {typeof import('./format.js').fmtTime} */
export function fmtTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** @type {typeof import('./format.js').updatedAt} */
export const updatedAt = (now) => `updated ${fmtTime(new Date(now).toISOString()).slice(11)}`;

/** @type {typeof import('./format.js').shortId} */
export const shortId = (id) => (id.length > 12 ? `${id.slice(0, 4)}…${id.slice(-6)}` : id);

/** @type {typeof import('./format.js').plural} */
export const plural = (count, noun) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** @type {typeof import('./format.js').num} */
export const num = (value) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** @type {typeof import('./format.js').pretty} */
export const pretty = (value) => JSON.stringify(value, null, 2) ?? 'undefined';

/** @type {typeof import('./format.js').scheduleRule} */
export function scheduleRule({ cron, every_s: everyS, timezone }) {
  if (typeof cron === 'string') return `cron ${cron}${timezone ? ` (${timezone})` : ''}`;
  if (typeof everyS === 'number' && everyS > 0) return `every ${fmtDuration(everyS)}`;
  return '—';
}

/**
 * GET /admin/stats/history as historyPoints reads it; it takes `unknown` because it checks every field.
 * @typedef {{ from?: unknown, to?: unknown, bucket_s?: unknown, buckets?: unknown }} HistoryAnswer
 * @typedef {{ at?: unknown, types?: Record<string, Record<string, unknown>> | null }} HistoryBucket
 * @typedef {import('./format.js').HistoryPoint} HistoryPoint
 */

/**
 * The "Last hour" chart's points from GET /admin/stats/history ({from, to, bucket_s, buckets: [{at, types:
 * {<type>: {finished, failed, …}}}]}): one point {at, finished, failed} per bucket from `from` to `to`, summed
 * over the types, the last one being the current, partial bucket.
 *
 * `finishedLastMinute` (GET /admin/stats, counted by the job store as jobs finish) is shown beside the chart and
 * may be ahead of the history, which workers send in batches (within a second or so) and the page reads less
 * often: when it says more jobs finished in the last minute than the buckets covering that minute hold, the
 * difference is added to the last (current) point, as `pending`. So the chart is never emptier than the
 * "finished last minute" figure next to it.
 *
 * @type {typeof import('./format.js').historyPoints}
 */
export function historyPoints(input, finishedLastMinute = 0, now = Date.now()) {
  const data = /** @type {HistoryAnswer | null | undefined} */ (input);
  const buckets = /** @type {HistoryBucket[]} */ (Array.isArray(data?.buckets) ? data.buckets : []);
  const stepMs = num(data?.bucket_s) * 1000;
  /** @type {Map<number, HistoryPoint>} */
  const totals = new Map();
  for (const bucket of buckets) {
    const at = Date.parse(String(bucket.at));
    if (!Number.isFinite(at)) continue;
    let finished = 0;
    let failed = 0;
    for (const counts of Object.values(bucket.types ?? {})) {
      failed += num(counts.failed);
      finished += num(counts.finished ?? num(counts.succeeded) + num(counts.failed) + num(counts.canceled));
    }
    totals.set(at, { at, finished: Math.max(finished, failed), failed });
  }
  const from = Date.parse(String(data?.from));
  const to = Date.parse(String(data?.to));
  /** @type {HistoryPoint[]} */
  let points;
  if (!(stepMs > 0) || !Number.isFinite(from) || !Number.isFinite(to) || (to - from) / stepMs > 2000) {
    points = [...totals.values()].sort((a, b) => a.at - b.at);
  } else {
    points = [];
    for (let at = Math.floor(from / stepMs) * stepMs; at < to; at += stepMs)
      points.push(totals.get(at) ?? { at, finished: 0, failed: 0 });
    for (const point of totals.values()) if (!points.some((candidate) => candidate.at === point.at)) points.push(point);
    points.sort((a, b) => a.at - b.at);
  }
  const lastMinute = num(finishedLastMinute);
  if (lastMinute > 0) {
    // Buckets that overlap the last 60 s (with 1-minute buckets: the current one and the one before).
    const since = now - 60_000;
    const recorded = points
      .filter((point) => (stepMs > 0 ? point.at + stepMs > since : point.at > since))
      .reduce((sum, point) => sum + point.finished, 0);
    if (lastMinute > recorded) {
      if (points.length === 0)
        points.push({ at: stepMs > 0 ? Math.floor(now / stepMs) * stepMs : now, finished: 0, failed: 0 });
      const last = /** @type {HistoryPoint} */ (points.at(-1));
      points[points.length - 1] = {
        ...last,
        finished: last.finished + (lastMinute - recorded),
        pending: lastMinute - recorded,
      };
    }
  }
  return points;
}
