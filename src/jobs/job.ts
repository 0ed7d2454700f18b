import { z } from 'zod';

/*
 * Terminology
 * - job:      one unit of work a client submitted: a `type`, an `input`, and the state the service keeps about it.
 * - handler:  the code that runs jobs of one type (src/handlers/<type>.ts), given the parsed input and a context.
 * - attempt:  one run of a handler for a job; a job has up to `maxAttempts` of them (retries with backoff).
 * - lease:    a claim on a running attempt, held by one worker and renewed by heartbeat; its id fences every
 *             write of that attempt, so a worker whose lease lapsed cannot overwrite the job.
 * - store:    where jobs live (memory or Redis), behind the JobStore interface (src/store/job-store.ts).
 */

/** The only list of job states; everything else (types, OpenAPI enum, terminal set) derives from it. */
export const JobStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'canceled']);
export type JobStatus = z.infer<typeof JobStatus>;
export const jobStatuses = JobStatus.options;

const terminalStatuses: ReadonlySet<JobStatus> = new Set<JobStatus>(['succeeded', 'failed', 'canceled']);
export const terminalStatusList = jobStatuses.filter((status) => terminalStatuses.has(status));
export const isTerminal = (status: JobStatus): boolean => terminalStatuses.has(status);

export const PRIORITY_MIN = -100;
export const PRIORITY_MAX = 100;

/** Attempts a job gets when neither its submit nor its type's handler says. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** Why an attempt (or the job) failed. Rendered to clients as a problem object. */
export interface JobError {
  /** Stable machine code: `handler-error`, `timeout`, `lease-expired`, `invalid-input`, or a handler's own. */
  code: string;
  message: string;
  retryable: boolean;
  /** Where a handler threw it (capped to STACK_MAX characters); shown to operators only, in the attempt timeline. */
  stack?: string;
}

export const STACK_MAX = 2000;

/** The error a job carries when its worker stopped renewing the lease of an attempt. */
export const leaseExpiredError: JobError = {
  code: 'lease-expired',
  message:
    'The worker running this attempt stopped renewing its lease: it crashed, hung or lost its connection to the store.',
  retryable: true,
};

export interface JobProgress {
  /** 0..100 or null (unknown). Never decreases within an attempt; 100 only once the job succeeded. */
  percent: number | null;
  step: string | null;
  message: string | null;
  updatedAt: number | null;
}

export const emptyProgress = (): JobProgress => ({ percent: null, step: null, message: null, updatedAt: null });

/** A job as the store keeps it. Times are epoch milliseconds; the HTTP layer renders RFC 3339. */
export interface JobRecord {
  id: string;
  type: string;
  /** Owner of the job; one anonymous tenant ('-') until API keys bring tenants. */
  tenant: string;
  status: JobStatus;
  input: unknown;
  metadata: Record<string, string>;
  priority: number;
  progress: JobProgress;
  result: unknown;
  error: JobError | null;
  attempt: number;
  maxAttempts: number;
  /** Attempts granted per (re)start; an admin retry grants this many more. */
  attemptBudget: number;
  timeoutS: number | null;
  version: number;
  createdAt: number;
  runAt: number;
  startedAt: number | null;
  updatedAt: number;
  completedAt: number | null;
  expiresAt: number | null;
  /** Set while running. */
  lease: { id: string; workerId: string; until: number } | null;
  /** A cancel or delete asked a running job to stop; its worker aborts the handler. */
  cancelRequested: boolean;
  /**
   * Groups jobs for per-key caps and fairness (a customer id, a document id), set at submit: a type's
   * `key_concurrency` caps how many jobs with one key run at once, fleet-wide, per tenant.
   */
  concurrencyKey: string | null;
  /** The recurring schedule that made this job, and the fire time it was made for; null for a submitted job. */
  scheduleId: string | null;
  scheduledFor: number | null;
  /** Where the job's events are POSTed (signed), or null. */
  webhook: JobWebhook | null;
  /** How the latest webhook delivery attempt went, or null before the first. */
  webhookDelivery: WebhookDeliveryState | null;
  /** Result reuse: the job whose result this one carries (or will carry: it finishes when that one does). */
  cachedFrom: string | null;
  /** The worker that ran (or runs) the latest attempt. */
  workerId: string | null;
  /** Every ended attempt, oldest first (the running one shows in startedAt/workerId until it ends). */
  attempts: AttemptRecord[];
}

/** How one attempt ended: the timeline an operator reads to see why a job failed. */
export interface AttemptRecord {
  attempt: number;
  workerId: string | null;
  startedAt: number | null;
  endedAt: number;
  /** `retry`: it failed and another attempt was scheduled; `lease-expired`: its worker died or hung; `released`: shutdown. */
  outcome: 'succeeded' | 'failed' | 'retry' | 'canceled' | 'released' | 'lease-expired' | 'poison';
  error: JobError | null;
}

/** A line a handler logged with `ctx.log`, kept with the job (capped, secrets redacted). */
export interface JobLogLine {
  at: number;
  attempt: number;
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  message: string;
}

/** The events a job's webhook can receive; each is one delivery, retried until the receiver answers 2xx. */
export const WebhookEvent = z.enum(['job.started', 'job.progress', 'job.succeeded', 'job.failed', 'job.canceled']);
export type WebhookEvent = z.infer<typeof WebhookEvent>;
export const defaultWebhookEvents: WebhookEvent[] = ['job.succeeded', 'job.failed', 'job.canceled'];

export interface JobWebhook {
  url: string;
  events: WebhookEvent[];
}

export interface WebhookDeliveryState {
  /** `<job id>:<version>`: the `webhook-id` header, stable across retries of one delivery. */
  id: string;
  event: WebhookEvent;
  /** `delivered` (2xx), `retrying` (a retry is scheduled at `nextAttemptAt`) or `failed` (given up). */
  status: 'delivered' | 'retrying' | 'failed';
  attempts: number;
  at: number;
  responseStatus: number | null;
  error: string | null;
  nextAttemptAt: number | null;
}

export interface NewJob {
  id: string;
  type: string;
  tenant: string;
  input: unknown;
  metadata: Record<string, string>;
  priority: number;
  maxAttempts: number;
  timeoutS: number | null;
  createdAt: number;
  runAt: number;
  webhook?: JobWebhook | null;
  concurrencyKey?: string | null;
  scheduleId?: string | null;
  scheduledFor?: number | null;
  /**
   * The type shares claims fairly between the keys of a tenant (`fair_by: "key"`), fixed at submit: it decides
   * where the job waits in the fair queue.
   */
  fairByKey?: boolean;
  /** Result reuse for this submit (the type opted in): see HandlerDefinition.cache. */
  cache?: CacheRequest;
}

export interface CacheRequest {
  /** Digest of tenant, type and canonical input: submits with the same one share results. */
  digest: string;
  ttlMs: number;
  /** `reuse`: answer from a match; `refresh` (Cache-Control: no-cache): run anyway, and be the one reused next. */
  mode: 'reuse' | 'refresh';
}

export const ANONYMOUS_TENANT = '-';
