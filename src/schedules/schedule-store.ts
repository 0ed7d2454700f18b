import type { ScheduleRecord } from './schedule.js';

/**
 * Where schedules live: the memory store (one process) or Redis (shared by every instance), beside the jobs.
 * Both pass test/schedules/schedule-store.contract.ts.
 *
 * Guarantees
 * - `save` is a compare-and-set on `version`: of two writers that read the same version, one wins and the other
 *   learns of it ('conflict'), so a firing never overwrites an edit, nor two firings each other.
 * - `due` lists schedules whose `nextRunAt` has come (not paused), soonest first.
 * - A tenant's schedules list in id order; the admin listing covers every tenant (tenant, then id).
 * - Every save and delete, on any instance sharing the store, reaches `subscribe`'s listeners (so an idle scheduler
 *   sleeps until the next fire time, not in a polling loop); a reconnect may lose one, hence schedulers also wake
 *   now and then.
 */
export interface ScheduleStore {
  get(tenant: string, id: string): Promise<ScheduleRecord | undefined>;
  /**
   * Stores `record` when the stored version is `expectedVersion` (0: no such schedule yet); its own `version` is
   * the new one. 'too-many' when creating would give the tenant more than `maxPerTenant` schedules.
   */
  save(
    record: ScheduleRecord,
    expectedVersion: number,
    options?: { maxPerTenant?: number },
  ): Promise<'saved' | 'conflict' | 'too-many'>;
  /** True when it was there. */
  delete(tenant: string, id: string): Promise<boolean>;
  list(query: ScheduleQuery): Promise<{ schedules: ScheduleRecord[]; nextAfter: string | null }>;
  /** Up to `max` schedules due at `now`, soonest first. */
  due(now: number, max: number): Promise<ScheduleRecord[]>;
  /** The earliest `nextRunAt` of any schedule not paused, or null. */
  nextDueAt(): Promise<number | null>;
  /** Calls `listener` after every save or delete; resolves once listening, to a function that stops it. */
  subscribe(listener: () => void): Promise<() => void>;
  close(): Promise<void>;
}

export interface ScheduleQuery {
  /** One tenant's schedules; every tenant's when absent (admin). */
  tenant?: string;
  type?: string;
  paused?: boolean;
  limit: number;
  /** The cursor of the last schedule of the previous page (`scheduleCursor`). */
  after?: string;
}

/** How often a change is read and tried again after other writers saved first (changeSchedule). */
export const MAX_SAVE_TRIES = 10;

/**
 * Reads the tenant's schedule `id`, asks `change` what it becomes (undefined: nothing to change), and saves that by
 * compare-and-set, again from a fresh read after another writer (a firing scheduler) saved first. `before` is the
 * schedule as `change` last saw it; `after` what is stored now (undefined when there is none).
 */
export async function changeSchedule(
  store: ScheduleStore,
  tenant: string,
  id: string,
  change: (current: ScheduleRecord | undefined) => ScheduleRecord | undefined,
  options: { maxPerTenant?: number } = {},
): Promise<{
  before: ScheduleRecord | undefined;
  after: ScheduleRecord | undefined;
  outcome: 'created' | 'changed' | 'unchanged' | 'too-many';
}> {
  for (let tries = 1; ; tries++) {
    const before = await store.get(tenant, id);
    const after = change(before);
    if (after === undefined) return { before, after: before, outcome: 'unchanged' };
    const saved = await store.save(after, before?.version ?? 0, options);
    if (saved === 'saved') return { before, after, outcome: before ? 'changed' : 'created' };
    if (saved === 'too-many') return { before, after: before, outcome: 'too-many' };
    if (tries === MAX_SAVE_TRIES)
      throw new Error(`schedule ${tenant}/${id}: still changed by others after ${tries} tries`);
  }
}

/** A page cursor: tenant and id (a tenant's own listing pages by id alone, in the same order). */
export const scheduleCursor = (record: { tenant: string; id: string }): string => `${record.tenant}\n${record.id}`;
