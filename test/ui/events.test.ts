import { describe, expect, it } from 'vitest';
import { MAX_WATCHED, progressOnly, sameAs, stable, watchable } from '../../src/admin-ui/events.js';

/* What the dashboard makes of the event stream (src/admin-ui/events.js, served to the page as is), in Node. */

const id = (n: number) => `01JD3M5W6SX1T4KQ8V0ZC${String(n).padStart(5, '0')}`;

describe('stable', () => {
  it('writes equal values the same, whatever the order of their keys, leaving undefined fields out', () => {
    expect(stable({ b: 1, a: [{ d: 2, c: null }] })).toBe(stable({ a: [{ c: null, d: 2 }], b: 1 }));
    expect(stable({ a: 1, pool: undefined })).toBe(stable({ a: 1 }));
    expect(stable(undefined)).toBe('undefined');
    expect(stable('x')).toBe('"x"');
  });
});

describe('sameAs and progressOnly (does a job event say anything new?)', () => {
  const known = {
    id: id(1),
    status: 'running',
    attempt: 1,
    progress: { percent: 10 },
    version: 3,
    updated_at: 't1',
    logs: [],
  };
  it('is the same when every field the event carries is equal (fields it lacks do not count)', () => {
    expect(sameAs({ id: id(1), status: 'running', progress: { percent: 10 } }, known)).toBe(true);
    expect(sameAs({ id: id(1), status: 'succeeded' }, known)).toBe(false);
    expect(sameAs({ id: id(1) }, null)).toBe(false);
  });

  it('tells a change of progress alone (drawn at once) from any other change (read again with the timeline)', () => {
    expect(progressOnly({ ...known, progress: { percent: 50 }, version: 4, updated_at: 't2' }, known)).toBe(true);
    expect(progressOnly({ ...known, progress: { percent: 100 }, status: 'succeeded' }, known)).toBe(false);
    expect(progressOnly({ ...known, attempt: 2 }, known)).toBe(false);
  });
});

describe('watchable', () => {
  it('keeps well-formed job ids once each, at most MAX_WATCHED (a malformed one would refuse the whole stream)', () => {
    expect(watchable([id(1), 'not-an-id', id(1), id(2), '', id(3).toLowerCase()])).toEqual([id(1), id(2)]);
    expect(watchable(Array.from({ length: 80 }, (_, n) => id(n)))).toHaveLength(MAX_WATCHED);
    expect(watchable(new Set([id(5)]).values())).toEqual([id(5)]);
  });
});
