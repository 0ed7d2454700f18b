import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { recordAudit } from '../ops/audit.js';
import type { OpsStore } from '../ops/ops-store.js';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import type { SchedulingOf } from '../job-types/type-scheduling.js';
import { isJobId, newJobId } from '../jobs/job-id.js';
import { terminalStatusList, type JobRecord } from '../jobs/job.js';
import type { JobStore } from '../store/job-store.js';
import type { WorkerPool } from '../worker/worker-pool.js';
import { adminSearchFilter, namesOneJob, SEARCH_SCAN_LIMIT, searchJobs } from '../search/job-search.js';
import { renderAdminJob, renderAdminJobDetail, waitingFor } from './job-view.js';
import { adminJobsQuery, filterFromQuery } from './admin-search.js';
import { findJob } from './job-lookup.js';
import { decodeCursor, nextCursor } from './paging.js';
import {
  adminJobDetailSchema,
  adminSecurity,
  adminJobListSchema,
  adminJobSchema,
  jobIdParams,
  problemResponses,
  purgeQuery,
  statsSchema,
} from './schemas.js';

export interface AdminRoutesOptions {
  store: JobStore;
  /** Where admin writes are recorded (the audit log). */
  ops: OpsStore;
  pool: WorkerPool | null;
  /** Each type's scheduling settings: a job's waiting_for, a clone's fair_by. */
  scheduling: SchedulingOf;
}

const security = adminSecurity;

export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (
  fastify,
  { store, pool, ops, scheduling },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  /** A job as operators see it, with its waiting_for. */
  const render = async (job: JobRecord) => renderAdminJob(job, (await waitingFor(store, scheduling, [job]))[0]!);
  const audit = (
    request: FastifyRequest,
    action: string,
    target: string,
    count: number,
    detail?: Record<string, unknown>,
  ) => recordAudit(ops, request, { action, target, count, ...(detail ? { detail } : {}) });
  // Registered inside buildApp's admin scope, whose guard checks each route's least role (config.adminRole): viewer reads, operator acts on jobs, admin purges.

  app.get('/admin/jobs', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminSearchJobs',
      summary: 'Search all jobs',
      description: `Across tenants. Filters combine with AND; \`metadata.<key>=<value>\` (repeatable) matches metadata. \`status\`, \`type\`, \`tenant\` and the creation range use indexes; the other filters are checked job by job over at most ${SEARCH_SCAN_LIMIT.toLocaleString('en-US')} jobs per call, so a page may come back short (even empty) with a \`next_cursor\`: follow it to look further.`,
      tags: ['admin'],
      security,
      querystring: adminJobsQuery,
      response: { 200: adminJobListSchema, ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const { limit, cursor, order, ...rest } = request.query;
      const parsed = adminSearchFilter.safeParse(filterFromQuery(rest, Object.keys(adminSearchFilter.shape)));
      if (!parsed.success) throw validationProblem(parsed.error);
      // A filter naming one job answers it alone: its cursor is not read.
      const after = cursor === undefined || namesOneJob(parsed.data) ? undefined : decodeCursor(cursor, order);
      const page = await searchJobs(store, parsed.data, { limit, after, order });
      const waiting = await waitingFor(store, scheduling, page.jobs);
      return {
        data: page.jobs.map((job, i) => renderAdminJob(job, waiting[i]!)),
        next_cursor: nextCursor(page.nextAfter, order),
      };
    },
  });

  app.get('/admin/jobs/:id', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminGetJob',
      summary: 'One job, with its attempt timeline and logs',
      tags: ['admin'],
      security,
      params: jobIdParams,
      response: { 200: adminJobDetailSchema, ...problemResponses(401, 403, 404, 410, 503) },
    },
    handler: async (request) => {
      const job = await findJob(store, request.params.id);
      const [logs, [waiting]] = await Promise.all([store.logs(job.id), waitingFor(store, scheduling, [job])]);
      return renderAdminJobDetail(job, logs, waiting!);
    },
  });

  app.post('/admin/jobs/:id/cancel', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminCancelJob',
      summary: 'Cancel a job',
      description:
        'Queued: canceled at once (200). Running: its handler is aborted and it ends canceled (202). Finished: unchanged (200).',
      tags: ['admin'],
      security,
      params: jobIdParams,
      response: { 200: adminJobSchema, 202: adminJobSchema, ...problemResponses(401, 403, 404, 410, 503) },
    },
    handler: async (request, reply) => {
      const outcome = isJobId(request.params.id) ? await store.cancel(request.params.id, Date.now()) : undefined;
      if (!outcome) await findJob(store, request.params.id);
      await audit(request, 'job.cancel', request.params.id, outcome!.outcome === 'unchanged' ? 0 : 1);
      return reply.code(outcome!.outcome === 'cancel-requested' ? 202 : 200).send(await render(outcome!.job));
    },
  });

  app.delete('/admin/jobs/:id', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminDeleteJob',
      summary: 'Delete a job',
      description: 'Removes it and its result (a running one is aborted); GET then answers 410 for JOB_TTL_S.',
      tags: ['admin'],
      security,
      params: jobIdParams,
      response: { 204: z.undefined().describe('Deleted'), ...problemResponses(401, 403, 404, 410, 503) },
    },
    handler: async (request, reply) => {
      const deleted = isJobId(request.params.id) && (await store.delete(request.params.id));
      if (!deleted) await findJob(store, request.params.id);
      await audit(request, 'job.delete', request.params.id, 1);
      return reply.code(204).send();
    },
  });

  app.post('/admin/jobs/:id/run-now', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminRunJobNow',
      summary: 'Run a delayed job now',
      description:
        'A queued job waiting for its run_at (a delay or a retry backoff) becomes ready at once; 409 for any other job.',
      tags: ['admin'],
      security,
      params: jobIdParams,
      response: { 200: adminJobSchema, ...problemResponses(401, 403, 404, 409, 410, 503) },
    },
    handler: async (request) => {
      const outcome = isJobId(request.params.id) ? await store.runNow(request.params.id, Date.now()) : undefined;
      if (outcome === undefined) await findJob(store, request.params.id);
      if (outcome === 'not-delayed')
        throw new HttpProblem('job-not-delayed', 'Only a queued job waiting for a later run_at can be run now.');
      await audit(request, 'job.run-now', request.params.id, 1);
      return await render(outcome!);
    },
  });

  app.post('/admin/jobs/:id/clone', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminCloneJob',
      summary: 'Queue a copy of a job',
      description:
        'A new job with the same type, input, metadata, priority, attempts, timeout, webhook, concurrency key and tenant, ready now (201, Location).',
      tags: ['admin'],
      security,
      params: jobIdParams,
      response: { 201: adminJobSchema, ...problemResponses(401, 403, 404, 410, 503) },
    },
    handler: async (request, reply) => {
      const source = await findJob(store, request.params.id);
      const now = Date.now();
      const copy = await store.create({
        id: newJobId(now),
        type: source.type,
        tenant: source.tenant,
        input: source.input,
        metadata: { ...source.metadata, cloned_from: source.id },
        priority: source.priority,
        maxAttempts: source.attemptBudget,
        timeoutS: source.timeoutS,
        createdAt: now,
        runAt: now,
        webhook: source.webhook,
        concurrencyKey: source.concurrencyKey,
        // The type's fair_by as it is now, as for a submit.
        fairByKey: scheduling(source.type).fairBy === 'key',
      });
      await audit(request, 'job.clone', source.id, 1, { copy: copy.id });
      return reply
        .code(201)
        .header('location', `/admin/jobs/${copy.id}`)
        .send(await render(copy));
    },
  });

  app.get('/admin/stats', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminGetStats',
      summary: 'Queue statistics',
      tags: ['admin'],
      security,
      response: { 200: statsSchema, ...problemResponses(401, 403, 503) },
    },
    handler: () => adminStats(store, pool),
  });

  app.post('/admin/jobs/:id/retry', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminRetryJob',
      summary: 'Retry a failed or canceled job',
      description:
        'Re-queues it at once; `attempt` keeps counting and the job may run up to its original max_attempts more times.',
      tags: ['admin'],
      security,
      params: jobIdParams,
      response: { 200: adminJobSchema, ...problemResponses(401, 403, 404, 409, 410, 503) },
    },
    handler: async (request) => {
      const outcome = isJobId(request.params.id) ? await store.retry(request.params.id, Date.now()) : undefined;
      if (outcome === undefined) await findJob(store, request.params.id);
      if (outcome === 'not-retryable')
        throw new HttpProblem('job-not-retryable', 'Only failed or canceled jobs can be retried.');
      request.log.info(
        { jobId: outcome!.id, attempt: outcome!.attempt, maxAttempts: outcome!.maxAttempts },
        'admin retry',
      );
      await audit(request, 'job.retry', outcome!.id, 1);
      return await render(outcome!);
    },
  });

  app.delete('/admin/jobs', {
    config: { adminRole: 'admin' },
    schema: {
      operationId: 'adminPurgeJobs',
      summary: 'Purge finished jobs',
      description:
        'Deletes finished jobs (all three finished statuses unless `status` says) that finished at least `older_than_s` seconds ago.',
      tags: ['admin'],
      security,
      querystring: purgeQuery,
      response: { 200: z.object({ deleted: z.number().int() }), ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const statuses = request.query.status ?? terminalStatusList;
      // +1: the store purges jobs completed strictly before the cutoff; "at least older_than_s ago" includes it.
      const deleted = await store.purge(statuses, Date.now() - request.query.older_than_s * 1000 + 1);
      request.log.info({ statuses, olderThanS: request.query.older_than_s, deleted }, 'admin purge');
      await audit(request, 'jobs.purge', statuses.join(','), deleted, { older_than_s: request.query.older_than_s });
      return { deleted };
    },
  });
};

function validationProblem(error: z.ZodError): HttpProblem {
  const errors = error.issues.map((issue) => ({
    pointer: issue.path.map(String).join('.') || '(query)',
    detail: issue.message,
  }));
  return new HttpProblem(
    'bad-request',
    `Invalid query parameter: ${errors.map((entry) => entry.pointer).join(', ')}.`,
    { errors },
  );
}

/** The body of GET /admin/stats (also the `stats` event of GET /admin/events). */
export async function adminStats(store: JobStore, pool: WorkerPool | null): Promise<z.infer<typeof statsSchema>> {
  const stats = await store.stats(Date.now());
  return {
    store: store.kind,
    counts: stats.counts,
    by_type: stats.byType,
    queue_depth: stats.ready,
    delayed: stats.delayed,
    oldest_queued_age_s: stats.oldestReadyAgeS,
    finished_last_minute: stats.finishedLastMinute,
    tenants: stats.tenants.map(({ tenant, queued, running }) => ({ tenant, queued, running })),
    // Only types with keys held back, by name: the stores may list a type at 0 or leave it out, and the events
    // stream compares this body as JSON to decide whether anything changed.
    keys_at_cap: Object.fromEntries(
      Object.entries(stats.keysAtCap)
        .filter(([, keys]) => keys > 0)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ),
    pool: {
      worker_id: pool?.workerId ?? '',
      concurrency: pool?.concurrency ?? 0,
      busy: pool?.busy ?? 0,
      started: pool?.counters.started ?? 0,
      succeeded: pool?.counters.succeeded ?? 0,
      failed: pool?.counters.failed ?? 0,
    },
  };
}
