import type { Logger } from 'pino';
import { backoffMs, type BackoffOptions } from '../backoff.js';
import { WEBHOOK_CONCURRENCY, WEBHOOK_MAX_RETRY_DELAY_MS, WEBHOOK_TIMEOUT_MS } from '../config.js';
import type { WebhookDeliveryState } from '../jobs/job.js';
import { renderJob } from '../routes/job-view.js';
import { OutboundRefusedError, type OutboundPolicy } from '../outbound/outbound-policy.js';
import { outboundRequest } from '../outbound/outbound-request.js';
import { WEBHOOK_RETRY_WINDOW_MS, type JobStore, type WebhookDelivery } from '../store/job-store.js';
import type { WebhookSigner } from './webhook-signer.js';

export interface WebhookDispatcherOptions {
  store: JobStore;
  signer: WebhookSigner;
  policy: OutboundPolicy;
  log: Logger;
  /** Delay before the first retry; each further one doubles it (with jitter), up to `maxRetryDelayMs` (default WEBHOOK_MAX_RETRY_DELAY_MS). */
  retryBaseMs: number;
  maxRetryDelayMs?: number;
  /** Deliveries sent at once by this instance (default WEBHOOK_CONCURRENCY). */
  concurrency?: number;
  /** A receiver that has not answered 2xx within this is retried later (default WEBHOOK_TIMEOUT_MS). */
  timeoutMs?: number;
  /** How long a delivery handed to this instance is held before another instance may send it again. */
  leaseMs?: number;
  retryWindowMs?: number;
}

/** How much of a receiver's answer is read (it is only checked for its status). */
const MAX_ANSWER_BYTES = 4096;
/** A delivery's lease: at least this, and three timeouts, so a slow send is never sent twice at once. */
const MIN_LEASE_MS = 30_000;
/** After the store failed to hand out deliveries: when to ask again. */
const FETCH_RETRY_MS = 1000;

/**
 * Sends the webhook deliveries the store queues (any instance's), signed, each until the receiver answers
 * 2xx or the retry window closes. Deliveries live in the store, so a restart or a crash loses none: one
 * in flight on an instance that died is sent again once its lease lapses (receivers dedupe on webhook-id).
 * Idle, it sends no store commands: the store's 'webhook' event or the next retry's time wakes it.
 */
export class WebhookDispatcher {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  /** Exponential from `retryBaseMs`, jittered so failed receivers are not hit in waves (src/backoff.ts). */
  private readonly retryBackoff: BackoffOptions;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.concurrency = options.concurrency ?? WEBHOOK_CONCURRENCY;
    this.timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
    this.leaseMs = options.leaseMs ?? Math.max(MIN_LEASE_MS, this.timeoutMs * 3);
    this.retryBackoff = { baseMs: options.retryBaseMs, maxMs: options.maxRetryDelayMs ?? WEBHOOK_MAX_RETRY_DELAY_MS };
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.options.store.subscribe((event) => {
      if (event.kind === 'webhook') void this.pump();
    });
    void this.pump();
  }

  /** Stops taking deliveries and waits (up to `graceMs`) for those in flight; the rest are retried by lease. */
  async stop(graceMs = this.timeoutMs): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
  }

  private async pump(): Promise<void> {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        const free = this.concurrency - this.inFlight.size;
        if (free <= 0) break; // each settled delivery pumps again
        const { deliveries, nextDueAt } = await this.options.store.claimWebhookDeliveries(
          Date.now(),
          free,
          this.leaseMs,
        );
        for (const delivery of deliveries) this.track(this.deliver(delivery));
        this.wakeAt(nextDueAt);
        if (deliveries.length === free) this.pumpAgain = true;
      } while (this.pumpAgain && !this.stopped);
    } catch (error) {
      this.options.log.warn(
        { err: error },
        `webhook deliveries could not be fetched; trying again in ${FETCH_RETRY_MS / 1000} s`,
      );
      this.wakeAt(Date.now() + FETCH_RETRY_MS);
    } finally {
      this.pumping = false;
    }
  }

  private track(delivery: Promise<void>): void {
    this.inFlight.add(delivery);
    void delivery.finally(() => {
      this.inFlight.delete(delivery);
      void this.pump();
    });
  }

  private wakeAt(at: number | null): void {
    clearTimeout(this.timer);
    if (at === null || this.stopped) return;
    this.timer = setTimeout(() => void this.pump(), Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1));
    this.timer.unref();
  }

  private async deliver(delivery: WebhookDelivery): Promise<void> {
    const { log, signer, policy, store } = this.options;
    const attempts = delivery.attempts + 1;
    const url = new URL(delivery.url);
    const body = JSON.stringify({
      type: delivery.event,
      timestamp: new Date(delivery.createdAt).toISOString(),
      data: renderJob(delivery.job),
    });
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'async-job-service-webhooks',
      ...signer.headers(delivery.id, Math.floor(Date.now() / 1000), body),
    };
    let responseStatus: number | null = null;
    let error: string | null = null;
    let retryable = true;
    try {
      const response = await outboundRequest(
        url,
        { method: 'POST', headers, body, timeoutMs: this.timeoutMs, maxBodyBytes: MAX_ANSWER_BYTES },
        policy,
      );
      responseStatus = response.status;
      if (response.status < 200 || response.status > 299) error = `the receiver answered ${response.status}`;
      // 410 Gone: the receiver says this endpoint is no more; retrying would only knock on a closed door.
      if (response.status === 410) retryable = false;
    } catch (failure) {
      error = (failure as Error).message;
      if (failure instanceof OutboundRefusedError) retryable = false;
    }
    const now = Date.now();
    const state: WebhookDeliveryState = {
      id: delivery.id,
      event: delivery.event,
      status: 'delivered',
      attempts,
      at: now,
      responseStatus,
      error,
      nextAttemptAt: null,
    };
    const context = {
      jobId: delivery.jobId,
      deliveryId: delivery.id,
      event: delivery.event,
      host: url.host,
      attempts,
      responseStatus,
    };
    if (error !== null) {
      const nextAttemptAt = now + backoffMs(attempts, this.retryBackoff);
      if (retryable && nextAttemptAt <= delivery.createdAt + (this.options.retryWindowMs ?? WEBHOOK_RETRY_WINDOW_MS)) {
        state.status = 'retrying';
        state.nextAttemptAt = nextAttemptAt;
        log.warn(
          { ...context, error, nextAttemptAt: new Date(nextAttemptAt).toISOString() },
          'webhook delivery failed; will retry',
        );
      } else {
        state.status = 'failed';
        log.error({ ...context, error }, 'webhook delivery failed; giving up');
      }
    } else log.info(context, 'webhook delivered');
    try {
      await store.settleWebhookDelivery(delivery, state, now);
    } catch (failure) {
      // Left leased: it is sent again when the lease lapses (the receiver dedupes on webhook-id).
      log.warn({ ...context, err: failure }, 'webhook delivery outcome could not be recorded');
    }
  }
}
