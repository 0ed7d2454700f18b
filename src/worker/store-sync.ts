import type { Logger } from 'pino';
import type { JobRecord } from '../jobs/job.js';
import {
  StoreUnavailableError,
  type AttemptOutcome,
  type ClaimLimit,
  type ClaimRequest,
  type FinishAndClaimResult,
  type FinishResult,
  type HeldLease,
  type JobStore,
} from '../store/job-store.js';
import type { WorkerPoolObserver } from './pool-observer.js';

/*
 * The pool's conversation with the store about outcomes and claims, in one loop (group commit). Writing
 * each outcome and claiming each slot in calls of their own would cost a round trip per job; here every
 * call writes all the outcomes waiting and claims for all the free slots, with up to MAX_CALLS_IN_FLIGHT
 * calls overlapping so Node and Redis work at the same time. Kept apart from the pool because its state
 * (the outcomes waiting, the calls in flight and the slots they reserve, the pause after a failure) is
 * only ever touched here; the pool says how many slots are free and what to claim, and is told what came
 * back (StoreSyncHost).
 */

/** After a failed store call, no new one for this long; also the pool's next look when the store is down. */
export const STORE_RETRY_MS = 1000;
/** The pause instead while outcomes wait to be written: their leases are running out. */
const OUTCOME_RETRY_MS = 250;
/** Most outcomes written in one store call. */
const FINISH_BATCH = 256;
/** Store calls one pool keeps in flight at once. */
const MAX_CALLS_IN_FLIGHT = 3;
/**
 * Most jobs leased in one claim call, unless the pool is told otherwise: a third of the pool's slots (at most
 * 64), so that as slots free up, several calls are out at once, each carrying the outcomes of the last and
 * a claim for the next, and Node runs handlers while Redis runs a script instead of the two taking turns.
 */
const MAX_CLAIM_BATCH = 64;

export interface PendingFinish {
  job: JobRecord;
  lease: HeldLease;
  outcome: AttemptOutcome;
  log: Logger;
  /** Writing is pointless after this: the lease has lapsed and the job is someone else's. */
  leaseEnd: number;
  settle: () => void;
  /** How long the handler ran; null for a claimed job handed back unrun. */
  runMs: number | null;
}

/** What the loop needs from the pool, and tells it. Called synchronously; none may throw. */
export interface StoreSyncHost {
  /** Slots a claim may fill now (not counting those the calls in flight may fill); 0 when the pool claims nothing. */
  freeSlots(): number;
  /** The job types to claim (those not paused). */
  claimTypes(): string[];
  /** A claim leased `jobs` to this pool: start them. False when the pool no longer runs jobs (it handed them back). */
  claimed(jobs: JobRecord[]): boolean;
  /** A claim found less than it asked for and no signal came during it: nothing more is ready until the next due time. */
  noWorkLeft(): void;
  /** An outcome was written (`result`), or given up (null: the lease will lapse): the job is no longer the pool's. */
  finished(finish: PendingFinish, result: FinishResult | null): void;
}

export interface StoreSyncOptions {
  store: JobStore;
  log: Logger;
  workerId: string;
  leaseMs: number;
  /** The pool's slots: the default claim batch is a share of them. */
  concurrency: number;
  limits?: Record<string, ClaimLimit>;
  /** TENANT_WEIGHTS, passed with every claim. */
  tenantWeights?: Record<string, number>;
  claimBatch?: number;
  observer?: WorkerPoolObserver;
}

export class StoreSync {
  /** Outcomes waiting to be written: each store call sends all of them, with the next claim. */
  private pendingFinishes: PendingFinish[] = [];
  /** Store calls in flight (at most MAX_CALLS_IN_FLIGHT), and the slots their claims may fill. */
  private readonly callsInFlight = new Set<Promise<void>>();
  private reservedSlots = 0;
  /** After a failed store call, no new call before this time. */
  private pausedUntil = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** False after a claim found less than it asked for and no signal came since: then only a signal claims. */
  private claimWanted = false;
  /** Bumped by every work signal; a claim that saw none during its call may conclude there is no work. */
  private signals = 0;
  private leaseCounter = 0;
  private storeDown = false;
  private kickScheduled = false;
  private readonly claimBatch: number;
  /** While draining, outcome writes to an unreachable store stop being retried after this time. */
  private giveUpWritesAt = Infinity;

  constructor(
    private readonly options: StoreSyncOptions,
    private readonly host: StoreSyncHost,
  ) {
    this.claimBatch =
      options.claimBatch ??
      Math.min(MAX_CLAIM_BATCH, Math.max(1, Math.ceil(options.concurrency / MAX_CALLS_IN_FLIGHT)));
  }

  /** True while outcomes wait to be written. */
  get outcomesWaiting(): boolean {
    return this.pendingFinishes.length > 0;
  }

  /** There may be work (a signal, a due time, a control change): claim for the free slots until a claim comes back short. */
  claimAgain(): void {
    this.signals++;
    this.claimWanted = true;
    this.kick();
  }

  /** Queues an outcome; the promise resolves once it is written (or given up). */
  queueFinish(
    job: JobRecord,
    lease: HeldLease,
    outcome: AttemptOutcome,
    log: Logger,
    runMs: number | null = null,
  ): Promise<void> {
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.pendingFinishes.push({ job, lease, outcome, log, leaseEnd: Date.now() + this.options.leaseMs, settle, runMs });
    this.kickSoon();
    return done;
  }

  /**
   * kick() once the current turn of the event loop is over: the handlers started from one reply settle in
   * the same turn, and their outcomes should share a call rather than the first one taking a call alone.
   */
  private kickSoon(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.kick();
    });
  }

  /**
   * Sends calls while fewer than MAX_CALLS_IN_FLIGHT are out: each writes the outcomes waiting and claims
   * for the free slots. Outcomes that arrive while calls are busy go out together in the next one.
   */
  kick(): void {
    if (Date.now() < this.pausedUntil) return; // the store just failed; the retry timer kicks again
    while (this.callsInFlight.size < MAX_CALLS_IN_FLIGHT) {
      const finishes = this.pendingFinishes.splice(0, FINISH_BATCH);
      const free = this.claimWanted ? this.host.freeSlots() - this.reservedSlots : 0;
      if (finishes.length === 0 && free <= 0) return;
      const claim = free > 0 ? this.claimRequest(Math.min(free, this.claimBatch)) : null;
      const call = this.syncCall(finishes, claim).finally(() => {
        this.callsInFlight.delete(call);
        this.kick();
      });
      this.callsInFlight.add(call);
    }
  }

  /** Resolves when the calls in flight now have ended (a claim among them may still start jobs until then). */
  callsEnded(): Promise<unknown> {
    return Promise.all(this.callsInFlight);
  }

  /** Draining: outcomes that cannot be written by `at` are given up rather than retried. */
  giveUpWritesAfter(at: number): void {
    this.giveUpWritesAt = at;
  }

  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  markStoreDown(error: unknown): void {
    if (!this.storeDown)
      this.options.log.error({ err: error }, 'job store unreachable: claiming paused until it answers again');
    this.storeDown = true;
  }

  markStoreUp(): void {
    if (this.storeDown) this.options.log.info('job store reachable again: claiming resumed');
    this.storeDown = false;
  }

  private async syncCall(finishes: PendingFinish[], claim: ClaimRequest | null): Promise<void> {
    const signals = this.signals;
    this.reservedSlots += claim?.max ?? 0;
    let reply: FinishAndClaimResult;
    const { store, observer } = this.options;
    const callStarted = observer ? performance.now() : 0;
    try {
      reply = await store.finishAndClaim(
        finishes.map((finish) => ({
          lease: finish.lease,
          outcome: finish.outcome,
          concurrencyLimited: this.isConcurrencyLimited(finish.job.type),
        })),
        claim,
        Date.now(),
      );
      this.markStoreUp();
    } catch (error) {
      this.onSyncFailure(finishes, error);
      return;
    } finally {
      this.reservedSlots -= claim?.max ?? 0;
      observer?.storeCall('finishAndClaim', (performance.now() - callStarted) / 1000);
    }
    finishes.forEach((finish, i) => this.settle(finish, reply.results[i]!));
    if (!claim || !this.host.claimed(reply.claimed)) return;
    if (reply.claimed.length < claim.max && signals === this.signals) {
      this.claimWanted = false;
      this.host.noWorkLeft();
    }
  }

  private claimRequest(max: number): ClaimRequest {
    const { workerId, limits, tenantWeights, leaseMs } = this.options;
    return {
      types: this.host.claimTypes(),
      limits,
      tenantWeights,
      max,
      workerId,
      leaseId: `${workerId}:${++this.leaseCounter}`,
      leaseMs,
      now: Date.now(),
    };
  }

  /** The store did not take the call: outcomes are retried until their lease would lapse; claiming resumes later. */
  private onSyncFailure(finishes: PendingFinish[], error: unknown): void {
    const unavailable = error instanceof StoreUnavailableError;
    if (unavailable) this.markStoreDown(error);
    else this.options.log.error({ err: error }, 'store call failed');
    const now = Date.now();
    const keep = finishes.filter((finish) => unavailable && now < Math.min(finish.leaseEnd, this.giveUpWritesAt));
    for (const finish of finishes) {
      if (keep.includes(finish)) continue;
      finish.log.error(
        { err: error, outcome: finish.outcome.kind },
        'could not record the outcome; the lease will lapse and the job run again',
      );
      this.settle(finish, null);
    }
    this.pendingFinishes.unshift(...keep);
    const pause = this.pendingFinishes.length > 0 ? OUTCOME_RETRY_MS : STORE_RETRY_MS;
    this.pausedUntil = Date.now() + pause;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      // A timer may fire a millisecond before Date.now() reaches pausedUntil: lift the pause here, or
      // kick() would return and nothing would send the waiting outcomes (their leases renewed forever).
      this.pausedUntil = 0;
      // Claim again (the failed call's claim found nothing); a pool that no longer claims has no free slots.
      this.claimWanted = true;
      this.kick();
    }, pause);
    this.retryTimer.unref();
  }

  private settle(finish: PendingFinish, result: FinishResult | null): void {
    this.host.finished(finish, result);
    finish.settle();
  }

  /** A fleet-wide cap of the type (or of one key of it) may be holding jobs back that this finish lets run. */
  private isConcurrencyLimited(type: string): boolean {
    const limit = this.options.limits?.[type];
    return limit?.maxConcurrency !== undefined || limit?.keyConcurrency !== undefined;
  }
}
