import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import type { ScrapeSources, ServiceMetrics } from '../metrics/service-metrics.js';
import { metricsSecurity, problemResponses } from './schemas.js';

export interface MetricsRoutesOptions extends ScrapeSources {
  metrics: ServiceMetrics;
  /** METRICS_TOKEN: when set, a scrape needs `Authorization: Bearer <token>`; unset, /metrics is open. */
  token: string | undefined;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** With a token, `Authorization: Bearer <token>`, compared by digest so the comparison is constant-time whatever the length. */
function metricsGuard(token: string): (request: FastifyRequest) => Promise<void> {
  const expected = digest(token);
  return async (request) => {
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
      throw new HttpProblem('unauthorized', 'GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`.', {
        headers: { 'www-authenticate': 'Bearer realm="metrics"' },
      });
    }
  };
}

/** `GET /metrics`: Prometheus text format, for every role (a worker-only instance is scraped too). */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (
  fastify,
  { metrics, store, pool, token },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // This plugin's own scope: the guard covers /metrics only.
  if (token !== undefined) app.addHook('onRequest', metricsGuard(token));

  app.get('/metrics', {
    schema: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      description:
        'The Prometheus text exposition format (0.0.4): jobs created, finished, attempts, run and wait times, jobs per state, worker slots, leases lost, store health and latency, HTTP request durations per route template, and the Node process. Needs `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set; open otherwise.',
      tags: ['operations'],
      security: metricsSecurity,
      response: {
        200: { description: 'The metrics', content: { 'text/plain; version=0.0.4': { schema: z.string() } } },
        ...problemResponses(401),
      },
    },
    handler: async (_request, reply) => {
      const body = await metrics.scrape({ store, pool });
      return reply.type(metrics.contentType).header('cache-control', 'no-store').send(body);
    },
  });
};
