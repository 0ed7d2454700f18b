import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scheduleCursor } from '../../src/schedules/schedule-store.js';
import { scheduleRecord, type StorePair } from './schedule-fixtures.js';

/** What every ScheduleStore does (schedule-store.ts), run on memory and Redis (schedule-store.test.ts) and Cluster. */
export function describeScheduleStoreContract(name: string, makePair: () => Promise<StorePair>): void {
  describe(`ScheduleStore contract: ${name}`, () => {
    let pair: StorePair;
    beforeEach(async () => {
      pair = await makePair();
    });
    afterEach(() => pair.close());

    it('saves by compare-and-set on the version, and reads back what it saved', async () => {
      const record = scheduleRecord({ id: 'nightly', tenant: 'acme' });
      expect(await pair.schedules.save(record, 0)).toBe('saved');
      expect(await pair.schedules.save(record, 0)).toBe('conflict'); // it exists now
      expect(await pair.schedules.get('acme', 'nightly')).toEqual(record);
      expect(await pair.schedules.get('other', 'nightly')).toBeUndefined();
      const edited = { ...record, priority: 5, version: 2 };
      expect(await pair.schedules.save(edited, 1)).toBe('saved');
      expect(await pair.schedules.save({ ...record, priority: 9, version: 2 }, 1)).toBe('conflict');
      expect((await pair.schedules.get('acme', 'nightly'))!.priority).toBe(5);
    });

    it('refuses a tenant’s schedule beyond the limit, not an edit of one it has', async () => {
      for (const id of ['a', 'b'])
        expect(await pair.schedules.save(scheduleRecord({ id, tenant: 'acme' }), 0, { maxPerTenant: 2 })).toBe('saved');
      expect(await pair.schedules.save(scheduleRecord({ id: 'c', tenant: 'acme' }), 0, { maxPerTenant: 2 })).toBe(
        'too-many',
      );
      expect(await pair.schedules.save(scheduleRecord({ id: 'c', tenant: 'bolt' }), 0, { maxPerTenant: 2 })).toBe(
        'saved',
      );
      const a = (await pair.schedules.get('acme', 'a'))!;
      expect(await pair.schedules.save({ ...a, version: 2 }, 1, { maxPerTenant: 2 })).toBe('saved');
    });

    it('lists a tenant’s schedules by id with a cursor, filters by type and paused, and all tenants for the admin', async () => {
      for (const id of ['e', 'a', 'd', 'b', 'c'])
        await pair.schedules.save(
          scheduleRecord({ id, tenant: 'acme', type: id === 'd' ? 'sleep' : 'echo', paused: id === 'b' }),
          0,
        );
      await pair.schedules.save(scheduleRecord({ id: 'z', tenant: 'bolt' }), 0);
      const first = await pair.schedules.list({ tenant: 'acme', limit: 2 });
      expect(first.schedules.map((s) => s.id)).toEqual(['a', 'b']);
      const second = await pair.schedules.list({ tenant: 'acme', limit: 2, after: first.nextAfter! });
      expect(second.schedules.map((s) => s.id)).toEqual(['c', 'd']);
      const last = await pair.schedules.list({ tenant: 'acme', limit: 2, after: second.nextAfter! });
      expect(last).toEqual({ schedules: [expect.objectContaining({ id: 'e' })], nextAfter: null });
      expect(
        (await pair.schedules.list({ tenant: 'acme', limit: 10, type: 'sleep' })).schedules.map((s) => s.id),
      ).toEqual(['d']);
      expect(
        (await pair.schedules.list({ tenant: 'acme', limit: 10, paused: true })).schedules.map((s) => s.id),
      ).toEqual(['b']);
      const all = await pair.schedules.list({ limit: 5 });
      expect(all.schedules.map(scheduleCursor)).toEqual(['acme\na', 'acme\nb', 'acme\nc', 'acme\nd', 'acme\ne']);
      expect((await pair.schedules.list({ limit: 5, after: all.nextAfter! })).schedules.map((s) => s.id)).toEqual([
        'z',
      ]);
    });

    it('tells subscribers of every save and delete', async () => {
      let heard = 0;
      const stop = await pair.schedules.subscribe(() => heard++);
      await pair.schedules.save(scheduleRecord({ id: 'a' }), 0);
      await pair.schedules.delete('-', 'a');
      await pair.schedules.delete('-', 'a'); // nothing deleted: nothing to tell
      await expect.poll(() => heard, { timeout: 2000 }).toBe(2);
      stop();
      await pair.schedules.save(scheduleRecord({ id: 'b' }), 0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(heard).toBe(2);
    });

    it('lists due schedules soonest first, not paused ones nor ones without a next run; deletes', async () => {
      const now = Date.now();
      await pair.schedules.save(scheduleRecord({ id: 'later', nextRunAt: now - 10 }), 0);
      await pair.schedules.save(scheduleRecord({ id: 'sooner', nextRunAt: now - 20 }), 0);
      await pair.schedules.save(scheduleRecord({ id: 'future', nextRunAt: now + 60_000 }), 0);
      await pair.schedules.save(scheduleRecord({ id: 'paused', nextRunAt: now - 30, paused: true }), 0);
      await pair.schedules.save(scheduleRecord({ id: 'ended', nextRunAt: null }), 0);
      expect((await pair.schedules.due(now, 10)).map((s) => s.id)).toEqual(['sooner', 'later']);
      expect((await pair.schedules.due(now, 1)).map((s) => s.id)).toEqual(['sooner']);
      expect(await pair.schedules.nextDueAt()).toBe(now - 20);
      expect(await pair.schedules.delete('-', 'sooner')).toBe(true);
      expect(await pair.schedules.delete('-', 'sooner')).toBe(false);
      expect((await pair.schedules.due(now, 10)).map((s) => s.id)).toEqual(['later']);
      expect(await pair.schedules.get('-', 'sooner')).toBeUndefined();
    });
  });
}
