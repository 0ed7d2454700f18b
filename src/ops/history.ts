import {
  HISTORY_WINDOWS,
  type FinishedSample,
  type History,
  type HistoryBucket,
  type HistoryWindow,
  type Percentiles,
  type TypeHistory,
} from './ops-store.js';

/**
 * How both ops stores keep stats history: per time bucket, one flat map of counters (a Redis hash, HINCRBY),
 * its fields named `<type>|<metric>`:
 *   s, f, c   jobs that succeeded, failed, were canceled
 *   d         the latest queue depth recorded (HSET, not added)
 *   w<i>, r<i>  wait / run time histogram: samples that fell in log-scale bin i (see `binOf`)
 * Percentiles are computed from the bins when read. A type may contain `|`: fields are split at the last one.
 */

/** Bins per doubling: each bin spans a factor 2^(1/4) ≈ 1.19, so its middle is within ~9 % of any value in it. */
const BINS_PER_DOUBLING = 4;
/** The last bin holds everything from ~11 days up. */
const MAX_BIN = 120;

/** Bin 0: up to 1 ms; bin i: (2^((i-1)/4), 2^(i/4)] ms. */
export function binOf(ms: number): number {
  if (!(ms > 1)) return 0;
  return Math.min(MAX_BIN, Math.ceil(BINS_PER_DOUBLING * Math.log2(ms)));
}

/** The value a bin stands for: its geometric middle (0.5 ms for bin 0), to 0.1 ms. */
export function binValue(bin: number): number {
  const value = bin === 0 ? 0.5 : 2 ** ((bin - 0.5) / BINS_PER_DOUBLING);
  return Math.round(value * 10) / 10;
}

/** Nearest-rank percentiles of a histogram (bin → count); null when it is empty. */
export function percentiles(bins: Map<number, number>): Percentiles | null {
  const sorted = [...bins].filter(([, count]) => count > 0).sort(([a], [b]) => a - b);
  const count = sorted.reduce((total, [, n]) => total + n, 0);
  if (count === 0) return null;
  const at = (p: number): number => {
    const rank = Math.max(1, Math.ceil(p * count));
    let seen = 0;
    for (const [bin, n] of sorted) {
      seen += n;
      if (seen >= rank) return binValue(bin);
    }
    return binValue(sorted[sorted.length - 1]![0]);
  };
  return { count, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export const field = (type: string, metric: string): string => `${type}|${metric}`;

const statusMetric = { succeeded: 's', failed: 'f', canceled: 'c' } as const;

/** The counter increments one batch of samples makes in one bucket width: bucket start → field → increment. */
export function incrementsFor(samples: FinishedSample[], bucketMs: number): Map<number, Map<string, number>> {
  const buckets = new Map<number, Map<string, number>>();
  const add = (bucket: Map<string, number>, name: string) => bucket.set(name, (bucket.get(name) ?? 0) + 1);
  for (const sample of samples) {
    const start = bucketStart(sample.at, bucketMs);
    let bucket = buckets.get(start);
    if (!bucket) buckets.set(start, (bucket = new Map<string, number>()));
    add(bucket, field(sample.type, statusMetric[sample.status]));
    if (sample.waitMs !== null && Number.isFinite(sample.waitMs))
      add(bucket, field(sample.type, `w${binOf(Math.max(0, sample.waitMs))}`));
    if (sample.runMs !== null && Number.isFinite(sample.runMs))
      add(bucket, field(sample.type, `r${binOf(Math.max(0, sample.runMs))}`));
  }
  return buckets;
}

export const bucketStart = (at: number, bucketMs: number): number => Math.floor(at / bucketMs) * bucketMs;

/** The bucket starts of a window ending at `now`, oldest first (the last one holds `now`). */
export function windowBuckets(window: HistoryWindow, now: number): number[] {
  const { windowMs, bucketMs } = HISTORY_WINDOWS[window];
  const last = bucketStart(now, bucketMs);
  const count = windowMs / bucketMs;
  return Array.from({ length: count }, (_, i) => last - (count - 1 - i) * bucketMs);
}

/** One bucket's flat counters → per type history. */
export function bucketFromFields(at: number, fields: Record<string, string | number>): HistoryBucket {
  const raw = new Map<
    string,
    { counts: Record<string, number>; depth: number | null; wait: Map<number, number>; run: Map<number, number> }
  >();
  for (const [name, value] of Object.entries(fields)) {
    const cut = name.lastIndexOf('|');
    if (cut < 0) continue;
    const type = name.slice(0, cut);
    const metric = name.slice(cut + 1);
    let entry = raw.get(type);
    if (!entry) raw.set(type, (entry = { counts: {}, depth: null, wait: new Map(), run: new Map() }));
    const n = Number(value);
    if (metric === 'd') entry.depth = n;
    else if (metric.startsWith('w')) entry.wait.set(Number(metric.slice(1)), n);
    else if (metric.startsWith('r')) entry.run.set(Number(metric.slice(1)), n);
    else entry.counts[metric] = n;
  }
  const types: Record<string, TypeHistory> = {};
  for (const [type, entry] of [...raw].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const succeeded = entry.counts.s ?? 0;
    const failed = entry.counts.f ?? 0;
    const canceled = entry.counts.c ?? 0;
    types[type] = {
      succeeded,
      failed,
      canceled,
      finished: succeeded + failed + canceled,
      depth: entry.depth,
      wait_ms: percentiles(entry.wait),
      run_ms: percentiles(entry.run),
    };
  }
  return { at, types };
}

/** The History answer from each bucket's fields (a missing bucket has none). */
export function assembleHistory(
  window: HistoryWindow,
  starts: number[],
  fieldsOf: (start: number) => Record<string, string | number> | undefined,
): History {
  const { bucketMs } = HISTORY_WINDOWS[window];
  return {
    window,
    bucket_ms: bucketMs,
    from: starts[0]!,
    to: starts[starts.length - 1]! + bucketMs,
    buckets: starts.map((start) => bucketFromFields(start, fieldsOf(start) ?? {})),
  };
}
