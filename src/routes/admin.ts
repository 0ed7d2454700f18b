import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { adminGuard, type AdminKey } from '../http/admin-auth.js';
import { isJobId } from '../jobs/job-id.js';
import { ANONYMOUS_TENANT } from '../jobs/job.js';
import { renderJob } from '../jobs/job-view.js';
import type { JobStore } from '../store/job-store.js';
import type { WorkerPool } from '../worker/worker-pool.js';
import { findByIdempotencyKey, renderPage, toListQuery } from './jobs.js';
import { adminListJobsQuery, jobIdParams, jobListSchema, jobSchema, problemResponses, purgeQuery, statsSchema } from './schemas.js';

export interface AdminRoutesOptions {
  store: JobStore;
  pool: WorkerPool | null;
  /** From ADMIN_KEYS and ADMIN_TOKEN (see adminKeyring); undefined = loopback clients only, with every right. */
  adminKeys: AdminKey[] | undefined;
}

const security = [{ adminToken: [] }];

export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (fastify, { store, pool, adminKeys }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // Each route names the least role it needs (config.adminRole): viewer reads, operator acts on jobs, admin purges.
  app.decorateRequest('admin', null);
  app.addHook('onRequest', adminGuard(adminKeys));

  app.get('/admin/jobs', {
    config: { adminRole: 'viewer' },
    schema: {
      summary: 'Search all jobs',
      description: 'The filters and paging of GET /v1/jobs, plus `stuck=true`: running jobs whose lease lapsed.',
      tags: ['admin'],
      security,
      querystring: adminListJobsQuery,
      response: { 200: jobListSchema, ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const { stuck, idempotency_key: idempotencyKey, ...filters } = request.query;
      if (idempotencyKey !== undefined) return renderPage(await findByIdempotencyKey(store, ANONYMOUS_TENANT, idempotencyKey, filters), filters.order);
      const query = toListQuery(filters);
      if (stuck === 'true') query.stuckAt = Date.now();
      return renderPage(await store.list(query), request.query.order);
    },
  });

  app.get('/admin/stats', {
    config: { adminRole: 'viewer' },
    schema: {
      summary: 'Queue statistics',
      tags: ['admin'],
      security,
      response: { 200: statsSchema, ...problemResponses(401, 403, 503) },
    },
    handler: async () => {
      const stats = await store.stats(Date.now());
      return {
        store: store.kind,
        counts: stats.counts,
        by_type: stats.byType,
        queue_depth: stats.ready,
        delayed: stats.delayed,
        oldest_queued_age_s: stats.oldestReadyAgeS,
        finished_last_minute: stats.finishedLastMinute,
        pool: {
          worker_id: pool?.workerId ?? '',
          concurrency: pool?.concurrency ?? 0,
          busy: pool?.busy ?? 0,
          started: pool?.counters.started ?? 0,
          succeeded: pool?.counters.succeeded ?? 0,
          failed: pool?.counters.failed ?? 0,
        },
      };
    },
  });

  app.post('/admin/jobs/:id/retry', {
    config: { adminRole: 'operator' },
    schema: {
      summary: 'Retry a failed or canceled job',
      description: 'Re-queues it at once; `attempt` keeps counting and the job may run up to its original max_attempts more times.',
      tags: ['admin'],
      security,
      params: jobIdParams,
      response: { 200: jobSchema, ...problemResponses(401, 403, 404, 409, 503) },
    },
    handler: async (request) => {
      const outcome = isJobId(request.params.id) ? await store.retry(request.params.id, Date.now()) : undefined;
      if (outcome === undefined) throw new HttpProblem('job-not-found', `No job with id ${request.params.id}.`);
      if (outcome === 'not-retryable') throw new HttpProblem('job-not-retryable', 'Only failed or canceled jobs can be retried.');
      request.log.info({ jobId: outcome.id, attempt: outcome.attempt, maxAttempts: outcome.maxAttempts }, 'admin retry');
      return renderJob(outcome);
    },
  });

  app.delete('/admin/jobs', {
    config: { adminRole: 'admin' },
    schema: {
      summary: 'Purge finished jobs',
      description: 'Deletes finished jobs (all three finished statuses unless `status` says) that finished at least `older_than_s` seconds ago.',
      tags: ['admin'],
      security,
      querystring: purgeQuery,
      response: { 200: z.object({ deleted: z.number().int() }), ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const statuses = request.query.status ?? ['succeeded', 'failed', 'canceled'];
      // +1: the store purges jobs completed strictly before the cutoff; "at least older_than_s ago" includes it.
      const deleted = await store.purge(statuses, Date.now() - request.query.older_than_s * 1000 + 1);
      request.log.info({ statuses, olderThanS: request.query.older_than_s, deleted }, 'admin purge');
      return { deleted };
    },
  });
};
