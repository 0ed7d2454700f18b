import { randomUUID } from 'node:crypto';
import { newJobId } from '../../src/jobs/job-id.js';
import type { NewJob } from '../../src/jobs/job.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';

/** What the Redis store's own tests share: a store on a key prefix of its own, and a new job with a 120-byte input. */

export const connectRedisStore = (
  url: string,
  jobTtlMs: number,
  keyPrefix = `t${randomUUID().slice(0, 8)}`,
  partitions?: number,
) =>
  RedisJobStore.connect({
    url,
    keyPrefix,
    partitions,
    jobTtlMs,
    connectTimeoutMs: 2000,
    commandTimeoutMs: 1000,
    sweepIntervalMs: 50,
  });

export const newTestJob = (type = 'echo'): NewJob => {
  const now = Date.now();
  return {
    id: newJobId(now),
    type,
    tenant: '-',
    input: { x: 'y'.repeat(120) },
    metadata: {},
    priority: 0,
    maxAttempts: 3,
    timeoutS: null,
    createdAt: now,
    runAt: now,
  };
};

/** Up to `max` ready echo jobs, leased for a second to worker `w` under `leaseId`. */
export const claimEcho = (store: RedisJobStore, leaseId: string, max = 1) =>
  store.claim({ types: ['echo'], max, workerId: 'w', leaseId, leaseMs: 1000, now: Date.now() });
