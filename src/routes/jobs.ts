import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { problem } from '../errors.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import { sendProblem } from '../http/error-handler.js';
import type { EventLinkSigner } from '../http/event-links.js';
import { MAX_WAIT_S, preferredWaitS } from '../http/prefer.js';
import type { DeclaredTypes } from '../job-types/declared-types.js';
import type { SchedulingOf } from '../job-types/type-scheduling.js';
import { isJobId } from '../jobs/job-id.js';
import { DEFAULT_MAX_ATTEMPTS, isTerminal, type JobRecord } from '../jobs/job.js';
import type { OutboundPolicy } from '../outbound/outbound-policy.js';
import { SEARCH_SCAN_LIMIT } from '../search/job-search.js';
import type { JobStore, ListQuery } from '../store/job-store.js';
import { DEFAULT_IDEMPOTENCY_TTL_S } from '../config.js';
import { awaitJob } from './await-job.js';
import { findByIdempotencyKey, findJob, jobNotFound } from './job-lookup.js';
import { createOrReplay, idempotencyKeyOf, submittedJob, type SubmitSettings } from './job-submit.js';
import { jobPath, renderJob, renderJobError, retryAfterSeconds, waitingFor, type JobResource } from './job-view.js';
import { renderPage, toListQuery } from './paging.js';
import {
  apiSecurity,
  createJobBody,
  jobIdParams,
  jobListSchema,
  jobSchema,
  jobTypesSchema,
  listJobsQuery,
  problemResponses,
  storedJson,
} from './schemas.js';

/** The client API's jobs resource (/v1/jobs, /v1/job-types). Its events stream is in events.ts. */
export interface JobRoutesOptions {
  store: JobStore;
  handlers: HandlerRegistry;
  /** The types operators declared for remote workers; none when absent. */
  declaredTypes?: DeclaredTypes;
  /** Each type's scheduling settings: a submit's fair_by, a Job's waiting_for. */
  scheduling: SchedulingOf;
  /** How long an Idempotency-Key is kept (default IDEMPOTENCY_TTL_S's). */
  idempotencyTtlMs?: number;
  /** With API keys: signs each Job's `links.events` so an EventSource can open it. */
  eventLinks?: EventLinkSigner;
  /** Most queued or running jobs one tenant may have; unlimited when unset. */
  maxActiveJobsPerTenant?: number;
  /** Set when webhooks are configured (WEBHOOK_SECRET): the outbound rules their URLs must pass. */
  webhookPolicy?: OutboundPolicy;
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

export const jobRoutes: FastifyPluginAsync<JobRoutesOptions> = async (
  fastify,
  {
    store,
    handlers,
    declaredTypes,
    scheduling,
    idempotencyTtlMs = DEFAULT_IDEMPOTENCY_TTL_S * 1000,
    eventLinks,
    maxActiveJobsPerTenant,
    webhookPolicy,
  },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const submitSettings: SubmitSettings = { handlers, declaredTypes, scheduling, webhookPolicy };
  /** Jobs as the client sees them, with their waiting_for (one store read per concurrency key at most). */
  const renderAll = async (jobs: JobRecord[]): Promise<JobResource[]> => {
    const waiting = await waitingFor(store, scheduling, jobs);
    return jobs.map((job, i) =>
      renderJob(job, { waitingFor: waiting[i]!, eventsLink: eventLinks?.link(job.id, job.tenant) }),
    );
  };
  const render = async (job: JobRecord): Promise<JobResource> => (await renderAll([job]))[0]!;

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
            .describe(
              `Makes retries safe: a repeat with the same key and body returns the same job (Idempotent-Replayed: true). 1 to 255 visible ASCII characters, kept IDEMPOTENCY_TTL_S (${DEFAULT_IDEMPOTENCY_TTL_S / 3600} h)`,
            ),
          'cache-control': z
            .string()
            .optional()
            .describe('`no-cache`: run the job even if its type reuses results (its result is then the one reused)'),
          prefer: z
            .string()
            .optional()
            .describe(
              `\`wait=N\` (N ≤ ${MAX_WAIT_S}): hold the answer until the job is done (200) or N seconds pass (202)`,
            ),
        })
        .loose(),
      response: {
        200: jobSchema.describe(
          'The job is done already: it finished within `Prefer: wait=N`, reused a result, or is the finished job an Idempotency-Key replay names',
        ),
        202: jobSchema,
        ...problemResponses(400, 401, 413, 415, 422, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const body = request.body;
      // A type declared through another instance a moment ago: read the declarations again before refusing it.
      if (!submitSettings.handlers.get(body.type)) await submitSettings.declaredTypes?.knowsAll([body.type]);
      const newJob = submittedJob(body, submitSettings, {
        tenant: request.tenant,
        now: Date.now(),
        cacheControl: request.headers['cache-control'],
      });
      const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key']);
      const created = await createOrReplay(store, newJob, {
        body,
        idempotencyKey,
        idempotencyTtlMs,
        maxActive: maxActiveJobsPerTenant,
      });
      let job = created.job;
      if (created.replayed) reply.header('idempotent-replayed', 'true');
      else request.server.metrics.jobCreated(job.type);
      const replayed = created.replayed === undefined ? {} : { replayed: created.replayed };
      request.log.info(
        { jobId: job.id, jobType: job.type, ...replayed },
        created.replayed ? 'job create replayed' : 'job created',
      );
      const waitS = preferredWaitS(request.headers.prefer);
      if (waitS !== undefined) {
        // Prefer: wait=N: hold the answer until the job is done or N seconds pass; the body is the Job either way.
        reply.header('preference-applied', `wait=${waitS}`);
        const latest = await awaitJob(
          store,
          job.id,
          (current) => isTerminal(current.status),
          waitS * 1000,
          abortOnClose(reply),
        );
        if (latest) job = latest;
      }
      // Done already (a reused result, the replay of a finished job, or within Prefer: wait): 200, same body.
      if (isTerminal(job.status)) {
        return reply
          .code(200)
          .headers({ location: jobPath(job.id), 'content-location': jobPath(job.id) })
          .send(await render(job));
      }
      return reply
        .code(202)
        .headers({
          location: jobPath(job.id),
          'content-location': jobPath(job.id),
          'retry-after': String(retryAfterSeconds(job, Date.now())),
        })
        .send(await render(job));
    },
  });

  app.get('/v1/jobs', {
    schema: {
      operationId: 'listJobs',
      summary: 'List jobs',
      description:
        'Newest first by default; page with `next_cursor`. Filters combine with AND; `status` takes several values.',
      tags: ['jobs'],
      security: apiSecurity,
      querystring: listJobsQuery,
      response: { 200: jobListSchema, ...problemResponses(400, 401, 429, 503) },
    },
    handler: async (request) => {
      const { idempotency_key: idempotencyKey, ...filters } = request.query;
      if (idempotencyKey === undefined) {
        const query: ListQuery = { ...toListQuery(filters), tenant: request.tenant };
        const scheduleId = filters.schedule_id;
        if (scheduleId !== undefined) {
          // No index holds a job's schedule: its jobs are picked out of the tenant's, a bounded number per page.
          query.match = (job) => job.scheduleId === scheduleId;
          query.scanLimit = SEARCH_SCAN_LIMIT;
        }
        return renderPage(await store.list(query), filters.order, renderAll);
      }
      return renderPage(
        await findByIdempotencyKey(store, request.tenant, idempotencyKey, filters),
        filters.order,
        renderAll,
      );
    },
  });

  app.get('/v1/jobs/:id', {
    schema: {
      operationId: 'getJob',
      summary: 'Get a job',
      description:
        'Send `If-None-Match: "v<version>"` to get 304 while nothing changed. `Retry-After` says when to poll again.',
      tags: ['jobs'],
      security: apiSecurity,
      params: jobIdParams,
      headers: z
        .object({
          'if-none-match': z
            .string()
            .optional()
            .describe('The ETag you have (`"v<version>"`): 304 while the job is unchanged'),
          prefer: z
            .string()
            .optional()
            .describe(
              `\`wait=N\` (N ≤ ${MAX_WAIT_S}) with a matching If-None-Match: hold the answer until the job changes (200) or N seconds pass (304)`,
            ),
        })
        .loose(),
      response: {
        200: jobSchema,
        304: z.undefined().describe('Not modified'),
        ...problemResponses(401, 404, 410, 429, 503),
      },
    },
    handler: async (request, reply) => {
      let job = await findJob(store, request.params.id, request.tenant);
      const waitS = preferredWaitS(request.headers.prefer);
      if (waitS !== undefined && notModified(request.headers['if-none-match'], `"v${job.version}"`)) {
        // Long-poll: held until the job changes (progress too, on any instance) or N seconds pass.
        reply.header('preference-applied', `wait=${waitS}`);
        const seen = job.version;
        const latest = await awaitJob(
          store,
          job.id,
          (current) => current.version !== seen,
          waitS * 1000,
          abortOnClose(reply),
        );
        job = latest ?? (await findJob(store, request.params.id, request.tenant));
      }
      const etag = `"v${job.version}"`;
      reply.header('etag', etag).header('cache-control', 'no-cache');
      if (!isTerminal(job.status)) {
        reply.header('retry-after', String(retryAfterSeconds(job, Date.now())));
      }
      if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return await render(job);
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
        200: {
          description: "The handler's result, as it returned it",
          content: { 'application/json': { schema: storedJson } },
        },
        202: jobSchema,
        ...problemResponses(401, 404, 409, 410, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const job = await findJob(store, request.params.id, request.tenant);
      if (job.status === 'succeeded')
        return reply
          .code(200)
          .type('application/json; charset=utf-8')
          .send(JSON.stringify(job.result ?? null));
      if (job.status === 'failed' || job.status === 'canceled') {
        const code = job.status === 'failed' ? 'job-failed' : 'job-canceled';
        const detail =
          job.status === 'failed'
            ? `The job failed: ${job.error?.message ?? 'unknown error'}`
            : 'The job was canceled.';
        return sendProblem(
          reply,
          problem(code, detail, undefined, {
            job: await render(job),
            error: job.error ? renderJobError(job.error) : null,
          }),
        );
      }
      return reply
        .code(202)
        .headers({ location: jobPath(job.id), 'retry-after': String(retryAfterSeconds(job, Date.now())) })
        .send(await render(job));
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
      if (!outcome) return jobNotFound(store, request.params.id, request.tenant);
      request.log.info({ jobId: outcome.job.id, outcome: outcome.outcome }, 'job cancel');
      return reply.code(outcome.outcome === 'cancel-requested' ? 202 : 200).send(await render(outcome.job));
    },
  });

  app.delete('/v1/jobs/:id', {
    schema: {
      operationId: 'deleteJob',
      summary: 'Delete a job',
      description:
        'Cancels it if active, then removes the job and its result. 204 also for an unknown id, so repeating is safe.',
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
      description:
        "Each type with the JSON Schema of its input: the types this service's handlers run (`in-process`), then those operators declared for remote workers (`remote`).",
      tags: ['jobs'],
      security: apiSecurity,
      response: { 200: jobTypesSchema, ...problemResponses(401, 429) },
    },
    handler: async () => ({
      data: [
        ...handlers.all.map((handler) => ({
          type: handler.type,
          served_by: 'in-process' as const,
          description: null,
          input_schema: z.toJSONSchema(handler.input, { io: 'input', unrepresentable: 'any' }),
          timeout_s: handler.timeout_s ?? null,
          max_attempts: handler.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
        })),
        // A handler wins a name that is also declared (declared before the handler was deployed): list it once.
        ...(declaredTypes?.all ?? [])
          .filter((def) => !handlers.get(def.type))
          .map((def) => ({
            type: def.type,
            served_by: 'remote' as const,
            description: def.description,
            input_schema: def.input_schema,
            timeout_s: def.timeout_s,
            max_attempts: def.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
          })),
      ],
    }),
  });
};
