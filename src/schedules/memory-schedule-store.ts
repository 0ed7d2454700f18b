import type { ScheduleRecord } from './schedule.js';
import { scheduleCursor, type ScheduleQuery, type ScheduleStore } from './schedule-store.js';

/** Schedules in this process's memory (with the memory job store): lost on restart. */
export class MemoryScheduleStore implements ScheduleStore {
  /** `tenant\nid` → the schedule. */
  private readonly schedules = new Map<string, ScheduleRecord>();
  private readonly listeners = new Set<() => void>();

  async get(tenant: string, id: string): Promise<ScheduleRecord | undefined> {
    const record = this.schedules.get(scheduleCursor({ tenant, id }));
    return record && structuredClone(record);
  }

  async save(
    record: ScheduleRecord,
    expectedVersion: number,
    options: { maxPerTenant?: number } = {},
  ): Promise<'saved' | 'conflict' | 'too-many'> {
    const name = scheduleCursor(record);
    const stored = this.schedules.get(name);
    if ((stored?.version ?? 0) !== expectedVersion) return 'conflict';
    if (!stored && options.maxPerTenant !== undefined) {
      let count = 0;
      for (const each of this.schedules.values()) if (each.tenant === record.tenant) count++;
      if (count >= options.maxPerTenant) return 'too-many';
    }
    this.schedules.set(name, structuredClone(record));
    this.changed();
    return 'saved';
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    const deleted = this.schedules.delete(scheduleCursor({ tenant, id }));
    if (deleted) this.changed();
    return deleted;
  }

  async subscribe(listener: () => void): Promise<() => void> {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Listeners hear of it asynchronously, as from Redis. */
  private changed(): void {
    queueMicrotask(() => {
      for (const listener of [...this.listeners]) listener();
    });
  }

  async list(query: ScheduleQuery): Promise<{ schedules: ScheduleRecord[]; nextAfter: string | null }> {
    const after = query.after === undefined ? undefined : this.fullCursor(query.after, query.tenant);
    const names = [...this.schedules.keys()].sort();
    const schedules: ScheduleRecord[] = [];
    for (const name of names) {
      if (after !== undefined && name <= after) continue;
      const record = this.schedules.get(name)!;
      if (query.tenant !== undefined && record.tenant !== query.tenant) continue;
      if (query.type !== undefined && record.type !== query.type) continue;
      if (query.paused !== undefined && record.paused !== query.paused) continue;
      if (schedules.length === query.limit) return { schedules, nextAfter: this.cursorOf(schedules.at(-1)!, query) };
      schedules.push(structuredClone(record));
    }
    return { schedules, nextAfter: null };
  }

  async due(now: number, max: number): Promise<ScheduleRecord[]> {
    return [...this.schedules.values()]
      .filter((record) => !record.paused && record.nextRunAt !== null && record.nextRunAt <= now)
      .sort((a, b) => a.nextRunAt! - b.nextRunAt!)
      .slice(0, max)
      .map((record) => structuredClone(record));
  }

  async nextDueAt(): Promise<number | null> {
    let next: number | null = null;
    for (const record of this.schedules.values())
      if (!record.paused && record.nextRunAt !== null) next = Math.min(next ?? Infinity, record.nextRunAt);
    return next;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** A tenant's listing pages by id; the admin's by tenant and id. */
  private cursorOf(record: ScheduleRecord, query: ScheduleQuery): string {
    return query.tenant === undefined ? scheduleCursor(record) : record.id;
  }

  private fullCursor(after: string, tenant: string | undefined): string {
    return tenant === undefined ? after : scheduleCursor({ tenant, id: after });
  }
}
