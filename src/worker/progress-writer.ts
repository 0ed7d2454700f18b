import type { JobAbortReason } from '../handlers/handler.js';
import type { HeldLease, JobStore, ProgressUpdate } from '../store/job-store.js';

/*
 * One running job's progress, from `ctx.progress` to the store. A handler may report progress in a tight
 * loop, and every write is a store call (and an event to the job's watchers), so reports are coalesced: at
 * most one write per interval, carrying the latest values, and the last report is always written before the
 * outcome. A progress write is also a lease check: the store refuses it once the lease is gone, and the
 * handler is then aborted at once rather than at the next renewal.
 */

/** Least time between two progress writes of one job, unless the pool is told otherwise. */
const DEFAULT_INTERVAL_MS = 250;

export class ProgressWriter {
  private pending: ProgressUpdate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastWrite = 0;
  /** Every write so far, one after the other: a job's updates reach the store in the order they were made. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Pick<JobStore, 'reportProgress'>,
    private readonly lease: HeldLease,
    /** The attempt's: an aborted attempt writes nothing more, and a refused write aborts it ('lease-lost'). */
    private readonly controller: AbortController,
    private readonly intervalMs = DEFAULT_INTERVAL_MS,
  ) {}

  /** `ctx.progress`: a value left out (or a percent that is not a number) keeps the one reported before. */
  report(percent: number | null, details: { step?: string; message?: string } = {}): void {
    if (this.controller.signal.aborted) return;
    const previous = this.pending;
    this.pending = {
      percent: percent === null || !Number.isFinite(percent) ? (previous?.percent ?? null) : percent,
      step: details.step || previous?.step || null,
      message: details.message || previous?.message || null,
    };
    if (this.timer) return;
    const wait = Math.max(0, this.lastWrite + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      const update = this.pending;
      this.pending = null;
      if (!update || this.controller.signal.aborted) return;
      this.lastWrite = Date.now();
      this.writes = this.writes.then(() =>
        this.store.reportProgress(this.lease, update, Date.now()).then(
          (held) => {
            if (!held) this.controller.abort('lease-lost' satisfies JobAbortReason);
          },
          () => undefined, // progress is best effort; the next write or the outcome carries on
        ),
      );
    }, wait);
  }

  /** The handler ended: no timed write any more (what is pending waits for `finish`). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Resolves once every write is done. With `writeLast` (the attempt has an outcome to write), progress
   * reported since the last write is written first, unless the attempt was aborted: "the last one is always
   * written", and before the outcome, which a later progress write could no longer follow.
   */
  finish(writeLast: boolean): Promise<void> {
    if (writeLast && this.pending && !this.controller.signal.aborted) {
      const update = this.pending;
      this.pending = null;
      this.writes = this.writes.then(() =>
        this.store.reportProgress(this.lease, update, Date.now()).then(
          () => undefined,
          () => undefined,
        ),
      );
    }
    return this.writes;
  }
}
