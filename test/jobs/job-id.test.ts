import { describe, expect, it } from 'vitest';
import { highestIdAt, isJobId, jobIdTime, lowestIdAt, newJobId } from '../../src/jobs/job-id.js';

describe('job ids', () => {
  it('are canonical 26-character ULIDs carrying their creation time', () => {
    const now = Date.UTC(2026, 10, 22, 10, 0, 0, 123);
    const id = newJobId(now);
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(isJobId(id)).toBe(true);
    expect(jobIdTime(id)).toBe(now);
    expect(lowestIdAt(now) <= id && id <= highestIdAt(now)).toBe(true);
  });

  it('sort by creation time across milliseconds', () => {
    const ids = [5, 1, 4, 2, 3].map((offset) => newJobId(1_800_000_000_000 + offset));
    expect([...ids].sort().map(jobIdTime)).toEqual([1, 2, 3, 4, 5].map((offset) => 1_800_000_000_000 + offset));
  });

  it('are unique and unguessable within one millisecond: every random character takes every value', () => {
    const ids = Array.from({ length: 50_000 }, () => newJobId(1_800_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    for (let position = 10; position < 26; position++) {
      const seen = new Set(ids.map((id) => id[position]));
      expect(seen.size).toBe(32);
    }
    // Consecutive ids share no predictable relation (unlike a monotonic ULID, which adds one).
    const rank = new Map([...ids].sort().map((id, i) => [id, i]));
    const adjacentInOrder = ids.slice(1).filter((id, i) => rank.get(id) === rank.get(ids[i]!)! + 1).length;
    expect(adjacentInOrder).toBeLessThan(ids.length / 100);
  });

  it('rejects lower-case, wrong-length and out-of-alphabet ids', () => {
    const id = newJobId(Date.now());
    expect(isJobId(id.toLowerCase())).toBe(false);
    expect(isJobId(id.slice(1))).toBe(false);
    expect(isJobId(`${id.slice(0, 25)}U`)).toBe(false);
    expect(isJobId(`8${id.slice(1)}`)).toBe(false);
  });
});
