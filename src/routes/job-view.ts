import type { z } from 'zod';
import { rfc3339 } from '../http/value-schemas.js';
import type { SchedulingOf } from '../job-types/type-scheduling.js';
import { isTerminal, type JobError, type JobLogLine, type JobRecord } from '../jobs/job.js';
import type { JobStore } from '../store/job-store.js';
import type { adminJobDetailSchema, adminJobSchema, jobErrorSchema, jobSchema } from './schemas.js';

/** The HTTP rendering of a job: the Job resource (clients, webhooks) and the operators' AdminJob. */

export type JobResource = z.infer<typeof jobSchema>;

/** Why a job that could start is not running: its concurrency key is at its type's key_concurrency; else null. */
export type WaitingFor = JobResource['waiting_for'];

/** What a rendering adds to the stored job: its `waiting_for` (see waitingFor; null when not given) and events link. */
export interface RenderExtras {
  waitingFor?: WaitingFor;
  /** Replaces the plain events path (with API keys: a signed link an EventSource can open without an Authorization header). */
  eventsLink?: string;
}

/**
 * `waiting_for` of each of `jobs`, in their order: 'concurrency_key' for a queued job whose run_at has come, that
 * has a concurrency key, whose type caps keys (key_concurrency n) and whose key already has n jobs running.
 * The store is asked once per distinct type, tenant and key, and never about a job that cannot be waiting.
 */
export async function waitingFor(
  store: JobStore,
  scheduling: SchedulingOf,
  jobs: readonly JobRecord[],
  now = Date.now(),
): Promise<WaitingFor[]> {
  const runningByKey = new Map<string, Promise<number>>();
  return Promise.all(
    jobs.map(async (job): Promise<WaitingFor> => {
      const key = job.concurrencyKey;
      if (job.status !== 'queued' || job.runAt > now || !key) return null;
      const cap = scheduling(job.type).keyConcurrency;
      if (cap === undefined) return null;
      const id = JSON.stringify([job.type, job.tenant, key]);
      let running = runningByKey.get(id);
      if (!running) {
        running = store.runningWithKey(job.type, job.tenant, key);
        runningByKey.set(id, running);
      }
      if ((await running) < cap) return null;
      // The record may predate this job's own claim (a submit answered as a worker took it): then it is the running one.
      return (await store.get(job.id))?.status === 'queued' ? 'concurrency_key' : null;
    }),
  );
}

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : rfc3339(ms));

/** Longest Retry-After a poller of a delayed job is given, in seconds: it polls at least this often. */
const MAX_POLL_RETRY_AFTER_S = 60;

export const jobPath = (id: string): string => `/v1/jobs/${id}`;

export function renderJobError(error: JobError): z.infer<typeof jobErrorSchema> {
  return {
    type: '/problems/job-error',
    title: 'Job attempt failed',
    detail: error.message,
    code: error.code,
    retryable: error.retryable,
  };
}

/** The Job resource: one shape for create, get and list. */
export function renderJob(job: JobRecord, { waitingFor = null, eventsLink }: RenderExtras = {}): JobResource {
  const self = jobPath(job.id);
  return {
    id: job.id,
    type: job.type,
    status: job.status,
    done: isTerminal(job.status),
    input: job.input,
    metadata: job.metadata,
    priority: job.priority,
    // A record stored before concurrency keys existed has none.
    concurrency_key: job.concurrencyKey ?? null,
    // Records stored before schedules existed have neither.
    schedule_id: job.scheduleId ?? null,
    scheduled_for: isoOrNull(job.scheduledFor ?? null),
    waiting_for: waitingFor,
    progress: {
      percent: job.progress.percent,
      step: job.progress.step,
      message: job.progress.message,
      updated_at: isoOrNull(job.progress.updatedAt),
    },
    result: job.status === 'succeeded' ? job.result : null,
    error: job.error && job.status !== 'succeeded' ? renderJobError(job.error) : null,
    attempt: job.attempt,
    max_attempts: job.maxAttempts,
    version: job.version,
    created_at: rfc3339(job.createdAt),
    run_at: rfc3339(job.runAt),
    started_at: isoOrNull(job.startedAt),
    updated_at: rfc3339(job.updatedAt),
    completed_at: isoOrNull(job.completedAt),
    expires_at: isoOrNull(job.expiresAt),
    cached_from: job.cachedFrom,
    webhook: job.webhook && {
      url: job.webhook.url,
      events: job.webhook.events,
      last_delivery: job.webhookDelivery && {
        id: job.webhookDelivery.id,
        event: job.webhookDelivery.event,
        status: job.webhookDelivery.status,
        attempts: job.webhookDelivery.attempts,
        at: rfc3339(job.webhookDelivery.at),
        response_status: job.webhookDelivery.responseStatus,
        error: job.webhookDelivery.error,
        next_attempt_at: isoOrNull(job.webhookDelivery.nextAttemptAt),
      },
    },
    links: { self, result: `${self}/result`, cancel: `${self}/cancel`, events: eventsLink ?? `${self}/events` },
  };
}

export function renderAdminJob(job: JobRecord, waitingFor: WaitingFor): z.infer<typeof adminJobSchema> {
  return { ...renderJob(job, { waitingFor }), tenant: job.tenant, worker_id: job.workerId };
}

/** An operator's view of one job: its attempt timeline and log lines too. */
export function renderAdminJobDetail(
  job: JobRecord,
  logs: JobLogLine[],
  waitingFor: WaitingFor,
): z.infer<typeof adminJobDetailSchema> {
  return {
    ...renderAdminJob(job, waitingFor),
    attempts: job.attempts.map((attempt) => ({
      attempt: attempt.attempt,
      worker_id: attempt.workerId,
      started_at: isoOrNull(attempt.startedAt),
      ended_at: rfc3339(attempt.endedAt),
      outcome: attempt.outcome,
      error: attempt.error && {
        code: attempt.error.code,
        message: attempt.error.message,
        retryable: attempt.error.retryable,
        stack: attempt.error.stack ?? null,
      },
    })),
    logs: logs.map((line) => ({
      at: rfc3339(line.at),
      attempt: line.attempt,
      level: line.level,
      message: line.message,
    })),
  };
}

/** Seconds a poller should wait before asking again: 1 while the job can start, else until its run_at (≤ MAX_POLL_RETRY_AFTER_S). */
export function retryAfterSeconds(job: JobRecord, now: number): number {
  if (job.status === 'queued' && job.runAt > now)
    return Math.min(MAX_POLL_RETRY_AFTER_S, Math.max(1, Math.ceil((job.runAt - now) / 1000)));
  return 1;
}
