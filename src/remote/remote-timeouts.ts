import type { FastifyBaseLogger } from 'fastify';
import { backoffMs, type BackoffOptions } from '../backoff.js';
import { failedAttemptOutcome, timeoutError } from '../jobs/attempt-outcome.js';
import type { JobRecord } from '../jobs/job.js';
import type { HeldLease, JobStore } from '../store/job-store.js';

/** What an instance knows of a remote lease: enough to decide a failure without reading the job. */
export interface LeaseFacts {
  type: string;
  attempt: number;
  maxAttempts: number;
  /** When the attempt times out (its start + the job's timeout_s); null without a timeout. */
  timeoutAt: number | null;
}

export const leaseFactsOf = (job: JobRecord, defaultTimeoutS: number | null): LeaseFacts => {
  const timeoutS = job.timeoutS ?? defaultTimeoutS;
  return {
    type: job.type,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    timeoutAt: timeoutS === null || job.startedAt === null ? null : job.startedAt + Math.round(timeoutS * 1000),
  };
};

interface KnownLease {
  lease: HeldLease;
  facts: LeaseFacts;
  /** The lease's expiry as this instance last heard it: past it (and a margin), the entry is dropped. */
  until: number;
  timer: NodeJS.Timeout | null;
}

/** Entries whose lease this instance has not heard of for this long past its expiry are dropped. */
const FORGET_AFTER_MS = 5_000;
const SWEEP_EVERY_MS = 15_000;
const RETRY_MS = 1000;

/**
 * Enforces remote jobs' timeout_s, independently of heartbeats: each instance arms a timer at `timeout_at` for
 * every lease it hands out or hears of in a heartbeat, and at that time ends the attempt with the `timeout`
 * failure (retry or fail, as attempt-outcome.ts decides). The write is fenced by the lease, so a job that
 * finished meanwhile (or that another instance's timer already ended) is untouched; the worker hears `lost`
 * on its next call.
 *
 * A lease this instance no longer hears of (past its expiry) is dropped: either it lapsed (the store recovers
 * the job) or the worker's calls now reach another instance, which armed its own timer. The same entries
 * also tell the lease routes a lease's attempt without reading the job.
 */
export class RemoteTimeouts {
  private readonly known = new Map<string, KnownLease>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly options: {
      store: Pick<JobStore, 'finish'>;
      backoff: BackoffOptions;
      concurrencyLimited: (type: string) => boolean;
      log?: FastifyBaseLogger;
    },
  ) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /** Remembers the lease (`id` as the protocol spells it) until `until`, arming its timeout; refreshes a known one. */
  track(id: string, lease: HeldLease, facts: LeaseFacts, until: number): void {
    if (this.closed) return;
    const known = this.known.get(id);
    if (known) {
      known.until = Math.max(known.until, until);
      return;
    }
    const entry: KnownLease = { lease, facts, until, timer: null };
    this.known.set(id, entry);
    if (facts.timeoutAt !== null) this.arm(id, entry, facts.timeoutAt);
  }

  /** Extends a known lease's expiry; false when this instance does not know it. */
  renewed(id: string, until: number): boolean {
    const known = this.known.get(id);
    if (known) known.until = Math.max(known.until, until);
    return known !== undefined;
  }

  facts(id: string): LeaseFacts | undefined {
    return this.known.get(id)?.facts;
  }

  /** The lease ended (settled, lost or released): its timer goes. */
  forget(id: string): void {
    const known = this.known.get(id);
    if (known?.timer) clearTimeout(known.timer);
    this.known.delete(id);
  }

  /** Clears every timer. Idempotent. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const id of [...this.known.keys()]) this.forget(id);
  }

  private arm(id: string, entry: KnownLease, at: number): void {
    // setTimeout takes at most ~24.8 days; a later timeout is re-armed on the way.
    const delay = Math.max(0, Math.min(at - Date.now(), 2 ** 31 - 1));
    entry.timer = setTimeout(() => void this.fire(id, entry), delay);
    entry.timer.unref();
  }

  private async fire(id: string, entry: KnownLease): Promise<void> {
    entry.timer = null;
    if (this.known.get(id) !== entry) return;
    const now = Date.now();
    if (entry.facts.timeoutAt !== null && entry.facts.timeoutAt > now)
      return this.arm(id, entry, entry.facts.timeoutAt);
    const outcome = failedAttemptOutcome(entry.facts, timeoutError(), now, {
      backoffMs: (attempt) => backoffMs(attempt, this.options.backoff),
    });
    try {
      const result = await this.options.store.finish(entry.lease, outcome, now, {
        concurrencyLimited: this.options.concurrencyLimited(entry.facts.type),
      });
      if (result !== 'lost')
        this.options.log?.info(
          { jobId: entry.lease.jobId, attempt: entry.facts.attempt, status: result.status },
          'remote attempt timed out',
        );
      this.forget(id);
    } catch (error) {
      // The store did not answer: try again while the lease may still be held.
      if (this.known.get(id) !== entry || this.closed) return;
      this.options.log?.warn(
        { err: error, jobId: entry.lease.jobId },
        'could not end a timed-out remote attempt; trying again',
      );
      this.arm(id, entry, now + RETRY_MS);
    }
  }

  private sweep(now: number): void {
    for (const [id, entry] of this.known) if (entry.until + FORGET_AFTER_MS < now) this.forget(id);
  }
}
