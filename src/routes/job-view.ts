import type { z } from 'zod';
import { rfc3339 } from '../http/value-schemas.js';
import { isTerminal, type JobError, type JobLogLine, type JobRecord } from '../jobs/job.js';
import type { adminJobDetailSchema, adminJobSchema, jobErrorSchema, jobSchema } from './schemas.js';

/** The HTTP rendering of a job: the Job resource (clients, webhooks) and the operators' AdminJob. */

export type JobResource = z.infer<typeof jobSchema>;

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

/**
 * The Job resource: one shape for create, get and list. `eventsLink` replaces the plain events path
 * (with API keys: a signed link an EventSource can open without an Authorization header).
 */
export function renderJob(job: JobRecord, eventsLink?: string): JobResource {
  const self = jobPath(job.id);
  return {
    id: job.id,
    type: job.type,
    status: job.status,
    done: isTerminal(job.status),
    input: job.input,
    metadata: job.metadata,
    priority: job.priority,
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

export function renderAdminJob(job: JobRecord): z.infer<typeof adminJobSchema> {
  return { ...renderJob(job), tenant: job.tenant, worker_id: job.workerId };
}

/** An operator's view of one job: its attempt timeline and log lines too. */
export function renderAdminJobDetail(job: JobRecord, logs: JobLogLine[]): z.infer<typeof adminJobDetailSchema> {
  return {
    ...renderAdminJob(job),
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
