import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ScheduleRecord } from '../../src/schedules/schedule.js';
import type { ScheduleStore } from '../../src/schedules/schedule-store.js';
import { MemoryScheduleStore } from '../../src/schedules/memory-schedule-store.js';
import { RedisScheduleStore } from '../../src/schedules/redis-schedule-store.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';

export function scheduleRecord(overrides: Partial<ScheduleRecord> = {}): ScheduleRecord {
  const now = Date.now();
  return {
    id: `s-${randomUUID().slice(0, 8)}`,
    tenant: '-',
    cron: null,
    everyS: 60,
    timezone: 'UTC',
    type: 'echo',
    input: { hello: 'world' },
    metadata: {},
    priority: 0,
    maxAttempts: null,
    timeoutS: null,
    concurrencyKey: null,
    webhook: null,
    overlap: 'allow',
    catchUp: 'latest',
    startAt: null,
    endAt: null,
    paused: false,
    nextRunAt: now + 60_000,
    lastRunAt: null,
    lastJobId: null,
    fires: { created: 0, skipped: 0, missed: 0 },
    createdAt: now,
    updatedAt: now,
    version: 1,
    ...overrides,
  };
}

export interface StorePair {
  schedules: ScheduleStore;
  jobs: JobStore;
  close(): Promise<void>;
}

/** A schedule store with its job store: memory, or Redis under a fresh prefix (another client per pair). */
export async function storePair(kind: 'memory' | 'redis', redisUrl: string, prefix?: string): Promise<StorePair> {
  if (kind === 'memory') {
    const jobs = new MemoryJobStore({ jobTtlMs: 60_000 });
    return { schedules: new MemoryScheduleStore(), jobs, close: () => jobs.close() };
  }
  const keyPrefix = prefix ?? `t${randomUUID().slice(0, 8)}`;
  const jobs = await RedisJobStore.connect({
    url: redisUrl,
    keyPrefix,
    jobTtlMs: 60_000,
    connectTimeoutMs: 2000,
    commandTimeoutMs: 2000,
  });
  const client = new Redis(redisUrl);
  return {
    schedules: new RedisScheduleStore(client, jobs.keys.base, { commandTimeoutMs: 2000 }),
    jobs,
    close: async () => {
      await jobs.close();
      await client.quit();
    },
  };
}
