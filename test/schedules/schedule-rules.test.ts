import { describe, expect, it } from 'vitest';
import {
  CATCH_UP_MAX,
  cronProblem,
  isKnownTimezone,
  MISSED_AFTER_MS,
  nextFireAfter,
  planFires,
  type ScheduleRecord,
} from '../../src/schedules/schedule.js';
import { scheduleRecord } from './schedule-fixtures.js';

const at = (iso: string): number => Date.parse(iso);

/** A schedule created at 2026-01-01 00:00 UTC, every 10 s unless overridden. */
const schedule = (overrides: Partial<ScheduleRecord> = {}): ScheduleRecord =>
  scheduleRecord({
    id: 's',
    everyS: 10,
    nextRunAt: null,
    createdAt: at('2026-01-01T00:00:00Z'),
    updatedAt: at('2026-01-01T00:00:00Z'),
    ...overrides,
  });

describe('fire times', () => {
  it('counts an interval from the start (or creation), strictly after the given time, within start and end', () => {
    const every = schedule({ everyS: 10 });
    expect(nextFireAfter(every, at('2026-01-01T00:00:00Z'))).toBe(at('2026-01-01T00:00:10Z'));
    expect(nextFireAfter(every, at('2026-01-01T00:00:09.999Z'))).toBe(at('2026-01-01T00:00:10Z'));
    expect(nextFireAfter(every, at('2026-01-01T00:00:10Z'))).toBe(at('2026-01-01T00:00:20Z'));
    const later = schedule({ everyS: 10, startAt: at('2026-01-02T00:00:00Z'), endAt: at('2026-01-02T00:00:30Z') });
    expect(nextFireAfter(later, at('2026-01-01T00:00:00Z'))).toBe(at('2026-01-02T00:00:00Z'));
    expect(nextFireAfter(later, at('2026-01-02T00:00:20Z'))).toBe(at('2026-01-02T00:00:30Z'));
    expect(nextFireAfter(later, at('2026-01-02T00:00:30Z'))).toBeNull();
  });

  it('reads 5-field and 6-field (seconds) cron expressions in the timezone', () => {
    const daily = schedule({ everyS: null, cron: '0 9 * * *', timezone: 'America/New_York' });
    expect(nextFireAfter(daily, at('2026-07-01T00:00:00Z'))).toBe(at('2026-07-01T13:00:00Z')); // EDT, UTC-4
    expect(nextFireAfter(daily, at('2026-12-01T00:00:00Z'))).toBe(at('2026-12-01T14:00:00Z')); // EST, UTC-5
    const seconds = schedule({ everyS: null, cron: '*/15 * * * * *' });
    expect(nextFireAfter(seconds, at('2026-01-01T00:00:01Z'))).toBe(at('2026-01-01T00:00:15Z'));
  });

  it('fires 30 2 * * * in Europe/Berlin once on the days the clock skips and repeats 02:30 (croner: the gap runs at the next valid time, the overlap at its first occurrence)', () => {
    const nightly = schedule({ everyS: null, cron: '30 2 * * *', timezone: 'Europe/Berlin' });
    const fires = (from: string, count: number): string[] => {
      const out: string[] = [];
      let after = at(from);
      for (let i = 0; i < count; i++) {
        after = nextFireAfter(nightly, after)!;
        out.push(new Date(after).toISOString());
      }
      return out;
    };
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    expect(fires('2026-03-27T12:00:00Z', 3)).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice, the job runs once.
    expect(fires('2026-10-23T12:00:00Z', 3)).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('names what is wrong with a bad cron expression or timezone', () => {
    expect(cronProblem('0 9 * * *', 'UTC')).toBeNull();
    expect(cronProblem('61 * * * *', 'UTC')).toMatch(/minute/);
    expect(cronProblem('every day', 'UTC')).not.toBeNull();
    expect(isKnownTimezone('Europe/Berlin')).toBe(true);
    expect(isKnownTimezone('Mars/Olympus')).toBe(false);
  });
});

describe('a firing', () => {
  const base = at('2026-01-01T00:00:00Z');
  const every10 = (catchUp: ScheduleRecord['catchUp']) => schedule({ everyS: 10, catchUp, nextRunAt: base + 10_000 });

  it('makes the job of the fire time that is due, and moves to the next', () => {
    expect(planFires(every10('none'), base + 10_100)).toEqual({
      create: [base + 10_000],
      missed: 0,
      nextRunAt: base + 20_000,
    });
  });

  it('after five missed fire times makes none, one (the latest) or five jobs: catch_up none, latest, all', () => {
    const now = base + 50_000 + MISSED_AFTER_MS + 1; // 10 s … 50 s all missed
    expect(planFires(every10('none'), now)).toEqual({ create: [], missed: 5, nextRunAt: base + 60_000 });
    expect(planFires(every10('latest'), now)).toEqual({ create: [base + 50_000], missed: 4, nextRunAt: base + 60_000 });
    expect(planFires(every10('all'), now).create).toEqual([10, 20, 30, 40, 50].map((s) => base + s * 1000));
  });

  it('with an on-time fire time after a gap, latest runs only that one', () => {
    const plan = planFires(every10('latest'), base + 50_500);
    expect(plan.create).toEqual([base + 50_000]);
    expect(plan.missed).toBe(4);
  });

  it('bounds catch_up all to the latest CATCH_UP_MAX, also after a gap of a million fire times', () => {
    const now = base + 1_000_000 * 10_000 + MISSED_AFTER_MS + 5; // every fire time missed
    const plan = planFires(every10('all'), now);
    expect(plan.create).toHaveLength(CATCH_UP_MAX);
    expect(plan.create.at(-1)).toBe(base + 1_000_000 * 10_000);
    expect(plan.missed).toBe(1_000_000 - CATCH_UP_MAX);
    expect(plan.nextRunAt).toBe(base + 1_000_001 * 10_000);
  });
});
