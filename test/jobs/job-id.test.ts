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

  it('made in one millisecond by one process sort in the order made (the first 1024), yet stay unguessable', () => {
    const ms = 1_800_000_000_000;
    const ordered = Array.from({ length: 1024 }, () => newJobId(ms));
    expect([...ordered].sort()).toEqual(ordered);
    const ids = [...ordered, ...Array.from({ length: 50_000 }, () => newJobId(ms))];
    expect(new Set(ids).size).toBe(ids.length);
    // 70 random bits after the count: every random character takes every value.
    for (let position = 12; position < 26; position++) expect(new Set(ids.map((id) => id[position])).size).toBe(32);
    // Ids past the count's range share its last value and fall back to random order among themselves.
    const rest = ids.slice(1024);
    const rank = new Map([...rest].sort().map((id, i) => [id, i]));
    const adjacentInOrder = rest.slice(1).filter((id, i) => rank.get(id) === rank.get(rest[i]!)! + 1).length;
    expect(adjacentInOrder).toBeLessThan(rest.length / 100);
  });

  it('rejects lower-case, wrong-length and out-of-alphabet ids', () => {
    const id = newJobId(Date.now());
    expect(isJobId(id.toLowerCase())).toBe(false);
    expect(isJobId(id.slice(1))).toBe(false);
    expect(isJobId(`${id.slice(0, 25)}U`)).toBe(false);
    expect(isJobId(`8${id.slice(1)}`)).toBe(false);
  });
});
