import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HandlerRegistry } from '../handlers/registry.js';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import { jobStatuses, type JobStatus } from '../jobs/job.js';
import { actorKeyId, recordAudit } from '../ops/audit.js';
import { servingWorkers, type OpsStore, type TypePause } from '../ops/ops-store.js';
import type { JobStore } from '../store/job-store.js';
import { statusCounts } from './admin-schemas.js';
import { adminSecurity as security, problemResponses } from './schemas.js';

/**
 * Job types, for operators: each with its counts, pause and alarm; pause and resume (every instance's
 * workers hear it at once). Registered inside the admin scope (the admin guard runs first).
 */
export interface AdminTypeRoutesOptions {
  store: JobStore;
  ops: OpsStore;
  handlers: HandlerRegistry;
}

const pauseSchema = z
  .object({
    by: z.string().describe("Key id (first 8 hex digits of the admin key's SHA-256, or `loopback`) of who paused it"),
    reason: z.string(),
    at: timestamp,
  })
  .meta({ id: 'TypePause' });

const typeSchema = z
  .object({
    type: z.string(),
    paused: pauseSchema.nullable().describe('Workers claim no jobs of a paused type (running ones finish)'),
    counts: statusCounts,
    queued: z.number().int(),
    running: z.number().int(),
    live_workers: z.number().int().describe('Live workers that run this type and are not draining'),
    alarm: z.boolean().describe('Jobs are queued and no live worker runs the type'),
  })
  .meta({ id: 'AdminJobType' });

const typeParams = z.object({ type: z.string().min(1).max(200) });
const pauseBody = z
  .object({
    reason: z.string().trim().min(1).max(500).describe('Why: shown to other operators and kept in the audit log'),
  })
  .strict();
const pauseStateSchema = z.object({
  type: z.string(),
  paused: pauseSchema.nullable(),
  changed: z.boolean().describe('false when it already was in that state (resume only)'),
});

const renderPause = (pause: TypePause) => ({ by: pause.by, reason: pause.reason, at: rfc3339(pause.at) });

export const adminTypeRoutes: FastifyPluginAsync<AdminTypeRoutesOptions> = async (
  fastify,
  { store, ops, handlers },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/admin/types', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminListTypes',
      summary: 'Job types: paused state, counts, live workers, alarm',
      description:
        'Every type this service knows (its handlers, and any found in the store), with its counts per status, whether it is paused, how many live workers run it, and an alarm when jobs wait and no live worker runs the type.',
      tags: ['admin'],
      security,
      response: { 200: z.object({ data: z.array(typeSchema) }), ...problemResponses(401, 403, 503) },
    },
    handler: async () => {
      const now = Date.now();
      const [stats, paused, workers] = await Promise.all([store.stats(now), ops.pausedTypes(), ops.workers(now)]);
      const serving = servingWorkers(workers);
      const types = [...new Set([...handlers.types, ...Object.keys(stats.byType), ...Object.keys(paused)])].sort();
      const zero = Object.fromEntries(jobStatuses.map((status) => [status, 0])) as Record<JobStatus, number>;
      return {
        data: types.map((type) => {
          const counts = { ...zero, ...stats.byType[type] };
          const liveWorkers = serving.filter((worker) => worker.types.includes(type)).length;
          const pause = paused[type];
          return {
            type,
            paused: pause ? renderPause(pause) : null,
            counts,
            queued: counts.queued,
            running: counts.running,
            live_workers: liveWorkers,
            alarm: counts.queued > 0 && liveWorkers === 0,
          };
        }),
      };
    },
  });

  app.post('/admin/types/:type/pause', {
    config: { adminRole: 'admin' },
    schema: {
      operationId: 'adminPauseType',
      summary: 'Pause a job type',
      description:
        'Workers on every instance stop claiming jobs of this type (running ones finish); who paused it, why and when are kept and audited. Pausing again replaces the reason.',
      tags: ['admin'],
      security,
      params: typeParams,
      body: pauseBody,
      response: { 200: pauseStateSchema, ...problemResponses(401, 403, 422, 503) },
    },
    handler: async (request) => {
      const { type } = request.params;
      const pause = { by: actorKeyId(request), reason: request.body.reason, at: Date.now() };
      await ops.pauseType(type, pause);
      await recordAudit(ops, request, {
        action: 'type.pause',
        target: type,
        count: 1,
        detail: { reason: pause.reason },
      });
      return { type, paused: renderPause(pause), changed: true };
    },
  });

  app.post('/admin/types/:type/resume', {
    config: { adminRole: 'admin' },
    schema: {
      operationId: 'adminResumeType',
      summary: 'Resume a paused job type',
      tags: ['admin'],
      security,
      params: typeParams,
      response: { 200: pauseStateSchema, ...problemResponses(401, 403, 503) },
    },
    handler: async (request) => {
      const { type } = request.params;
      const was = (await ops.pausedTypes())[type];
      const changed = await ops.resumeType(type);
      await recordAudit(ops, request, {
        action: 'type.resume',
        target: type,
        count: changed ? 1 : 0,
        ...(was ? { detail: { paused_by: was.by, reason: was.reason } } : {}),
      });
      return { type, paused: null, changed };
    },
  });
};
