import { z } from 'zod';
import { commaList, timestamp } from '../http/value-schemas.js';
import { DEFAULT_MAX_ATTEMPTS, JobStatus, PRIORITY_MAX, PRIORITY_MIN, WebhookEvent } from '../jobs/job.js';
import { SEARCH_SCAN_LIMIT } from '../search/job-search.js';
import { keysAtCap, statusCounts, topTenants } from './admin-schemas.js';

/**
 * The HTTP contract's shapes: they validate requests and generate openapi.yaml. The order in which schemas
 * with an `id` are made is the order of openapi.yaml's components: a schema moved to another module moves
 * there too (the admin resources' own schemas are in their route files, after these).
 */

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Whether `value` is JSON data; iterative, so no nesting depth overflows the stack, and each object is looked at once. */
export function isJsonValue(value: unknown): value is JsonValue {
  const pending: unknown[] = [value];
  const seen = new Set<object>();
  while (pending.length > 0) {
    const next = pending.pop();
    if (next === null || typeof next === 'string' || typeof next === 'boolean') continue;
    if (typeof next === 'number') {
      if (!Number.isFinite(next)) return false;
    } else if (typeof next === 'object' && seen.has(next)) {
      continue;
    } else if (Array.isArray(next)) {
      seen.add(next);
      for (const item of next) pending.push(item);
    } else if (
      typeof next === 'object' &&
      [Object.prototype, null].includes(Object.getPrototypeOf(next) as object | null)
    ) {
      seen.add(next);
      for (const item of Object.values(next)) pending.push(item);
    } else {
      return false;
    }
  }
  return true;
}

/**
 * Any JSON value, checked at runtime and documented as an empty schema (any value) under one name. Not
 * z.json(): its recursion rendered as `#/components/schemas/__shared#/$defs/schema0`, a $ref no tool
 * resolves, and a recursive union as a component is one openapi-typescript emits as a circular type.
 */
export const jsonValue = z
  .custom<JsonValue>(isJsonValue, { error: 'must be JSON data' })
  .meta({ id: 'JsonValue', description: 'Any JSON value: object, array, string, number, boolean or null' });

/** JSON read back from the store or returned by a handler: documented as JsonValue, typed unknown (nothing parses it on the way out). */
export const storedJson: z.ZodType<unknown> = jsonValue;

/** Security requirements of the operations, as buildApp applies auth per scope (`{}`: none needed); the schemes are in src/routes/openapi.ts. */
type SecurityRequirements = Record<string, string[]>[];
export const apiSecurity: SecurityRequirements = [{ apiKey: [] }, {}]; // /v1: a key only when API_KEYS is set
export const adminSecurity: SecurityRequirements = [{ adminToken: [] }, { adminSession: [] }];
export const metricsSecurity: SecurityRequirements = [{ metricsToken: [] }, {}]; // open while METRICS_TOKEN is unset
export const workerSecurity: SecurityRequirements = [{ workerKey: [] }, {}]; // open while neither WORKER_KEYS nor API_KEYS is set

const nullableTimestamp = timestamp.nullable();

export const problemSchema = z
  .object({
    type: z.string().describe('URI reference of the problem type: `/problems/<code>`'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe('Stable machine-readable code'),
    errors: z
      .array(
        z.object({
          pointer: z.string().describe('JSON Pointer into the body, or the parameter name'),
          detail: z.string(),
        }),
      )
      .optional(),
  })
  .catchall(z.unknown())
  .meta({ id: 'Problem', description: 'RFC 9457 problem details, served as application/problem+json' });

const statusText: Record<number, string> = {
  400: 'Bad request: a parameter or the JSON is invalid',
  401: 'Missing or wrong credentials',
  403: 'Not allowed',
  404: 'No such job',
  409: "Conflict with the job's state",
  413: 'Body too large',
  410: 'The job was deleted or expired (gone_at says when); stop polling',
  415: 'Body is not JSON',
  422: 'Body fields invalid (errors[].pointer names each)',
  429: 'Too many requests, or too many active jobs (see Retry-After)',
  503: 'Job store unavailable (see Retry-After)',
};

/** A problem response entry with a route's own description (instead of the status's usual one). */
export const problemAnswer = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: problemSchema } },
});

/** Response entries for error statuses, documented as application/problem+json. */
export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: statusText[status] ?? 'Problem',
        content: { 'application/problem+json': { schema: problemSchema } },
      },
    ]),
  );

export const jobErrorSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    detail: z.string(),
    code: z.string().describe("`handler-error`, `timeout`, `lease-expired`, `invalid-input`, or a handler's own code"),
    retryable: z.boolean(),
  })
  .meta({ id: 'JobError', description: 'Why the job (or, while a retry waits, its last attempt) failed' });

export const jobSchema = z
  .object({
    id: z.string().describe('ULID: unguessable, sorts by creation time'),
    type: z.string(),
    status: JobStatus,
    done: z.boolean().describe('True exactly when status is terminal (succeeded, failed, canceled)'),
    input: storedJson.describe('The input as submitted'),
    metadata: z.record(z.string(), z.string()),
    priority: z.number().int(),
    concurrency_key: z
      .string()
      .nullable()
      .describe("The submit's `concurrency_key`: the type's `key_concurrency` caps how many jobs with it run at once"),
    schedule_id: z
      .string()
      .nullable()
      .describe('The recurring schedule that made this job (GET /v1/schedules/{id}); null for a submitted job'),
    scheduled_for: nullableTimestamp.describe(
      "The schedule's fire time this job was made for (when triggered: the trigger's time); null for a submitted job",
    ),
    waiting_for: z
      .enum(['concurrency_key'])
      .nullable()
      .describe(
        '`concurrency_key`: the job could start but its key already has `key_concurrency` jobs of its type running, so it waits for one of them to end; null otherwise',
      ),
    progress: z.object({
      percent: z
        .number()
        .int()
        .min(0)
        .max(100)
        .nullable()
        .describe('Never decreases within an attempt; 100 only once succeeded'),
      step: z.string().nullable(),
      message: z.string().nullable(),
      updated_at: nullableTimestamp,
    }),
    result: storedJson.describe("The handler's result once succeeded, else null"),
    error: jobErrorSchema.nullable(),
    attempt: z.number().int().describe('Attempts started so far'),
    max_attempts: z.number().int(),
    version: z.number().int().describe('Goes up by one on every change; the ETag is "v<version>"'),
    created_at: timestamp,
    run_at: timestamp,
    started_at: nullableTimestamp,
    updated_at: timestamp,
    completed_at: nullableTimestamp,
    expires_at: nullableTimestamp.describe('When a finished job is removed (JOB_TTL_S after it finished)'),
    cached_from: z
      .string()
      .nullable()
      .describe('Result reuse: the job whose result this one carries, or will carry (it finishes when that one does)'),
    webhook: z
      .object({
        url: z.string(),
        events: z.array(WebhookEvent),
        last_delivery: z
          .object({
            id: z.string().describe('The webhook-id header: `<job id>:<version>`, the same on every retry'),
            event: WebhookEvent,
            status: z
              .enum(['delivered', 'retrying', 'failed'])
              .describe('`failed`: given up (24 h of retries, a 410 answer, or a refused address)'),
            attempts: z.number().int(),
            at: timestamp.describe('When the latest attempt ended'),
            response_status: z.number().int().nullable(),
            error: z.string().nullable(),
            next_attempt_at: nullableTimestamp,
          })
          .nullable()
          .describe('The latest delivery attempt, or null before the first'),
      })
      .nullable()
      .describe("Where this job's events are POSTed, and how the latest delivery went"),
    links: z.object({
      self: z.string(),
      result: z.string(),
      cancel: z.string(),
      events: z.string().describe('Server-Sent Events of this job'),
    }),
  })
  .meta({ id: 'Job' });

/** A Job as operators see it: with its tenant and the worker of its latest attempt. */
export const adminJobSchema = jobSchema
  .extend({
    tenant: z.string().describe('`-` is the anonymous tenant of an open API'),
    worker_id: z.string().nullable().describe('The worker that ran (or runs) the latest attempt'),
  })
  .meta({ id: 'AdminJob' });

export const attemptSchema = z
  .object({
    attempt: z.number().int(),
    worker_id: z.string().nullable(),
    started_at: nullableTimestamp,
    ended_at: timestamp,
    outcome: z
      .enum(['succeeded', 'failed', 'retry', 'canceled', 'released', 'lease-expired', 'poison'])
      .describe(
        '`retry`: failed, another attempt scheduled; `lease-expired`: its worker died or hung; `released`: shut down before it ended; `poison`: its worker died POISON_AFTER times',
      ),
    error: z
      .object({
        code: z.string(),
        message: z.string(),
        retryable: z.boolean(),
        stack: z.string().nullable().describe('Where the handler threw it (capped)'),
      })
      .nullable(),
  })
  .meta({ id: 'Attempt' });

export const jobLogLineSchema = z
  .object({
    at: timestamp,
    attempt: z.number().int(),
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
    message: z.string().describe("The handler's message, with its fields as JSON after it; secrets redacted"),
  })
  .meta({ id: 'JobLogLine' });

export const adminJobDetailSchema = adminJobSchema
  .extend({
    attempts: z
      .array(attemptSchema)
      .describe('Every ended attempt, oldest first; a running attempt shows in started_at and worker_id'),
    logs: z.array(jobLogLineSchema).describe("The handler's ctx.log lines (the last 200), oldest first"),
  })
  .meta({ id: 'AdminJobDetail' });

export const adminJobListSchema = z
  .object({
    data: z.array(adminJobSchema),
    next_cursor: z
      .string()
      .nullable()
      .describe('Pass as `cursor` for the next page; null when every job was looked at'),
  })
  .meta({ id: 'AdminJobList' });

/** Longest `concurrency_key` of a submit, in characters. */
const MAX_CONCURRENCY_KEY_LENGTH = 128;

const metadataSchema = z
  .record(z.string().min(1).max(64), z.string().max(512))
  .refine((value) => Object.keys(value).length <= 32, 'at most 32 keys')
  .describe('Your own labels: up to 32 string keys (≤ 64 characters) with string values (≤ 512)');

export const createJobBody = z
  .object({
    type: z.string().min(1).describe('A job type enabled on this service (GET /v1/job-types lists them)'),
    input: jsonValue.default({}).describe("The handler's input, checked against the type's schema"),
    metadata: metadataSchema.optional(),
    priority: z.number().int().min(PRIORITY_MIN).max(PRIORITY_MAX).default(0).describe('Higher runs first'),
    concurrency_key: z
      .string()
      .min(1)
      .max(MAX_CONCURRENCY_KEY_LENGTH)
      .regex(/^\P{Cc}*$/u, 'must not contain control characters')
      .optional()
      .describe(
        `Groups your jobs (a customer id, a document id): a type with \`key_concurrency\` n runs at most n of your jobs with one key at once, and with \`fair_by: key\` your keys take turns. 1 to ${MAX_CONCURRENCY_KEY_LENGTH} characters, no control characters`,
      ),
    run_at: timestamp.optional().describe('Do not start before this time (not with delay_s)'),
    delay_s: z
      .number()
      .min(0)
      .max(31_536_000)
      .optional()
      .describe('Do not start before this many seconds from now (not with run_at)'),
    max_attempts: z
      .number()
      .int()
      .min(1)
      .max(100)
      .optional()
      .describe(`Default: the type's setting, else ${DEFAULT_MAX_ATTEMPTS}`),
    timeout_s: z
      .number()
      .positive()
      .max(604_800)
      .optional()
      .describe("Seconds an attempt may run; default: the type's setting"),
    webhook: z
      .object({
        url: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).max(2048),
        events: z
          .array(WebhookEvent)
          .min(1)
          .optional()
          .describe('Default: job.succeeded, job.failed, job.canceled. job.progress is sent at most once per 5 s.'),
      })
      .strict()
      .optional()
      .describe('POST signed events (Standard Webhooks) to this URL; needs WEBHOOK_SECRET on the service'),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.run_at !== undefined && body.delay_s !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['delay_s'], message: 'give run_at or delay_s, not both' });
    }
  })
  .meta({ id: 'CreateJob' });

/** The paging parameters of a listing query (GET /v1/jobs, GET /admin/jobs); paging.ts reads the cursor. */
export const pagingQuery = {
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).optional().describe('`next_cursor` of the previous page'),
  order: z.enum(['desc', 'asc']).default('desc').describe('By creation time; newest first by default'),
};

export const listJobsQuery = z
  .object({
    status: commaList(JobStatus).optional().describe('Comma-separated statuses, e.g. `queued,running`'),
    type: z.string().min(1).optional(),
    created_after: timestamp.optional(),
    created_before: timestamp.optional(),
    ...pagingQuery,
    idempotency_key: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe('The job a create with this Idempotency-Key made (when its answer was lost)'),
    schedule_id: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe(
        `Jobs made by this schedule. Checked job by job over at most ${SEARCH_SCAN_LIMIT} jobs per page, so a page may hold fewer than \`limit\` (even none) and still have a \`next_cursor\``,
      ),
  })
  .strict();

export const jobListSchema = z
  .object({
    data: z.array(jobSchema),
    next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  })
  .meta({ id: 'JobList' });

export const jobIdParams = z.object({ id: z.string().min(1).max(64) });

export const purgeQuery = z
  .object({
    status: commaList(z.enum(['succeeded', 'failed', 'canceled']))
      .optional()
      .describe('Finished statuses to purge (default: all three)'),
    older_than_s: z.coerce
      .number()
      .min(0)
      .default(0)
      .describe('Only jobs that finished at least this many seconds ago'),
  })
  .strict();

export const statsSchema = z
  .object({
    store: z.enum(['memory', 'redis']),
    counts: statusCounts,
    by_type: z.record(z.string(), statusCounts),
    queue_depth: z.number().int().describe('Queued jobs whose run_at has come'),
    delayed: z.number().int().describe('Queued jobs waiting for a later run_at (delay or retry backoff)'),
    oldest_queued_age_s: z.number().nullable().describe('How long the oldest ready job has waited'),
    finished_last_minute: z.number().int(),
    tenants: topTenants,
    keys_at_cap: keysAtCap,
    pool: z.object({
      worker_id: z.string(),
      concurrency: z.number().int(),
      busy: z.number().int(),
      started: z.number().int().describe('Attempts this instance started since it started'),
      succeeded: z.number().int(),
      failed: z.number().int(),
    }),
  })
  .meta({ id: 'Stats' });

export const healthSchema = z
  .object({
    status: z.enum(['pass', 'warn', 'fail']),
    description: z.string().optional(),
    checks: z.object({
      store: z.object({
        kind: z.enum(['memory', 'redis']),
        fallback: z.boolean().describe('Redis was configured but unreachable at start-up, so jobs are in memory'),
        status: z.enum(['pass', 'warn', 'fail']),
        latency_ms: z.number().nullable(),
        output: z.string().optional(),
      }),
      persistence: z
        .object({
          status: z.enum(['pass', 'warn', 'fail']),
          aof: z.boolean().nullable(),
          rdb: z.boolean().nullable().describe('null: the save setting could not be read'),
          output: z.string().optional(),
        })
        .optional()
        .describe('Redis only: warn when it keeps nothing on disk'),
      workers: z.object({
        concurrency: z.number().int().describe("This instance's slots"),
        busy: z.number().int(),
        status: z.enum(['pass', 'warn', 'fail']),
        live: z.number().int().optional().describe('Live workers (not draining) in the fleet'),
        unserved_types: z.array(z.string()).optional().describe('Types with queued jobs and no live worker: warn'),
        output: z.string().optional(),
      }),
      auth: z.object({ mode: z.enum(['open', 'keys']).describe('open: the /v1 API needs no key (API_KEYS unset)') }),
    }),
  })
  .meta({ id: 'Health' });

export const jobTypesSchema = z
  .object({
    data: z.array(
      z.object({
        type: z.string(),
        served_by: z
          .enum(['in-process', 'remote'])
          .describe(
            '`in-process`: a handler of this service runs it; `remote`: an operator declared it and remote workers run it',
          ),
        description: z.string().nullable(),
        input_schema: z.record(z.string(), z.unknown()).describe('JSON Schema of the input'),
        timeout_s: z.number().nullable(),
        max_attempts: z.number().int(),
      }),
    ),
  })
  .meta({ id: 'JobTypes' });
