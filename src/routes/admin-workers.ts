import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import { recordAudit } from '../ops/audit.js';
import { DEFAULT_BEAT_INTERVAL_MS, LIVE_BEATS, STALE_AFTER_MS, type OpsStore } from '../ops/ops-store.js';
import { adminSecurity as security, problemAnswer, problemResponses } from './schemas.js';

/**
 * The worker registry, for operators: every worker pool that beat lately, and drain / resume of one.
 * Registered inside the admin scope (the admin guard runs first).
 */
export interface AdminWorkerRoutesOptions {
  ops: OpsStore;
}

const workerSchema = z
  .object({
    id: z.string(),
    kind: z
      .enum(['in-process', 'remote'])
      .describe(
        '`in-process`: a worker pool of an instance; `remote`: a worker process pulling jobs over HTTP (POST /v1/workers)',
      ),
    name: z.string().nullable().describe("A remote worker's own name; null for in-process pools"),
    labels: z.record(z.string(), z.string()).describe("A remote worker's labels ({} for in-process pools)"),
    key_name: z
      .string()
      .nullable()
      .describe('The worker key that registered a remote worker; null for in-process pools'),
    state: z
      .enum(['live', 'stale', 'dead'])
      .describe(
        `live: beat within ${LIVE_BEATS} beat intervals (${(LIVE_BEATS * DEFAULT_BEAT_INTERVAL_MS) / 1000} s; a remote worker's interval is its heartbeat_s, so it is live while it called within about its lease); stale: within ${STALE_AFTER_MS / 60_000} minutes; dead: older (dropped after an hour)`,
      ),
    host: z.string(),
    pid: z.number().int(),
    version: z.string(),
    role: z.string(),
    started_at: timestamp,
    beat_at: timestamp.describe("Its last beat (a remote worker's last call)"),
    beat_age_s: z.number(),
    types: z.array(z.string()),
    slots_total: z.number().int(),
    slots_busy: z.number().int(),
    job_ids: z.array(z.string()).describe('The jobs it runs (a remote worker: the leases it holds)'),
    leases_lost: z.number().int(),
    draining: z.boolean().describe('Claims no new jobs: an operator drained it, or it is shutting down'),
  })
  .meta({ id: 'AdminWorker' });
const workerParams = z.object({ id: z.string().min(1).max(200) });

export const adminWorkerRoutes: FastifyPluginAsync<AdminWorkerRoutesOptions> = async (fastify, { ops }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/admin/workers', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminListWorkers',
      summary: 'The worker registry',
      description:
        'Every worker pool that beat within the last hour, with its state (live, stale, dead), the age of its last beat, its slots and the jobs it runs.',
      tags: ['admin'],
      security,
      response: { 200: z.object({ data: z.array(workerSchema) }), ...problemResponses(401, 403, 503) },
    },
    handler: async () => {
      const now = Date.now();
      const workers = await ops.workers(now);
      return {
        data: workers.map((worker) => ({
          id: worker.id,
          kind: worker.kind ?? 'in-process',
          name: worker.name ?? null,
          labels: worker.labels ?? {},
          key_name: worker.key_name ?? null,
          state: worker.state,
          host: worker.host,
          pid: worker.pid,
          version: worker.version,
          role: worker.role,
          started_at: rfc3339(worker.started_at),
          beat_at: rfc3339(worker.beat_at),
          beat_age_s: Math.max(0, Math.round((now - worker.beat_at) / 100) / 10),
          types: worker.types,
          slots_total: worker.slots_total,
          slots_busy: worker.slots_busy,
          job_ids: worker.job_ids,
          leases_lost: worker.leases_lost,
          draining: worker.draining,
        })),
      };
    },
  });

  for (const [verb, draining] of [
    ['drain', true],
    ['resume', false],
  ] as const) {
    app.post(`/admin/workers/:id/${verb}`, {
      config: { adminRole: 'operator' },
      schema: {
        operationId: draining ? 'adminDrainWorker' : 'adminResumeWorker',
        summary: draining ? 'Drain a worker: it claims no new jobs' : 'Resume a drained worker',
        description: draining
          ? 'The worker finishes what it runs and claims nothing new until resumed; it hears at once, and a drain survives its beats and restarts of the service.'
          : 'The worker claims jobs again.',
        tags: ['admin'],
        security,
        params: workerParams,
        response: {
          200: z.object({ id: z.string(), draining: z.boolean() }),
          ...problemResponses(401, 403, 503),
          404: problemAnswer('No worker with this id beat within the last hour (worker-not-found)'),
        },
      },
      handler: async (request) => {
        const { id } = request.params;
        if (!(await ops.setDraining(id, draining))) {
          throw new HttpProblem(
            'worker-not-found',
            `No worker with id ${id} is known: workers appear once they beat, and are forgotten an hour after their last beat.`,
          );
        }
        await recordAudit(ops, request, { action: `worker.${verb}`, target: id, count: 1 });
        return { id, draining };
      },
    });
  }
};
