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

/** A page cursor: tenant and id (a tenant's own listing pages by id alone, in the same order). */
export const scheduleCursor = (record: { tenant: string; id: string }): string => `${record.tenant}\n${record.id}`;
