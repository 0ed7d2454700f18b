import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../src/backoff.js';

/* The shared retry delay (jobs and webhook deliveries): exponential, capped, with equal jitter (50–100 % of the step). */

const low = () => 0;
const high = () => 1 - Number.EPSILON;

describe('backoffMs', () => {
  it('waits between half and all of the step, which doubles per attempt from the base', () => {
    const options = { baseMs: 1000, maxMs: 60_000 };
    for (const [attempt, step] of [
      [1, 1000],
      [2, 2000],
      [3, 4000],
      [6, 32_000],
    ] as const) {
      expect(backoffMs(attempt, options, low)).toBe(step / 2);
      expect(backoffMs(attempt, options, high)).toBe(step);
    }
  });

  it('never exceeds the cap, and keeps half of it as its floor once capped', () => {
    const options = { baseMs: 1000, maxMs: 5000 };
    for (const attempt of [4, 10, 60, 2000]) {
      expect(backoffMs(attempt, options, low)).toBe(2500);
      expect(backoffMs(attempt, options, high)).toBe(5000);
    }
  });

  it('stays within its bounds with Math.random, and spreads', () => {
    const options = { baseMs: 400, maxMs: 10_000 };
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const delay = backoffMs(3, options);
      expect(delay).toBeGreaterThanOrEqual(800);
      expect(delay).toBeLessThanOrEqual(1600);
      expect(Number.isInteger(delay)).toBe(true);
      seen.add(delay);
    }
    expect(seen.size).toBeGreaterThan(50);
  });

  it('treats an attempt below 1 as the first', () => {
    expect(backoffMs(0, { baseMs: 1000, maxMs: 60_000 }, high)).toBe(1000);
  });
});
