import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { HttpProblem, problem } from '../errors.js';
import { canonicalJson } from '../jobs/canonical-json.js';
import { jsonPointer, sendProblem } from '../http/error-handler.js';
import { awaitJob } from '../jobs/await-job.js';
import { MAX_WAIT_S, preferredWaitS } from '../http/prefer.js';
import { isTerminal, type JobRecord } from '../jobs/job.js';
import { isJobId, newJobId } from '../jobs/job-id.js';
import { jobPath, renderJob, renderJobError, retryAfterSeconds, type JobResource } from '../jobs/job-view.js';
import type { EventLinkSigner } from '../http/event-links.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import { defaultWebhookEvents, WebhookEvent, type CacheRequest, type JobWebhook } from '../jobs/job.js';
import type { Handler } from '../handlers/handler.js';
import type { OutboundPolicy } from '../outbound/outbound-policy.js';
import { TooManyActiveJobsError, type JobStore, type ListPage, type ListQuery } from '../store/job-store.js';
import { apiSecurity, createJobBody, jobIdParams, jobListSchema, jobSchema, jobTypesSchema, listJobsQuery, problemResponses, storedJson } from './schemas.js';

export interface JobRoutesOptions {
  store: JobStore;
  handlers: HandlerRegistry;
  /** How long an Idempotency-Key is kept (default 24 h). */
  idempotencyTtlMs?: number;
  /** With API keys: signs each Job's `links.events` so an EventSource can open it. */
  eventLinks?: EventLinkSigner;
  /** Most queued or running jobs one tenant may have; unlimited when unset. */
  maxActiveJobsPerTenant?: number;
  /** Set when webhooks are configured (WEBHOOK_SECRET): the outbound rules their URLs must pass. */
  webhookPolicy?: OutboundPolicy;
}

const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;

const DEFAULT_MAX_ATTEMPTS = 3;


/**
 * The job record; else a 410 problem for a job that went (deleted, purged, expired), so pollers stop, or a
 * 404 one for an id that never existed. Ids that are not ULIDs cannot exist, so they are 404 too. With a
 * `tenant` only that tenant's jobs are found; without (operators), any tenant's.
 */
export async function findJob(store: JobStore, id: string, tenant?: string): Promise<JobRecord> {
  const job = isJobId(id) ? await store.get(id) : undefined;
  if (job && (tenant === undefined || job.tenant === tenant)) return job;
  if (job) throw new HttpProblem('job-not-found', `No job with id ${id}.`); // another tenant's: as if unknown
  return notFound(store, id, tenant);
}

async function notFound(store: JobStore, id: string, tenant: string | undefined): Promise<never> {
  const goneAt = isJobId(id) ? await store.goneAt(id, tenant) : null;
  if (goneAt !== null) {
    throw new HttpProblem('job-gone', `Job ${id} was deleted or expired at ${new Date(goneAt).toISOString()}.`, {
      extensions: { gone_at: new Date(goneAt).toISOString() },
    });
  }
  throw new HttpProblem('job-not-found', `No job with id ${id}.`);
}

export function encodeCursor(order: 'asc' | 'desc', afterId: string): string {
  return Buffer.from(`v1:${order}:${afterId}`).toString('base64url');
}

export function decodeCursor(cursor: string, order: 'asc' | 'desc'): string {
  const [version, cursorOrder, id] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  if (version !== 'v1' || cursorOrder !== order || id === undefined || !isJobId(id)) {
    throw new HttpProblem('bad-request', 'Invalid query parameter: cursor (use next_cursor of a page listed with the same order).', {
      errors: [{ pointer: 'cursor', detail: 'not a cursor of this listing' }],
    });
  }
  return id;
}

export function toListQuery(query: z.infer<typeof listJobsQuery>): ListQuery {
  return {
    statuses: query.status,
    type: query.type,
    createdAfter: query.created_after !== undefined ? Date.parse(query.created_after) : undefined,
    createdBefore: query.created_before !== undefined ? Date.parse(query.created_before) : undefined,
    limit: query.limit,
    after: query.cursor !== undefined ? decodeCursor(query.cursor, query.order) : undefined,
    order: query.order,
  };
}

/** The job whose create answer was lost, found by the Idempotency-Key the create carried (if it fits the filters). */
export async function findByIdempotencyKey(store: JobStore, tenant: string, key: string, filters: { status?: string[]; type?: string }): Promise<ListPage> {
  const job = await store.findByIdempotencyKey(tenant, key);
  const matches = job !== undefined && (filters.status === undefined || filters.status.includes(job.status)) && (filters.type === undefined || filters.type === job.type);
  return { jobs: matches ? [job] : [], nextAfter: null };
}

export function renderPage(
  page: { jobs: JobRecord[]; nextAfter: string | null },
  order: 'asc' | 'desc',
  render: (job: JobRecord) => JobResource = (job) => renderJob(job),
): z.infer<typeof jobListSchema> {
  return { data: page.jobs.map(render), next_cursor: page.nextAfter === null ? null : encodeCursor(order, page.nextAfter) };
}

function tooManyActive(error: unknown): never {
  if (error instanceof TooManyActiveJobsError) {
    throw new HttpProblem('too-many-active-jobs', `You have ${error.limit} or more jobs queued or running; submit more once some have finished.`, {
      headers: { 'retry-after': '5' },
    });
  }
  throw error;
}

/**
 * Aborts when the client goes away, so a held request stops waiting for nobody. (The response's `close`,
 * not the request's: a request emits `close` as soon as its body has been read.)
 */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => controller.abort());
  return controller.signal;
}

/** True when the request's If-None-Match names the current ETag (or `*`). */
function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const trimmed = tag.trim().replace(/^W\//, '');
    return trimmed === etag || trimmed === '*';
  });
}

/** The job's webhook, checked: webhooks must be configured, and a literal address must pass the outbound rules. */
function toWebhook(webhook: { url: string; events?: WebhookEvent[] } | undefined, policy: OutboundPolicy | undefined): JobWebhook | null {
  if (webhook === undefined) return null;
  if (!policy) {
    throw problemError('This service sends no webhooks: WEBHOOK_SECRET is not set.', '/webhook', 'webhooks are not configured on this service');
  }
  const refusal = policy.literalRefusal(new URL(webhook.url));
  if (refusal) throw problemError(`The webhook URL is refused: ${refusal}.`, '/webhook/url', refusal);
  const events = webhook.events ?? defaultWebhookEvents;
  return { url: webhook.url, events: WebhookEvent.options.filter((event) => events.includes(event)) };
}

/**
 * Result reuse for this submit, when its type opted in (`cache` in the handler) and it is not delayed. The
 * digest covers tenant, type and canonical input: one tenant never gets another's results.
 */
function cacheRequest(handler: Handler, tenant: string, type: string, input: unknown, runsNow: boolean, cacheControl: string | undefined): CacheRequest | undefined {
  if (!handler.cache || !runsNow) return undefined;
  const digest = createHash('sha256').update(`${tenant}\n${type}\n${canonicalJson(input)}`).digest('hex');
  const refresh = cacheControl !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(cacheControl);
  return { digest, ttlMs: handler.cache.ttl_s * 1000, mode: refresh ? 'refresh' : 'reuse' };
}

const problemError = (detail: string, pointer: string, fieldDetail: string): HttpProblem =>
  new HttpProblem('validation-failed', detail, { errors: [{ pointer, detail: fieldDetail }] });

export const jobRoutes: FastifyPluginAsync<JobRoutesOptions> = async (
  fastify,
  { store, handlers, idempotencyTtlMs = 86_400_000, eventLinks, maxActiveJobsPerTenant, webhookPolicy },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const render = (job: JobRecord): JobResource => renderJob(job, eventLinks?.link(job.id, job.tenant));

  app.post('/v1/jobs', {
    schema: {
            operationId: 'createJob',
summary: 'Submit a job',
      description: 'Answers 202 at once with the queued Job; poll `Location` (or `links.self`) until `done`.',
      tags: ['jobs'],
      security: apiSecurity,
      body: createJobBody,
      // Optional strings: any value passes here, as before (the handler checks Idempotency-Key itself).
      headers: z
        .object({
          'idempotency-key': z
            .string()
            .optional()
            .describe('Makes retries safe: a repeat with the same key and body returns the same job (Idempotent-Replayed: true). 1 to 255 visible ASCII characters, kept IDEMPOTENCY_TTL_S (24 h)'),
          'cache-control': z.string().optional().describe('`no-cache`: run the job even if its type reuses results (its result is then the one reused)'),
          prefer: z.string().optional().describe(`\`wait=N\` (N ≤ ${MAX_WAIT_S}): hold the answer until the job is done (200) or N seconds pass (202)`),
        })
        .loose(),
      response: {
        200: jobSchema.describe('The job is done already: it finished within `Prefer: wait=N`, reused a result, or is the finished job an Idempotency-Key replay names'),
        202: jobSchema,
        ...problemResponses(400, 401, 413, 415, 422, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const handler = handlers.get(body.type);
      if (!handler) {
        throw new HttpProblem('unknown-job-type', `Unknown job type "${body.type}". Known types: ${handlers.types.join(', ')}.`, {
          errors: [{ pointer: '/type', detail: `must be one of: ${handlers.types.join(', ')}` }],
          extensions: { known_types: handlers.types },
        });
      }
      const parsedInput = handler.input.safeParse(body.input);
      if (!parsedInput.success) {
        const errors = parsedInput.error.issues.flatMap((issue) =>
          issue.code === 'unrecognized_keys'
            ? issue.keys.map((key) => ({ pointer: jsonPointer(['input', ...issue.path, key]), detail: 'unknown field' }))
            : [{ pointer: jsonPointer(['input', ...issue.path]), detail: issue.message }],
        );
        return sendProblem(reply, problem('validation-failed', `The input does not fit job type "${body.type}".`, errors));
      }
      const now = Date.now();
      const runAt = body.run_at !== undefined ? Date.parse(body.run_at) : now + Math.round((body.delay_s ?? 0) * 1000);
      const idempotencyKey = request.headers['idempotency-key'];
      if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || !idempotencyKeyPattern.test(idempotencyKey))) {
        throw new HttpProblem('bad-request', 'Invalid header: Idempotency-Key (1 to 255 visible ASCII characters).', {
          errors: [{ pointer: 'Idempotency-Key', detail: '1 to 255 visible ASCII characters' }],
        });
      }
      const newJob = {
        id: newJobId(now),
        type: body.type,
        tenant: request.tenant,
        input: body.input,
        metadata: body.metadata ?? {},
        priority: body.priority,
        maxAttempts: body.max_attempts ?? handler.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
        timeoutS: body.timeout_s ?? handler.timeout_s ?? null,
        createdAt: now,
        runAt: Math.max(runAt, now),
        webhook: toWebhook(body.webhook, webhookPolicy),
        cache: cacheRequest(handler, request.tenant, body.type, body.input, runAt <= now, request.headers['cache-control']),
      };
      const createOptions = { maxActive: maxActiveJobsPerTenant };
      let job: JobRecord;
      if (idempotencyKey === undefined) {
        job = await store.create(newJob, createOptions).catch(tooManyActive);
        request.server.metrics.jobCreated(job.type);
        request.log.info({ jobId: job.id, jobType: job.type }, 'job created');
      } else {
        const fingerprint = createHash('sha256').update(canonicalJson(body)).digest('hex');
        const outcome = await store.createOnce(newJob, { key: idempotencyKey, fingerprint, ttlMs: idempotencyTtlMs }, createOptions).catch(tooManyActive);
        if (outcome === 'key-reused') {
          throw new HttpProblem('idempotency-key-reused', 'This Idempotency-Key was used for a different request; use a new key for a new job.', {
            errors: [{ pointer: 'Idempotency-Key', detail: 'already used with another request body' }],
          });
        }
        job = outcome.job;
        if (outcome.replayed) reply.header('idempotent-replayed', 'true');
        else request.server.metrics.jobCreated(job.type);
        request.log.info({ jobId: job.id, jobType: job.type, replayed: outcome.replayed }, outcome.replayed ? 'job create replayed' : 'job created');
      }
      const waitS = preferredWaitS(request.headers.prefer);
      if (waitS !== undefined) {
        // Prefer: wait=N: hold the answer until the job is done or N seconds pass; the body is the Job either way.
        reply.header('preference-applied', `wait=${waitS}`);
        const latest = await awaitJob(store, job.id, (current) => isTerminal(current.status), waitS * 1000, abortOnClose(reply));
        if (latest) job = latest;
      }
      // Done already (a reused result, the replay of a finished job, or within Prefer: wait): 200, same body.
      if (isTerminal(job.status)) {
        return reply.code(200).headers({ location: jobPath(job.id), 'content-location': jobPath(job.id) }).send(render(job));
      }
      return reply
        .code(202)
        .headers({ location: jobPath(job.id), 'content-location': jobPath(job.id), 'retry-after': String(retryAfterSeconds(job, Date.now())) })
        .send(render(job));
    },
  });

  app.get('/v1/jobs', {
    schema: {
            operationId: 'listJobs',
summary: 'List jobs',
      description: 'Newest first by default; page with `next_cursor`. Filters combine with AND; `status` takes several values.',
      tags: ['jobs'],
      security: apiSecurity,
      querystring: listJobsQuery,
      response: { 200: jobListSchema, ...problemResponses(400, 401, 429, 503) },
    },
    handler: async (request) => {
      const { idempotency_key: idempotencyKey, ...filters } = request.query;
      if (idempotencyKey === undefined) return renderPage(await store.list({ ...toListQuery(filters), tenant: request.tenant }), filters.order, render);
      return renderPage(await findByIdempotencyKey(store, request.tenant, idempotencyKey, filters), filters.order, render);
    },
  });

  app.get('/v1/jobs/:id', {
    schema: {
            operationId: 'getJob',
summary: 'Get a job',
      description: 'Send `If-None-Match: "v<version>"` to get 304 while nothing changed. `Retry-After` says when to poll again.',
      tags: ['jobs'],
      security: apiSecurity,
      params: jobIdParams,
      headers: z
        .object({
          'if-none-match': z.string().optional().describe('The ETag you have (`"v<version>"`): 304 while the job is unchanged'),
          prefer: z
            .string()
            .optional()
            .describe(`\`wait=N\` (N ≤ ${MAX_WAIT_S}) with a matching If-None-Match: hold the answer until the job changes (200) or N seconds pass (304)`),
        })
        .loose(),
      response: { 200: jobSchema, 304: z.undefined().describe('Not modified'), ...problemResponses(401, 404, 410, 429, 503) },
    },
    handler: async (request, reply) => {
      let job = await findJob(store, request.params.id, request.tenant);
      const waitS = preferredWaitS(request.headers.prefer);
      if (waitS !== undefined && notModified(request.headers['if-none-match'], `"v${job.version}"`)) {
        // Long-poll: held until the job changes (progress too, on any instance) or N seconds pass.
        reply.header('preference-applied', `wait=${waitS}`);
        const seen = job.version;
        const latest = await awaitJob(store, job.id, (current) => current.version !== seen, waitS * 1000, abortOnClose(reply));
        job = latest ?? (await findJob(store, request.params.id, request.tenant));
      }
      const etag = `"v${job.version}"`;
      reply.header('etag', etag).header('cache-control', 'no-cache');
      if (job.status !== 'succeeded' && job.status !== 'failed' && job.status !== 'canceled') {
        reply.header('retry-after', String(retryAfterSeconds(job, Date.now())));
      }
      if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return render(job);
    },
  });

  app.get('/v1/jobs/:id/result', {
    schema: {
            operationId: 'getJobResult',
summary: "Get a job's result",
      description:
        "200 with the handler's result once succeeded; 202 with the Job while not done; 409 problem (`job-failed` / `job-canceled`, with the Job in `job`) when it will never have one.",
      tags: ['jobs'],
      security: apiSecurity,
      params: jobIdParams,
      response: {
        200: { description: "The handler's result, as it returned it", content: { 'application/json': { schema: storedJson } } },
        202: jobSchema,
        ...problemResponses(401, 404, 409, 410, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const job = await findJob(store, request.params.id, request.tenant);
      if (job.status === 'succeeded') return reply.code(200).type('application/json; charset=utf-8').send(JSON.stringify(job.result ?? null));
      if (job.status === 'failed' || job.status === 'canceled') {
        const code = job.status === 'failed' ? 'job-failed' : 'job-canceled';
        const detail = job.status === 'failed' ? `The job failed: ${job.error?.message ?? 'unknown error'}` : 'The job was canceled.';
        return sendProblem(reply, problem(code, detail, undefined, { job: render(job), error: job.error ? renderJobError(job.error) : null }));
      }
      return reply
        .code(202)
        .headers({ location: jobPath(job.id), 'retry-after': String(retryAfterSeconds(job, Date.now())) })
        .send(render(job));
    },
  });

  app.post('/v1/jobs/:id/cancel', {
    schema: {
            operationId: 'cancelJob',
summary: 'Cancel a job',
      description:
        'Queued: canceled at once (200). Running: its handler is signalled and the job ends `canceled` (202, with the Job as it stands). Finished: returned unchanged (200).',
      tags: ['jobs'],
      security: apiSecurity,
      params: jobIdParams,
      response: { 200: jobSchema, 202: jobSchema, ...problemResponses(401, 404, 410, 429, 503) },
    },
    handler: async (request, reply) => {
      await findJob(store, request.params.id, request.tenant); // 404 / 410 unless it is the caller's
      const outcome = await store.cancel(request.params.id, Date.now());
      if (!outcome) return notFound(store, request.params.id, request.tenant);
      request.log.info({ jobId: outcome.job.id, outcome: outcome.outcome }, 'job cancel');
      return reply.code(outcome.outcome === 'cancel-requested' ? 202 : 200).send(render(outcome.job));
    },
  });

  app.delete('/v1/jobs/:id', {
    schema: {
            operationId: 'deleteJob',
summary: 'Delete a job',
      description: 'Cancels it if active, then removes the job and its result. 204 also for an unknown id, so repeating is safe.',
      tags: ['jobs'],
      security: apiSecurity,
      params: jobIdParams,
      response: { 204: z.undefined().describe('Deleted (or never existed)'), ...problemResponses(401, 429, 503) },
    },
    handler: async (request, reply) => {
      const job = isJobId(request.params.id) ? await store.get(request.params.id) : undefined;
      // Another tenant's job is left alone, and answered as an unknown id is: 204.
      if (job && job.tenant === request.tenant && (await store.delete(request.params.id))) {
        request.log.info({ jobId: request.params.id }, 'job deleted');
      }
      return reply.code(204).send();
    },
  });

  app.get('/v1/job-types', {
    schema: {
            operationId: 'listJobTypes',
summary: 'List the enabled job types',
      description: 'Each type with the JSON Schema of its input.',
      tags: ['jobs'],
      security: apiSecurity,
      response: { 200: jobTypesSchema, ...problemResponses(401, 429) },
    },
    handler: async () => ({
      data: handlers.all.map((handler) => ({
        type: handler.type,
        input_schema: z.toJSONSchema(handler.input, { io: 'input', unrepresentable: 'any' }),
        timeout_s: handler.timeout_s ?? null,
        max_attempts: handler.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
      })),
    }),
  });
};
