import type { JobRecord, JobStatus } from '../jobs/job.js';

/*
 * What the worker pool tells whoever watches it (the service's metrics, the worker registry). The pool
 * defines what it reports, so the interface lives here beside it: metrics/ and worker-control.ts implement
 * it, and the pool never imports them.
 */

/** The pool's store calls whose time it reports. */
export type PoolStoreCommand = 'finishAndClaim' | 'renewLeases';

/**
 * What a worker pool reports as it works. Every call sits on the pool's hot path, so an implementation
 * must be cheap and must not throw.
 */
export interface WorkerPoolObserver {
  /** A claimed job's attempt starts; `waitMs`: how long it had been ready (claim time − max(runAt, createdAt)). */
  attemptStarted(type: string, waitMs: number): void;
  /**
   * An attempt's outcome was written; `status` is the job's status after it (queued when a retry follows).
   * `waitMs` is the attempt's wait, as `attemptStarted` had it.
   */
  attemptFinished(type: string, status: JobStatus, runMs: number, waitMs: number): void;
  /** A lease was lost: the job was reclaimed, canceled or deleted while this pool ran it. */
  leaseLost(): void;
  /** One store call of the pool took `seconds` (failed calls too). */
  storeCall(command: PoolStoreCommand, seconds: number): void;
}

/** An attempt's `waitMs` as the observer gets it: how long the claimed job had been ready before it started. */
export const waitOf = (job: JobRecord): number => (job.startedAt ?? Date.now()) - Math.max(job.runAt, job.createdAt);
