import { describe, expect, it } from 'vitest';
import {
  ago,
  fmtDuration,
  fmtTime,
  historyPoints,
  num,
  plural,
  pretty,
  scheduleRule,
  shortId,
  updatedAt,
} from '../../src/admin-ui/format.js';

/* The dashboard's pure functions (src/admin-ui/format.js, served to the page as is), in Node. */

describe('fmtDuration', () => {
  it.each([
    [0, '0 ms'],
    [0.35, '350 ms'],
    [0.9994, '999 ms'],
    [0.9996, '1.0 s'], // not "1000 ms"
    [4.24, '4.2 s'],
    [9.94, '9.9 s'],
    [9.96, '10 s'], // not "10.0 s"
    [42.4, '42 s'],
    [59.4, '59 s'],
    [59.6, '1 min'], // not "60 s"
    [60, '1 min'],
    [61, '1 min 1 s'],
    [119.6, '2 min'], // not "1 min 60 s"
    [185, '3 min 5 s'],
    [3599.4, '59 min 59 s'],
    [3599.6, '1 h'], // not "59 min 60 s" nor "60 min"
    [59.6 * 60, '59 min 36 s'],
    [3600 + 59.6 * 60, '2 h'], // 1 h 59.6 min: not "1 h 60 min"
    [3600 + 7 * 60, '1 h 7 min'],
    [7 * 3600, '7 h'], // not "7 h 0 min"
    [23 * 3600 + 59.4 * 60, '23 h 59 min'],
    [23 * 3600 + 59.9 * 60, '1 d'], // not "23 h 60 min"
    [86_400, '1 d'],
    [86_400 + 3 * 3600, '1 d 3 h'],
    [86_400 + 23.6 * 3600, '2 d'], // not "1 d 24 h"
    [2 * 86_400 + 23.4 * 3600, '2 d 23 h'],
    [30 * 86_400, '30 d'],
  ])('%s s → %s', (seconds, text) => {
    expect(fmtDuration(seconds)).toBe(text);
  });

  it('never shows a smaller unit as large as the next one, for any value', () => {
    for (let seconds = 0; seconds < 3 * 86_400; seconds += seconds < 120 ? 0.01 : seconds < 7200 ? 0.7 : 13.3) {
      const text = fmtDuration(seconds);
      expect(text, `${seconds} s`).not.toMatch(/\b1000 ms|\b10\.0 s|\b60 s|\b60 min|\b24 h\b|(^| )0 (s|min|h)$/);
      expect(text, `${seconds} s`).toMatch(
        /^(\d+ ms|\d\.\d s|\d+ s|\d+ min( \d+ s)?|\d+ h( \d+ min)?|\d+ d( \d+ h)?)$/,
      );
    }
  });

  it('answers — for no value, and keeps the sign of a negative one', () => {
    expect(fmtDuration(null)).toBe('—');
    expect(fmtDuration(undefined)).toBe('—');
    expect(fmtDuration(Number.NaN)).toBe('—');
    expect(fmtDuration(Infinity)).toBe('—');
    expect(fmtDuration(-90)).toBe('-1 min 30 s');
  });
});

describe('ago', () => {
  const now = Date.parse('2026-01-02T12:00:00.000Z');
  it('says how long ago, or in how long, with carried units', () => {
    expect(ago('2026-01-02T11:57:55.000Z', now)).toBe('2 min 5 s ago');
    // An expiry 24 h away, read a moment later: "in 1 d", not "in 23 h 60 min".
    expect(ago(new Date(now + 86_400_000 - 3_000).toISOString(), now)).toBe('in 1 d');
    expect(ago(new Date(now + 2 * 86_400_000 - 60_000).toISOString(), now)).toBe('in 2 d');
    expect(ago(null, now)).toBe('—');
    expect(ago('not a time', now)).toBe('not a time');
  });
});

describe('fmtTime and the small formats', () => {
  it("shows a time in the browser's zone (here: the test process's), to the second", () => {
    const at = new Date(2026, 0, 2, 3, 4, 5); // local time
    expect(fmtTime(at.toISOString())).toBe('2026-01-02 03:04:05');
    expect(updatedAt(at.getTime())).toBe('updated 03:04:05');
    expect(fmtTime(null)).toBe('—');
    expect(fmtTime('')).toBe('—');
    expect(fmtTime('not a time')).toBe('not a time');
  });

  it('shortens long ids, counts with the right noun, reads numbers, pretty-prints JSON', () => {
    expect(shortId('01JD3M5W6SX1T4KQ8V0ZC2N7GH')).toBe('01JD…C2N7GH');
    expect(shortId('w-1')).toBe('w-1');
    expect(plural(1, 'job')).toBe('1 job');
    expect(plural(0, 'job')).toBe('0 jobs');
    expect(plural(3, 'queued job')).toBe('3 queued jobs');
    expect([num(4), num(null), num(undefined), num('4'), num(Number.NaN), num(Infinity)]).toEqual([4, 0, 0, 0, 0, 0]);
    expect(pretty({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}');
    expect(pretty(undefined)).toBe('undefined');
    expect(pretty(null)).toBe('null');
  });
});

describe('historyPoints (the "Last hour" panel)', () => {
  const minute = 60_000;
  const now = Date.parse('2026-01-02T12:30:20.000Z');
  const current = Math.floor(now / minute) * minute;
  /** A GET /admin/stats/history answer for the hour ending with the current minute. */
  const history = (buckets: { at: number; finished: number; failed?: number }[]) => ({
    window: '1h',
    bucket_s: 60,
    from: new Date(current - 59 * minute).toISOString(),
    to: new Date(current + minute).toISOString(),
    buckets: buckets.map(({ at, finished, failed = 0 }) => ({
      at: new Date(at).toISOString(),
      types: { echo: { succeeded: finished - failed, failed, canceled: 0, finished } },
    })),
  });
  const total = (points: { finished: number }[]) => points.reduce((sum, point) => sum + point.finished, 0);

  it('has one point per minute of the hour, the current, partial minute last', () => {
    const points = historyPoints(
      history([
        { at: current - 10 * minute, finished: 4, failed: 1 },
        { at: current, finished: 2 },
      ]),
      0,
      now,
    );
    expect(points).toHaveLength(60);
    expect(points.at(-1)).toEqual({ at: current, finished: 2, failed: 0 });
    expect(points.find((point) => point.at === current - 10 * minute)).toEqual({
      at: current - 10 * minute,
      finished: 4,
      failed: 1,
    });
    expect(total(points)).toBe(6);
  });

  it('is never emptier than "finished last minute": jobs the history does not hold yet go in the current minute', () => {
    // The stats say 7 finished in the last minute; the history (sent by workers in batches) has none yet.
    const points = historyPoints(history([]), 7, now);
    expect(total(points)).toBe(7);
    expect(points.at(-1)).toMatchObject({ at: current, finished: 7, pending: 7 });
    // Partly recorded: the current and the previous minute overlap the last 60 s; only what is missing is added.
    const partly = historyPoints(
      history([
        { at: current - minute, finished: 3 },
        { at: current, finished: 2 },
      ]),
      7,
      now,
    );
    expect(total(partly)).toBe(7);
    expect(partly.at(-1)).toMatchObject({ finished: 4, pending: 2 });
    // Fully recorded (or more: the previous minute reaches back beyond 60 s): nothing is added.
    const recorded = historyPoints(history([{ at: current - minute, finished: 9 }]), 7, now);
    expect(total(recorded)).toBe(9);
    expect(recorded.at(-1)).toEqual({ at: current, finished: 0, failed: 0 });
    // A finish older than the last minute does not count against it.
    const older = historyPoints(history([{ at: current - 5 * minute, finished: 5 }]), 2, now);
    expect(total(older)).toBe(7);
  });

  it('reads a history without bucket bounds, or none at all', () => {
    expect(historyPoints(null, 0, now)).toEqual([]);
    expect(
      historyPoints({ buckets: [{ at: new Date(current).toISOString(), types: { a: { finished: 1 } } }] }, 0, now),
    ).toEqual([{ at: current, finished: 1, failed: 0 }]);
    expect(total(historyPoints(null, 3, now))).toBe(3);
  });
});

describe('scheduleRule', () => {
  it.each([
    [{ cron: '0 3 * * *', every_s: null, timezone: 'Europe/Paris' }, 'cron 0 3 * * * (Europe/Paris)'],
    [{ cron: '*/5 * * * * *', timezone: '' }, 'cron */5 * * * * *'],
    [{ cron: null, every_s: 5400, timezone: 'UTC' }, 'every 1 h 30 min'],
    [{ every_s: 30 }, 'every 30 s'],
    [{}, '—'],
  ])('%j → %s', (schedule, text) => {
    expect(scheduleRule(schedule)).toBe(text);
  });
});
