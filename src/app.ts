import { randomBytes, randomUUID } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_IDEMPOTENCY_TTL_S,
  DEFAULT_LEASE_S,
  DEFAULT_MAX_SCHEDULES_PER_TENANT,
  DEFAULT_REMOTE_MAX_CLAIM,
  DEFAULT_REMOTE_MAX_WAIT_S,
  DEFAULT_RETRY_BACKOFF,
  scheduleFireKeyTtlMs,
} from './config.js';
import { jobErrorAbout, problemCatalog, type ProblemCode } from './errors.js';
import { adminGuard, adminKeyring, AdminSessions, type AdminRole } from './http/admin-auth.js';
import { registerApiKeyAuth } from './http/api-auth.js';
import { registerWorkerAuth, type WorkerKey } from './http/worker-auth.js';
import { EventLinkSigner } from './http/event-links.js';
import { registerRateLimit, type RateLimitRedis } from './http/rate-limit.js';
import { frameworkErrors, registerErrorHandling } from './http/error-handler.js';
import { clientErrorHandler } from './http/client-error.js';
import type { HandlerRegistry } from './handlers/registry.js';
import { DeclaredTypes } from './job-types/declared-types.js';
import { schedulingOf } from './job-types/type-scheduling.js';
import { adminRoutes } from './routes/admin.js';
import { adminTypeRoutes } from './routes/admin-types.js';
import { adminJobTypeRoutes } from './routes/admin-job-types.js';
import { adminWorkerRoutes } from './routes/admin-workers.js';
import { adminStatsHistoryRoutes } from './routes/admin-stats-history.js';
import { adminAuditRoutes } from './routes/admin-audit.js';
import { adminBulkRoutes } from './routes/admin-bulk.js';
import { adminScheduleRoutes } from './routes/admin-schedules.js';
import { adminEventRoutes } from './routes/admin-events.js';
import { adminSessionRoutes } from './routes/admin-session.js';
import { adminUiRoutes } from './routes/admin-ui.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import type { OutboundPolicy } from './outbound/outbound-policy.js';
import { metricsRoutes } from './routes/metrics.js';
import { remoteLeaseRoutes } from './routes/remote-leases.js';
import { remoteWorkerRoutes } from './routes/remote-workers.js';
import { closeRemoteContext, openRemoteContext, type RemoteSettings } from './remote/remote-context.js';
import { openApiTransformObject, parameters, responseHeaders, securitySchemes } from './routes/openapi.js';
import { ServiceMetrics } from './metrics/service-metrics.js';
import type { ClaimLimit, JobStore } from './store/job-store.js';
import { MemoryOpsStore } from './ops/memory-ops-store.js';
import type { OpsStore } from './ops/ops-store.js';
import { MemoryScheduleStore } from './schedules/memory-schedule-store.js';
import type { ScheduleStore } from './schedules/schedule-store.js';
import { Scheduler } from './schedules/scheduler.js';
import type { WorkerPool } from './worker/worker-pool.js';
// Last: the order modules make their zod schemas in is the order of openapi.yaml's components.
import type { SubmitSettings } from './routes/job-submit.js';
import { scheduledJobMaker } from './routes/schedule-definition.js';
import { scheduleRoutes } from './routes/schedules.js';

export interface AppDeps {
  store: JobStore;
  /** Redis was configured but unreachable at start-up, so `store` is the memory fallback. */
  storeFallback?: boolean;
  /** Operator state that is not jobs (pauses, worker registry, audit, history, bulk snapshots); a MemoryOpsStore when not given (closed with the app). */
  ops?: OpsStore;
  /** Recurring schedules; a MemoryScheduleStore when not given (closed with the app). */
  schedules?: ScheduleStore;
  /**
   * The scheduler firing `schedules` (server.ts runs it where ROLE is all or worker); POST /v1/schedules/{id}/trigger
   * makes its job through it. When not given, the app makes one for triggers and never starts it.
   */
  scheduler?: Scheduler;
  /** Most schedules one tenant may have (MAX_SCHEDULES_PER_TENANT); DEFAULT_MAX_SCHEDULES_PER_TENANT when unset. */
  maxSchedulesPerTenant?: number;
  handlers: HandlerRegistry;
  /** The job types operators declared for remote workers; when not given, the app follows `ops`'s own (closed with the app). */
  declaredTypes?: DeclaredTypes;
  /** Null when this instance runs no workers. */
  pool: WorkerPool | null;
  /** `worker` serves only the operational routes (health); `api` and `all` serve everything. */
  role?: 'all' | 'api' | 'worker';
  logger?: FastifyBaseLogger;
  /** Bearer token for /admin; counts as an `admin` key (kept beside adminKeys). */
  adminToken?: string;
  /** ADMIN_KEYS: each key (or its SHA-256) with its role. With neither this nor adminToken, /admin answers loopback clients only. */
  adminKeys?: { key?: string; sha256?: string; role: AdminRole }[];
  bodyLimitBytes?: number;
  /** How long an Idempotency-Key is kept. */
  idempotencyTtlMs?: number;
  /** SHA-256 of each API key → its tenant; the /v1 API runs open (one anonymous tenant) without. */
  apiKeys?: Map<string, string>;
  /**
   * WORKER_KEYS: SHA-256 of each worker key → its name and types. Without, the worker endpoints (/v1/workers,
   * /v1/leases) are open exactly when the /v1 API is (no apiKeys), as one worker key `anonymous`.
   */
  workerKeys?: Map<string, WorkerKey>;
  /**
   * TYPE_LIMITS: each setting overrides a type's own (a handler's or a declaration's): what submits (fair_by), a
   * Job's waiting_for (key_concurrency) and remote claims go by. None when not given.
   */
  typeLimits?: Record<string, ClaimLimit>;
  /** The pull-worker protocol's settings (LEASE_S, REMOTE_MAX_WAIT_S, REMOTE_MAX_CLAIM, the retry backoff, TENANT_WEIGHTS); the config's defaults for those not given, `typeLimits` for TYPE_LIMITS. */
  remote?: Partial<RemoteSettings>;
  /** Signs events links; every instance must share it (else a random one: links open on this instance only). */
  linkSigningSecret?: string;
  /** Most queued or running jobs one tenant may have; unlimited when unset. */
  maxActiveJobsPerTenant?: number;
  /** Set when webhooks are configured (WEBHOOK_SECRET): jobs may then carry a webhook, whose URL must pass these rules. */
  webhookPolicy?: OutboundPolicy;
  /** Requests per minute per API key (per address when open) on /v1; unlimited when unset. */
  rateLimitPerMin?: number;
  /** Where the rate limit counts, shared by every instance; in this process when unset. */
  rateLimitRedis?: RateLimitRedis;
  /** Browser origins allowed to call the /v1 API ('*' for any); none when unset. */
  corsOrigins?: string[] | '*';
  isShuttingDown?: () => boolean;
  /** This instance's metrics, shared with its worker pool (the pool's `observer`); without one, the app makes its own (no process metrics). */
  metrics?: ServiceMetrics;
  /** METRICS_TOKEN: Bearer token for GET /metrics; open when unset. */
  metricsToken?: string;
}

const requestIdPattern = /^[\w.:-]{1,128}$/;
/** How long a browser may keep a CORS preflight's answer. */
const CORS_MAX_AGE_S = 600;

/** What a browser may read and send on the /v1 API; operator routes (/admin, /health) send no CORS headers. */
async function registerCors(app: FastifyInstance, origins: string[] | '*'): Promise<void> {
  const apiOptions = {
    origin: origins === '*' ? '*' : origins,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'Prefer', 'If-None-Match', 'Last-Event-ID'],
    exposedHeaders: [
      'Location',
      'Content-Location',
      'Retry-After',
      'ETag',
      'Preference-Applied',
      'Idempotent-Replayed',
      'RateLimit',
      'RateLimit-Policy',
      'X-Request-Id',
    ],
    maxAge: CORS_MAX_AGE_S,
  };
  await app.register(fastifyCors, {
    delegator: (request, callback) => {
      const path = request.url.split('?')[0] ?? '';
      callback(null, path.startsWith('/v1/') ? apiOptions : { origin: false });
    },
  });
}

/** Builds the HTTP app, ready for `inject` or `listen`; never listens itself. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: deps.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    // A client's X-Request-Id is kept (when sane) so its logs and ours line up; otherwise one is made.
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID();
    },
    frameworkErrors,
    clientErrorHandler, // requests Node's HTTP parser refuses: raw problem+json, then close
    routerOptions: { ignoreTrailingSlash: true },
  });

  app.setValidatorCompiler(validatorCompiler);
  // Response schemas document the API; plain JSON.stringify keeps responses fast (tests check the shapes).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  const metrics = deps.metrics ?? new ServiceMetrics({ jobTypes: deps.handlers.types, processMetrics: false });
  app.decorate('metrics', metrics);
  // By route template, never the URL (ids would make a series each); a scrape does not count itself.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url;
    if (route !== '/metrics')
      metrics.httpRequest(request.method, route ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  registerErrorHandling(app);
  // The admin guard takes the dashboard's session cookie through app.adminSessions (signed with LINK_SIGNING_SECRET, else a random secret).
  const adminSessions = new AdminSessions(
    deps.linkSigningSecret ? Buffer.from(deps.linkSigningSecret) : randomBytes(32),
  );
  app.decorate('adminSessions', adminSessions);
  if (deps.corsOrigins) await registerCors(app, deps.corsOrigins);

  const operationalOnly = deps.role === 'worker';
  const ops = deps.ops ?? new MemoryOpsStore();
  if (!deps.ops) app.addHook('onClose', () => ops.close());
  const schedules = deps.schedules ?? new MemoryScheduleStore();
  if (!deps.schedules) app.addHook('onClose', () => schedules.close());
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Async job service',
        version: '1.0.0',
        description:
          'Submit a job, get its id and status URL at once, poll it (ETag / Retry-After), fetch its result, cancel, delete and list jobs. Errors are application/problem+json.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: '/', description: 'This service (paths are relative to where it is served)' }],
      tags: [
        { name: 'jobs', description: 'The client API: Bearer <API key> when API_KEYS is set, open otherwise' },
        {
          name: 'schedules',
          description:
            'Recurring schedules of the client API (same keys and tenants as jobs): each fire time of a cron expression or interval makes one job',
        },
        {
          name: 'workers',
          description:
            'The pull-worker protocol: remote worker processes register, claim jobs of declared types, heartbeat and settle them over HTTP. Bearer <worker key> (WORKER_KEYS); open only while neither WORKER_KEYS nor API_KEYS is set',
        },
        {
          name: 'admin',
          description:
            "Operators: Bearer <admin key> (ADMIN_KEYS or ADMIN_TOKEN) or the dashboard's session cookie, or loopback only when neither is set. Roles: viewer reads (GET), operator also acts on jobs and workers (retry, cancel, delete, bulk, drain), admin also purges, pauses and declares job types; ADMIN_TOKEN is an admin key",
        },
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'operations', description: 'Prometheus metrics: Bearer METRICS_TOKEN, open when it is unset' },
      ],
      components: { securitySchemes, headers: responseHeaders, parameters },
    },
    transform: jsonSchemaTransform,
    transformObject: openApiTransformObject,
  });
  if (!operationalOnly) await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  if (!operationalOnly) {
    const declaredTypes = deps.declaredTypes ?? (await DeclaredTypes.load(ops, deps.logger));
    if (!deps.declaredTypes) app.addHook('onClose', () => declaredTypes.close());
    const scheduling = schedulingOf(deps.handlers, declaredTypes, deps.typeLimits ?? {});
    // With API keys, each Job's links.events is signed, so an EventSource (no headers) can open it.
    const eventLinks = deps.apiKeys
      ? new EventLinkSigner(deps.linkSigningSecret ? Buffer.from(deps.linkSigningSecret) : randomBytes(32))
      : undefined;
    const submit: SubmitSettings = {
      handlers: deps.handlers,
      declaredTypes,
      scheduling,
      webhookPolicy: deps.webhookPolicy,
    };
    // One scheduler makes the triggers' jobs of /v1 and of the admin API.
    const scheduler =
      deps.scheduler ??
      new Scheduler({
        schedules,
        jobs: deps.store,
        log: app.log,
        newJob: scheduledJobMaker(submit),
        idempotencyTtlMs: scheduleFireKeyTtlMs(deps.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_S * 1000),
        maxActivePerTenant: deps.maxActiveJobsPerTenant,
      });
    await app.register(async (v1) => {
      registerApiKeyAuth(v1, deps.apiKeys, eventLinks, deps.workerKeys);
      if (deps.rateLimitPerMin) await registerRateLimit(v1, deps.rateLimitPerMin, deps.rateLimitRedis);
      await v1.register(jobRoutes, {
        store: deps.store,
        handlers: deps.handlers,
        declaredTypes,
        scheduling,
        idempotencyTtlMs: deps.idempotencyTtlMs,
        eventLinks,
        maxActiveJobsPerTenant: deps.maxActiveJobsPerTenant,
        webhookPolicy: deps.webhookPolicy,
      });
      await v1.register(eventRoutes, { store: deps.store, scheduling });
      await v1.register(scheduleRoutes, {
        schedules,
        store: deps.store,
        ops,
        scheduler,
        submit,
        maxSchedulesPerTenant: deps.maxSchedulesPerTenant ?? DEFAULT_MAX_SCHEDULES_PER_TENANT,
        maxActiveJobsPerTenant: deps.maxActiveJobsPerTenant,
        eventLinks,
      });
    });
    // One admin scope: the guard runs once, before every admin API route (jobs, and the operator routes on types, workers, history, audit, bulk).
    const adminKeys = adminKeyring(deps.adminKeys, deps.adminToken);
    await app.register(async (admin) => {
      admin.decorateRequest('admin', null);
      admin.addHook('onRequest', adminGuard(adminKeys));
      await admin.register(adminRoutes, { store: deps.store, ops, pool: deps.pool, scheduling });
      // In this order: it is the order of openapi.yaml's paths and components.
      await admin.register(adminTypeRoutes, { store: deps.store, ops, handlers: deps.handlers });
      await admin.register(adminJobTypeRoutes, { store: deps.store, ops, handlers: deps.handlers, declaredTypes });
      await admin.register(adminWorkerRoutes, { ops });
      await admin.register(adminStatsHistoryRoutes, { ops });
      await admin.register(adminAuditRoutes, { ops });
      await admin.register(adminBulkRoutes, { store: deps.store, ops });
      await admin.register(adminScheduleRoutes, { schedules, store: deps.store, ops, scheduler, scheduling });
      await admin.register(adminEventRoutes, { store: deps.store, pool: deps.pool, scheduling });
    });
    // The pull-worker protocol: a scope of its own beside /v1's, so worker keys (not API keys) guard it.
    await app.register(async (workers) => {
      registerWorkerAuth(workers, {
        workerKeys: deps.workerKeys,
        apiNeedsKeys: deps.apiKeys !== undefined,
        otherKeyDigests: new Set([
          ...(deps.apiKeys?.keys() ?? []),
          ...(adminKeys ?? []).map((key) => key.digest.toString('hex')),
        ]),
      });
      const context = await openRemoteContext({
        store: deps.store,
        ops,
        declaredTypes,
        settings: {
          leaseS: DEFAULT_LEASE_S,
          maxWaitS: DEFAULT_REMOTE_MAX_WAIT_S,
          maxClaim: DEFAULT_REMOTE_MAX_CLAIM,
          backoff: DEFAULT_RETRY_BACKOFF,
          typeLimits: deps.typeLimits ?? {},
          tenantWeights: {},
          ...deps.remote,
        },
        isShuttingDown: deps.isShuttingDown ?? (() => false),
        log: app.log,
      });
      // Before the server waits for requests in flight: held claims answer at once instead of holding the close.
      workers.addHook('preClose', async () => closeRemoteContext(context));
      workers.addHook('onClose', async () => closeRemoteContext(context));
      await workers.register(remoteWorkerRoutes, { context });
      await workers.register(remoteLeaseRoutes, { context });
    });
    // The dashboard (page and sign-in) sits outside the admin guard: it must open without a key.
    await app.register(adminSessionRoutes, { adminKeys, sessions: adminSessions });
    await app.register(adminUiRoutes);
  }
  await app.register(healthRoutes, {
    store: deps.store,
    storeFallback: deps.storeFallback ?? false,
    pool: deps.pool,
    isShuttingDown: deps.isShuttingDown ?? (() => false),
    authMode: deps.apiKeys ? 'keys' : 'open',
    ops,
  });
  await app.register(metricsRoutes, { metrics, store: deps.store, pool: deps.pool, token: deps.metricsToken });

  if (!operationalOnly) app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.withTypeProvider<ZodTypeProvider>().get('/problems/:code', {
    schema: {
      operationId: 'getProblem',
      summary: 'What a problem type means',
      tags: ['health'],
      security: [], // no credentials
      params: z.object({ code: z.string() }),
      response: {
        200: z.object({ code: z.string(), status: z.number().int(), title: z.string(), description: z.string() }),
      },
    },
    handler: async (request, reply) => {
      if (request.params.code === 'job-error')
        return { code: 'job-error', status: 200, title: 'Job attempt failed', description: jobErrorAbout };
      if (!Object.hasOwn(problemCatalog, request.params.code)) return reply.callNotFound();
      const entry = problemCatalog[request.params.code as ProblemCode];
      return { code: request.params.code, status: entry.status, title: entry.title, description: entry.about };
    },
  });

  return app;
}
