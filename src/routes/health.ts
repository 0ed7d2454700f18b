import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { JobStore } from '../store/job-store.js';
import type { WorkerPool } from '../worker/worker-pool.js';
import { healthSchema } from './schemas.js';

export interface HealthRoutesOptions {
  store: JobStore;
  storeFallback: boolean;
  pool: WorkerPool | null;
  isShuttingDown: () => boolean;
  /** `open`: the /v1 API needs no key (one anonymous tenant); `keys`: API keys with tenants. */
  authMode: 'open' | 'keys';
}

const HEALTH_CONTENT_TYPE = 'application/health+json';
/** Readiness must answer quickly even when Redis hangs. */
const PING_TIMEOUT_MS = 1500;

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (fastify, { store, storeFallback, pool, isShuttingDown, authMode }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/health/live', {
    schema: {
      summary: 'Liveness',
      description: 'Always 200 while the process runs; never depends on Redis (restarting the process would not fix Redis).',
      tags: ['health'],
      response: { 200: { description: 'Alive', content: { 'application/health+json': { schema: z.object({ status: z.literal('pass') }) } } } },
    },
    handler: async (_request, reply) => reply.type(HEALTH_CONTENT_TYPE).send({ status: 'pass' }),
  });

  app.get('/health', {
    schema: {
      summary: 'Readiness',
      description: '`pass`; `warn` (200) when Redis was configured but the service fell back to memory; `fail` (503) when the store cannot be reached or the instance is shutting down.',
      tags: ['health'],
      response: {
        200: { description: 'Ready (pass or warn)', content: { 'application/health+json': { schema: healthSchema } } },
        503: { description: 'Not ready (fail)', content: { 'application/health+json': { schema: healthSchema } } },
      },
    },
    handler: async (_request, reply) => {
      let latencyMs: number | null = null;
      let output: string | undefined;
      try {
        latencyMs = Math.round((await withTimeout(store.ping(), PING_TIMEOUT_MS)) * 100) / 100;
      } catch (error) {
        output = (error as Error).message;
      }
      const storeStatus = latencyMs === null ? 'fail' : storeFallback ? 'warn' : 'pass';
      const shuttingDown = isShuttingDown();
      const status = shuttingDown ? 'fail' : storeStatus;
      const body = {
        status,
        ...(shuttingDown
          ? { description: 'shutting down' }
          : storeFallback
            ? { description: 'REDIS_URL is set but Redis was unreachable at start-up: jobs are in memory only' }
            : {}),
        checks: {
          store: { kind: store.kind, fallback: storeFallback, status: storeStatus, latency_ms: latencyMs, ...(output ? { output } : {}) },
          workers: { concurrency: pool?.concurrency ?? 0, busy: pool?.busy ?? 0 },
          auth: { mode: authMode },
        },
      } as const;
      return reply
        .code(status === 'fail' ? 503 : 200)
        .type(HEALTH_CONTENT_TYPE)
        .header('cache-control', 'no-store')
        .send(body);
    },
  });
};

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
