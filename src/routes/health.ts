import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { servingWorkers, type OpsStore } from '../ops/ops-store.js';
import type { JobStore } from '../store/job-store.js';
import type { WorkerPool } from '../worker/worker-pool.js';
import { healthSchema } from './schemas.js';
import { STORE_PROBE_TIMEOUT_MS } from '../config.js';
import { withDeadline } from '../deadline.js';

export interface HealthRoutesOptions {
  store: JobStore;
  storeFallback: boolean;
  pool: WorkerPool | null;
  isShuttingDown: () => boolean;
  /** `open`: the /v1 API needs no key (one anonymous tenant); `keys`: API keys with tenants. */
  authMode: 'open' | 'keys';
  /** The worker registry: live workers, and whether a backlog has none. */
  ops: OpsStore;
}

type Status = 'pass' | 'warn' | 'fail';
const worst = (...statuses: Status[]): Status =>
  statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'pass';
/** Persistence settings change rarely: read at most this often. */
const PERSISTENCE_CACHE_MS = 30_000;
const WORKERS_CACHE_MS = 2000;

interface WorkersCheck {
  status: Status;
  live: number;
  unserved_types: string[];
  output?: string;
}

const HEALTH_CONTENT_TYPE = 'application/health+json';

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (
  fastify,
  { store, storeFallback, pool, isShuttingDown, authMode, ops },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // Readiness must answer quickly even when Redis hangs: every store read waits STORE_PROBE_TIMEOUT_MS at most.
  let persistenceRead: { at: number; value: Promise<Awaited<ReturnType<JobStore['persistence']>>> } | undefined;
  const persistence = () => {
    if (!persistenceRead || Date.now() - persistenceRead.at > PERSISTENCE_CACHE_MS) {
      persistenceRead = { at: Date.now(), value: withDeadline(store.persistence(), STORE_PROBE_TIMEOUT_MS) };
      persistenceRead.value.catch(() => (persistenceRead = undefined)); // an outage is not cached
    }
    return persistenceRead.value;
  };

  app.get('/health/live', {
    schema: {
      operationId: 'getLiveness',
      summary: 'Liveness',
      description:
        'Always 200 while the process runs; never depends on Redis (restarting the process would not fix Redis).',
      tags: ['health'],
      security: [], // no credentials
      response: {
        200: {
          description: 'Alive',
          content: { 'application/health+json': { schema: z.object({ status: z.literal('pass') }) } },
        },
      },
    },
    handler: async (_request, reply) => reply.type(HEALTH_CONTENT_TYPE).send({ status: 'pass' }),
  });

  /** Redis that keeps nothing on disk loses every job when it restarts. */
  async function checkPersistence(): Promise<{
    status: Status;
    aof: boolean | null;
    rdb: boolean | null;
    output?: string;
  } | null> {
    try {
      const kept = await persistence();
      if (!kept) return null;
      const none = !kept.aof && kept.rdb === false;
      return {
        status: none ? 'warn' : 'pass',
        ...kept,
        ...(none
          ? { output: 'Redis has neither AOF nor RDB snapshots: a Redis restart loses every job (set appendonly yes)' }
          : {}),
        ...(kept.rdb === null && !kept.aof
          ? { output: 'AOF is off and the RDB save setting cannot be read (CONFIG refused)' }
          : {}),
      };
    } catch (error) {
      return {
        status: 'warn',
        aof: null,
        rdb: null,
        output: `could not read the persistence settings: ${(error as Error).message}`,
      };
    }
  }

  /**
   * Live workers in the fleet, and the types with jobs waiting that none of them runs. Read at most every
   * WORKERS_CACHE_MS: probes come often, and whether a worker is live changes on its beats (every 10 s).
   * `busy` (below) is this instance's pool, read at each call: the same count the pool writes into its
   * registry entry (slots_busy, job_ids) within a fraction of a second of a change, and /admin/stats shows.
   */
  let workersRead: { at: number; value: Promise<WorkersCheck> } | undefined;
  function checkWorkers(): Promise<WorkersCheck> {
    if (!workersRead || Date.now() - workersRead.at > WORKERS_CACHE_MS)
      workersRead = { at: Date.now(), value: readWorkers() };
    return workersRead.value;
  }

  async function readWorkers(): Promise<WorkersCheck> {
    try {
      const now = Date.now();
      const [workers, stats] = await withDeadline(
        Promise.all([ops.workers(now), store.stats(now)]),
        STORE_PROBE_TIMEOUT_MS,
      );
      const live = servingWorkers(workers);
      const served = new Set(live.flatMap((worker) => worker.types));
      const unserved = Object.entries(stats.byType)
        .filter(([type, counts]) => counts.queued > 0 && !served.has(type))
        .map(([type]) => type)
        .sort();
      return {
        status: unserved.length > 0 ? 'warn' : 'pass',
        live: live.length,
        unserved_types: unserved,
        ...(unserved.length > 0 ? { output: `jobs wait of types no live worker runs: ${unserved.join(', ')}` } : {}),
      };
    } catch (error) {
      return {
        status: 'warn',
        live: 0,
        unserved_types: [],
        output: `could not read the worker registry: ${(error as Error).message}`,
      };
    }
  }

  app.get('/health', {
    schema: {
      operationId: 'getHealth',
      summary: 'Readiness',
      description:
        '`pass`; `warn` (200) when Redis was configured but the service fell back to memory, when Redis keeps nothing on disk (neither AOF nor RDB: a Redis restart would lose every job), or when jobs wait of a type no live worker runs; `fail` (503) when the store cannot be reached or the instance is shutting down.',
      tags: ['health'],
      security: [], // no credentials
      response: {
        200: { description: 'Ready (pass or warn)', content: { 'application/health+json': { schema: healthSchema } } },
        503: { description: 'Not ready (fail)', content: { 'application/health+json': { schema: healthSchema } } },
      },
    },
    handler: async (_request, reply) => {
      let latencyMs: number | null = null;
      let output: string | undefined;
      try {
        latencyMs = Math.round((await withDeadline(store.ping(), STORE_PROBE_TIMEOUT_MS)) * 100) / 100;
      } catch (error) {
        output = (error as Error).message;
      }
      const storeStatus: Status = latencyMs === null ? 'fail' : storeFallback ? 'warn' : 'pass';
      const [persistenceCheck, workersCheck] =
        latencyMs === null ? [null, null] : await Promise.all([checkPersistence(), checkWorkers()]);
      const shuttingDown = isShuttingDown();
      const status = shuttingDown
        ? 'fail'
        : worst(storeStatus, persistenceCheck?.status ?? 'pass', workersCheck?.status ?? 'pass');
      const body = {
        status,
        ...(shuttingDown
          ? { description: 'shutting down' }
          : storeFallback
            ? { description: 'REDIS_URL is set but Redis was unreachable at start-up: jobs are in memory only' }
            : {}),
        checks: {
          store: {
            kind: store.kind,
            fallback: storeFallback,
            status: storeStatus,
            latency_ms: latencyMs,
            ...(output ? { output } : {}),
          },
          ...(persistenceCheck ? { persistence: persistenceCheck } : {}),
          workers: {
            concurrency: pool?.concurrency ?? 0,
            busy: pool?.busy ?? 0,
            ...(workersCheck ?? { status: 'pass' as const }),
          },
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
