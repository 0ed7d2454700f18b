import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import { HISTORY_WINDOWS, type HistoryWindow, type OpsStore } from '../ops/ops-store.js';
import { adminSecurity as security, problemResponses } from './schemas.js';

/**
 * Stats over time, for operators: finished jobs, queue depth and wait and run times per bucket and type.
 * Registered inside the admin scope (the admin guard runs first).
 */
export interface AdminStatsHistoryRoutesOptions {
  ops: OpsStore;
}

const historyWindow = z.enum(Object.keys(HISTORY_WINDOWS) as [HistoryWindow, ...HistoryWindow[]]);

const percentilesSchema = z
  .object({ count: z.number().int(), p50: z.number(), p95: z.number(), p99: z.number() })
  .describe('Milliseconds, from log-scale histograms (each within ~9 %)');
const typeHistorySchema = z.object({
  succeeded: z.number().int(),
  failed: z.number().int(),
  canceled: z.number().int(),
  finished: z.number().int().describe('succeeded + failed + canceled'),
  depth: z.number().int().nullable().describe('The latest queue depth (ready jobs) recorded in the bucket'),
  wait_ms: percentilesSchema.nullable().describe('From runnable to started'),
  run_ms: percentilesSchema.nullable().describe('Of the last attempt'),
});
const historySchema = z
  .object({
    window: historyWindow,
    bucket_s: z
      .number()
      .int()
      .describe(
        Object.entries(HISTORY_WINDOWS)
          .map(([window, { bucketMs }]) => `${bucketMs / 1000} for ${window}`)
          .join(', '),
      ),
    from: timestamp,
    to: timestamp,
    buckets: z.array(
      z.object({
        at: timestamp.describe('Start of the bucket'),
        types: z.record(z.string(), typeHistorySchema).describe('Only the types with activity'),
      }),
    ),
  })
  .meta({ id: 'StatsHistory' });

export const adminStatsHistoryRoutes: FastifyPluginAsync<AdminStatsHistoryRoutesOptions> = async (fastify, { ops }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/admin/stats/history', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminGetStatsHistory',
      summary: 'Stats over time',
      description:
        'Per bucket and type: jobs finished (succeeded, failed, canceled), the queue depth, and wait and run time percentiles. Buckets: 1 minute over 1h, 10 minutes over 24h, 1 hour over 7d; kept in Redis across restarts (bounded: 2 h, 25 h and 8 days).',
      tags: ['admin'],
      security,
      querystring: z.object({ window: historyWindow.default('1h') }).strict(),
      response: { 200: historySchema, ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const history = await ops.history(request.query.window, Date.now());
      return {
        window: history.window,
        bucket_s: history.bucket_ms / 1000,
        from: rfc3339(history.from),
        to: rfc3339(history.to),
        buckets: history.buckets.map((bucket) => ({ at: rfc3339(bucket.at), types: bucket.types })),
      };
    },
  });
};
