import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { HttpProblem, problem, type FieldError, type Problem } from '../errors.js';
import type { Handler } from '../handlers/handler.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import { jsonPointer } from '../http/error-handler.js';
import type { DeclaredType, DeclaredTypes } from '../job-types/declared-types.js';
import type { SchedulingOf } from '../job-types/type-scheduling.js';
import { canonicalJson } from '../jobs/canonical-json.js';
import { newJobId } from '../jobs/job-id.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  defaultWebhookEvents,
  WebhookEvent,
  type CacheRequest,
  type JobRecord,
  type JobWebhook,
  type NewJob,
} from '../jobs/job.js';
import type { OutboundPolicy } from '../outbound/outbound-policy.js';
import { TooManyActiveJobsError, type ClaimLimit, type JobStore } from '../store/job-store.js';
import type { createJobBody } from './schemas.js';

/**
 * The steps of a submit (POST /v1/jobs), in the order the route takes them: the type's definition (its
 * in-process handler, or an operator's declaration served by remote workers), the input checked against it, the Idempotency-Key header, the new job built from the body, then created, or the
 * job an earlier request with the same Idempotency-Key made replayed.
 */

export type CreateJobBody = z.infer<typeof createJobBody>;

const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;
/** Retry-After of a refusal for too many active jobs: long enough for some to finish. */
const TOO_MANY_ACTIVE_RETRY_AFTER_S = 5;

/** What serves a type: an in-process handler (zod input), or an operator's declaration (JSON Schema input, remote workers). */
export type TypeDefinition = Handler | DeclaredType;

const isDeclared = (definition: TypeDefinition): definition is DeclaredType => 'input_schema' in definition;

/** Every type a submit may name: the handlers', then the declared ones (a handler wins a name both have). */
export function knownTypes(handlers: HandlerRegistry, declared: DeclaredTypes | undefined): string[] {
  return [...new Set([...handlers.types, ...(declared?.all.map((def) => def.type) ?? [])])];
}

/** The definition of the submitted type; a 422 problem listing the known types when there is none. */
export function definitionFor(
  handlers: HandlerRegistry,
  declared: DeclaredTypes | undefined,
  type: string,
): TypeDefinition {
  const definition = handlers.get(type) ?? declared?.get(type);
  if (definition) return definition;
  const known = knownTypes(handlers, declared);
  throw new HttpProblem('unknown-job-type', `Unknown job type "${type}". Known types: ${known.join(', ')}.`, {
    errors: [{ pointer: '/type', detail: `must be one of: ${known.join(', ')}` }],
    extensions: { known_types: known },
  });
}

/**
 * The 422 problem when the input does not fit the type's schema (a pointer per issue), else undefined. A
 * declared type's schema is compiled in `declared` (where its definition came from).
 */
export function inputProblem(
  definition: TypeDefinition,
  body: CreateJobBody,
  declared: DeclaredTypes | undefined,
): Problem | undefined {
  const errors = isDeclared(definition)
    ? (declared?.validate(definition.type, body.input) ?? [])
    : zodInputErrors(definition, body.input);
  if (errors.length === 0) return undefined;
  return problem('validation-failed', `The input does not fit job type "${body.type}".`, errors);
}

function zodInputErrors(handler: Handler, input: unknown): FieldError[] {
  const parsed = handler.input.safeParse(input);
  if (parsed.success) return [];
  return parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ pointer: jsonPointer(['input', ...issue.path, key]), detail: 'unknown field' }))
      : [{ pointer: jsonPointer(['input', ...issue.path]), detail: issue.message }],
  );
}

/** The Idempotency-Key header, checked (1 to 255 visible ASCII characters; a 400 problem otherwise); undefined without one. */
export function idempotencyKeyOf(header: unknown): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !idempotencyKeyPattern.test(header)) {
    throw new HttpProblem('bad-request', 'Invalid header: Idempotency-Key (1 to 255 visible ASCII characters).', {
      errors: [{ pointer: 'Idempotency-Key', detail: '1 to 255 visible ASCII characters' }],
    });
  }
  return header;
}

export interface SubmitContext {
  tenant: string;
  now: number;
  /** The request's Cache-Control header: `no-cache` refreshes a reused result. */
  cacheControl: string | undefined;
  /** Set when webhooks are configured: the outbound rules a webhook URL must pass. */
  webhookPolicy: OutboundPolicy | undefined;
  /** The type's scheduling settings (its own, TYPE_LIMITS overriding): `fair_by` decides where the job waits. */
  scheduling: ClaimLimit;
}

/** The job to store for a valid submit: the body's settings, else the type's, else the defaults. */
export function buildNewJob(
  body: CreateJobBody,
  definition: TypeDefinition,
  { tenant, now, cacheControl, webhookPolicy, scheduling }: SubmitContext,
): NewJob {
  const runAt = body.run_at !== undefined ? Date.parse(body.run_at) : now + Math.round((body.delay_s ?? 0) * 1000);
  return {
    id: newJobId(now),
    type: body.type,
    tenant,
    input: body.input,
    metadata: body.metadata ?? {},
    priority: body.priority,
    maxAttempts: body.max_attempts ?? definition.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
    timeoutS: body.timeout_s ?? definition.timeout_s ?? null,
    createdAt: now,
    runAt: Math.max(runAt, now),
    webhook: toWebhook(body.webhook, webhookPolicy),
    concurrencyKey: body.concurrency_key ?? null,
    fairByKey: scheduling.fairBy === 'key',
    // Result reuse is a handler's promise (its result depends on the input alone); declared types make none.
    cache: isDeclared(definition)
      ? undefined
      : cacheRequest(definition, tenant, body.type, body.input, runAt <= now, cacheControl),
  };
}

/** What a submit is checked and built with that is the service's, not the request's. */
export interface SubmitSettings {
  handlers: HandlerRegistry;
  /** The types operators declared for remote workers; none when absent. */
  declaredTypes: DeclaredTypes | undefined;
  /** Each type's scheduling settings: a submit's fair_by. */
  scheduling: SchedulingOf;
  /** Set when webhooks are configured (WEBHOOK_SECRET): the outbound rules a webhook URL must pass. */
  webhookPolicy: OutboundPolicy | undefined;
}

/**
 * The job a submit of `body` makes, checked as POST /v1/jobs checks it: a 422 HttpProblem for an unknown type, an
 * input that does not fit its type, or a webhook this service cannot send. No request needed: a schedule's fire
 * builds its job with it too.
 */
export function submittedJob(
  body: CreateJobBody,
  settings: SubmitSettings,
  { tenant, now, cacheControl }: { tenant: string; now: number; cacheControl?: string },
): NewJob {
  const definition = definitionFor(settings.handlers, settings.declaredTypes, body.type);
  const invalid = inputProblem(definition, body, settings.declaredTypes);
  if (invalid) throw new HttpProblem(invalid.code, invalid.detail, { errors: invalid.errors });
  return buildNewJob(body, definition, {
    tenant,
    now,
    cacheControl,
    webhookPolicy: settings.webhookPolicy,
    scheduling: settings.scheduling(body.type),
  });
}

export interface CreateRequest {
  /** The request body: with an Idempotency-Key, its canonical digest is what a repeat must match. */
  body: CreateJobBody;
  idempotencyKey: string | undefined;
  idempotencyTtlMs: number;
  /** Most queued or running jobs the tenant may have; unlimited when undefined. */
  maxActive: number | undefined;
}

/**
 * Stores the new job; with an Idempotency-Key, answers the job an earlier request with that key and the same
 * body made instead (`replayed`; undefined without a key). Problems: 429 too-many-active-jobs, 422
 * idempotency-key-reused (the key came with another body).
 */
export async function createOrReplay(
  store: JobStore,
  newJob: NewJob,
  request: CreateRequest,
): Promise<{ job: JobRecord; replayed: boolean | undefined }> {
  const options = { maxActive: request.maxActive };
  if (request.idempotencyKey === undefined) {
    return { job: await store.create(newJob, options).catch(tooManyActive), replayed: undefined };
  }
  const fingerprint = createHash('sha256').update(canonicalJson(request.body)).digest('hex');
  const outcome = await store
    .createOnce(newJob, { key: request.idempotencyKey, fingerprint, ttlMs: request.idempotencyTtlMs }, options)
    .catch(tooManyActive);
  if (outcome === 'key-reused') {
    throw new HttpProblem(
      'idempotency-key-reused',
      'This Idempotency-Key was used for a different request; use a new key for a new job.',
      {
        errors: [{ pointer: 'Idempotency-Key', detail: 'already used with another request body' }],
      },
    );
  }
  return outcome;
}

/** A TooManyActiveJobsError as the 429 problem a client gets; any other error as it is. */
export function tooManyActive(error: unknown): never {
  if (error instanceof TooManyActiveJobsError) {
    throw new HttpProblem(
      'too-many-active-jobs',
      `You have ${error.limit} or more jobs queued or running; submit more once some have finished.`,
      {
        headers: { 'retry-after': String(TOO_MANY_ACTIVE_RETRY_AFTER_S) },
      },
    );
  }
  throw error;
}

/** The job's webhook, checked: webhooks must be configured, and a literal address must pass the outbound rules. */
function toWebhook(
  webhook: { url: string; events?: WebhookEvent[] } | undefined,
  policy: OutboundPolicy | undefined,
): JobWebhook | null {
  if (webhook === undefined) return null;
  if (!policy) {
    throw fieldProblem(
      'This service sends no webhooks: WEBHOOK_SECRET is not set.',
      '/webhook',
      'webhooks are not configured on this service',
    );
  }
  const refusal = policy.literalRefusal(new URL(webhook.url));
  if (refusal) throw fieldProblem(`The webhook URL is refused: ${refusal}.`, '/webhook/url', refusal);
  const events = webhook.events ?? defaultWebhookEvents;
  return { url: webhook.url, events: WebhookEvent.options.filter((event) => events.includes(event)) };
}

/**
 * Result reuse for this submit, when its type opted in (`cache` in the handler) and it is not delayed. The
 * digest covers tenant, type and canonical input: one tenant never gets another's results.
 */
function cacheRequest(
  handler: Handler,
  tenant: string,
  type: string,
  input: unknown,
  runsNow: boolean,
  cacheControl: string | undefined,
): CacheRequest | undefined {
  if (!handler.cache || !runsNow) return undefined;
  const digest = createHash('sha256')
    .update(`${tenant}\n${type}\n${canonicalJson(input)}`)
    .digest('hex');
  const refresh = cacheControl !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(cacheControl);
  return { digest, ttlMs: handler.cache.ttl_s * 1000, mode: refresh ? 'refresh' : 'reuse' };
}

const fieldProblem = (detail: string, pointer: string, fieldDetail: string): HttpProblem =>
  new HttpProblem('validation-failed', detail, { errors: [{ pointer, detail: fieldDetail }] });
