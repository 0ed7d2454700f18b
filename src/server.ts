import { readFileSync } from 'node:fs';
import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, scheduleFireKeyTtlMs, WEBHOOK_TIMEOUT_MS } from './config.js';
import { createHttpHandler } from './handlers/http.js';
import { loadHandlerModules } from './handlers/load-modules.js';
import { parseApiKeys } from './http/api-auth.js';
import { workerKeyring } from './http/worker-auth.js';
import { OutboundPolicy } from './outbound/outbound-policy.js';
import { builtInHandlers, HandlerRegistry } from './handlers/registry.js';
import { DeclaredTypes } from './job-types/declared-types.js';
import { schedulingOf } from './job-types/type-scheduling.js';
import { scheduledJobMaker } from './routes/schedule-definition.js';
import { MemoryScheduleStore } from './schedules/memory-schedule-store.js';
import { RedisScheduleStore } from './schedules/redis-schedule-store.js';
import { Scheduler } from './schedules/scheduler.js';
import { createJobStore, RedisRequiredError } from './store/create-job-store.js';
import { RedisJobStore } from './store/redis-job-store.js';
import { MemoryOpsStore } from './ops/memory-ops-store.js';
import { RedisOpsStore } from './ops/redis-ops-store.js';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher.js';
import { WebhookSigner } from './webhooks/webhook-signer.js';
import { WorkerPool } from './worker/worker-pool.js';
import { ServiceMetrics } from './metrics/service-metrics.js';
import { fanOut, WorkerControl } from './worker/worker-control.js';
import type { WorkerPoolObserver } from './worker/pool-observer.js';

/**
 * The process: reads the environment, picks the store, starts the worker pool, the scheduler and the HTTP server,
 * and shuts down in one order on SIGTERM/SIGINT: HTTP, then the pool (grace, then re-queue) and the scheduler, then
 * the stores.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }

  const logger = pino({
    level: config.LOG_LEVEL,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'],
      censor: '[redacted]',
    },
  });

  const outboundPolicy = new OutboundPolicy(config.OUTBOUND_ALLOW);
  let handlers: HandlerRegistry;
  try {
    const loaded = await loadHandlerModules(config.HANDLER_MODULES).catch((error: unknown) => {
      throw new Error(`HANDLER_MODULES: ${(error as Error).message}`);
    });
    const available = [...builtInHandlers, createHttpHandler(outboundPolicy)];
    handlers = HandlerRegistry.enabled(config.JOB_TYPES, available, loaded);
  } catch (error) {
    const message = (error as Error).message.startsWith('HANDLER_MODULES')
      ? (error as Error).message
      : `JOB_TYPES: ${(error as Error).message}`;
    logger.fatal(message);
    process.stderr.write(`${message}\n`);
    process.exit(78);
  }

  let selection;
  try {
    selection = await createJobStore(config, logger);
  } catch (error) {
    if (error instanceof RedisRequiredError) {
      logger.fatal(error.message);
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const { store, fallback } = selection;
  // What else lives in the jobs' Redis (same connection, same key base, so one hash tag): operator state
  // (pauses, worker registry, audit, history, bulk snapshots) and the API's rate-limit counts.
  const redis =
    store instanceof RedisJobStore
      ? { client: store.redis, keyBase: store.keys.base, rateLimitPrefix: store.keys.rateLimitPrefix }
      : undefined;
  const ops = redis
    ? new RedisOpsStore(redis.client, redis.keyBase, { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
    : new MemoryOpsStore();
  // The job types operators declared for remote workers, kept in the ops store and followed on every instance.
  const declaredTypes = await DeclaredTypes.load(ops, logger);
  // Recurring schedules live beside the jobs (same Redis, same key base), so every instance sees the same ones.
  const schedules = redis
    ? new RedisScheduleStore(redis.client, redis.keyBase, { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
    : new MemoryScheduleStore();

  const unknownLimited = Object.keys(config.TYPE_LIMITS).filter((type) => !handlers.get(type));
  if (unknownLimited.length > 0)
    logger.warn({ types: unknownLimited }, 'TYPE_LIMITS names job types that are not enabled here');
  const metrics = new ServiceMetrics({ jobTypes: handlers.types });
  const webhookPolicy = config.WEBHOOK_SECRET ? outboundPolicy : undefined;
  // Built on every instance (triggers use it); it fires schedules only where jobs run (ROLE all or worker).
  const scheduler = new Scheduler({
    schedules,
    jobs: store,
    log: logger,
    newJob: scheduledJobMaker({
      handlers,
      declaredTypes,
      scheduling: schedulingOf(handlers, declaredTypes, config.TYPE_LIMITS),
      webhookPolicy,
    }),
    idempotencyTtlMs: scheduleFireKeyTtlMs(config.IDEMPOTENCY_TTL_S * 1000),
    observer: metrics.schedules,
    maxActivePerTenant: config.MAX_ACTIVE_JOBS_PER_TENANT,
  });
  const poolObservers: WorkerPoolObserver[] = [metrics];
  const pool =
    config.ROLE !== 'api' && config.WORKER_CONCURRENCY > 0
      ? new WorkerPool({
          store,
          handlers,
          limits: handlers.limits(config.TYPE_LIMITS),
          tenantWeights: config.TENANT_WEIGHTS,
          log: logger,
          concurrency: config.WORKER_CONCURRENCY,
          leaseMs: config.LEASE_S * 1000,
          backoff: { baseMs: config.RETRY_BACKOFF_BASE_MS, maxMs: config.RETRY_BACKOFF_MAX_MS },
          observer: fanOut(poolObservers),
        })
      : null;
  // Pauses, drains, the worker registry and the stats history reach the pool through its control.
  const control = pool
    ? new WorkerControl({ ops, store, pool, log: logger, version: serviceVersion, role: config.ROLE })
    : null;
  if (control) poolObservers.push(control);

  // Webhooks are sent by the instances that run jobs; any instance accepts jobs that carry one.
  const webhooks =
    config.WEBHOOK_SECRET && config.ROLE !== 'api'
      ? new WebhookDispatcher({
          store,
          signer: new WebhookSigner(config.WEBHOOK_SECRET),
          policy: outboundPolicy,
          log: logger,
          retryBaseMs: config.WEBHOOK_RETRY_BASE_S * 1000,
        })
      : null;

  let shuttingDown = false;
  const app = await buildApp({
    store,
    ops,
    schedules,
    scheduler,
    maxSchedulesPerTenant: config.MAX_SCHEDULES_PER_TENANT,
    storeFallback: fallback,
    handlers,
    declaredTypes,
    pool,
    role: config.ROLE,
    logger,
    adminToken: config.ADMIN_TOKEN,
    adminKeys: config.ADMIN_KEYS,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    idempotencyTtlMs: config.IDEMPOTENCY_TTL_S * 1000,
    corsOrigins: config.CORS_ORIGINS,
    apiKeys: config.API_KEYS ? parseApiKeys(config.API_KEYS) : undefined,
    workerKeys: config.WORKER_KEYS ? workerKeyring(config.WORKER_KEYS) : undefined,
    typeLimits: config.TYPE_LIMITS,
    // Remote workers' leases, claims and retries: the settings the in-process pool runs with.
    remote: {
      leaseS: config.LEASE_S,
      maxWaitS: config.REMOTE_MAX_WAIT_S,
      maxClaim: config.REMOTE_MAX_CLAIM,
      backoff: { baseMs: config.RETRY_BACKOFF_BASE_MS, maxMs: config.RETRY_BACKOFF_MAX_MS },
      tenantWeights: config.TENANT_WEIGHTS,
    },
    linkSigningSecret: config.LINK_SIGNING_SECRET,
    rateLimitPerMin: config.RATE_LIMIT_PER_MIN,
    rateLimitRedis: redis && { client: redis.client, keyPrefix: redis.rateLimitPrefix },
    maxActiveJobsPerTenant: config.MAX_ACTIVE_JOBS_PER_TENANT,
    webhookPolicy,
    isShuttingDown: () => shuttingDown,
    metrics,
    metricsToken: config.METRICS_TOKEN,
  });

  // The grace covers the pool's drain plus closing HTTP and the store.
  closeWithGrace({ delay: (config.SHUTDOWN_GRACE_S + SHUTDOWN_MARGIN_S) * 1000, logger }, async ({ signal, err }) => {
    shuttingDown = true;
    if (err) logger.error({ err }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down');
    await app.close();
    // Deliveries in flight get their timeout to end (within the grace); the rest are sent again once their lease lapses.
    // A firing in progress ends first (its jobs are made and the schedule advanced, or left due for another instance).
    await Promise.all([
      pool?.drain(config.SHUTDOWN_GRACE_S * 1000),
      webhooks?.stop(Math.min(WEBHOOK_TIMEOUT_MS, config.SHUTDOWN_GRACE_S * 1000)),
      scheduler.stop(),
    ]);
    await control?.stop();
    await declaredTypes.close();
    await schedules.close();
    await ops.close();
    await store.close();
    logger.info('shut down cleanly');
  });

  if (config.API_KEYS && !config.LINK_SIGNING_SECRET) {
    logger.warn(
      'LINK_SIGNING_SECRET is not set: signed events links (links.events) open only on the instance that made them',
    );
  }
  if (!config.API_KEYS)
    logger.warn('API_KEYS is not set: the /v1 API is open to anyone who can reach it (one anonymous tenant)');
  const address = await app.listen({ port: config.PORT, host: config.HOST });
  await pool?.start();
  await control?.start();
  await webhooks?.start();
  if (config.ROLE !== 'api') scheduler.start();
  logger.info(
    {
      role: config.ROLE,
      store: store.kind,
      storeFallback: fallback,
      workers: config.WORKER_CONCURRENCY,
      jobTypes: handlers.types,
      admin: adminAccess(config.ADMIN_KEYS, config.ADMIN_TOKEN),
      metrics: config.METRICS_TOKEN ? 'token' : 'open',
      schedules: config.ROLE !== 'api' ? 'fired here' : 'fired by all and worker instances',
      webhooks: webhooks
        ? 'sent from here'
        : config.WEBHOOK_SECRET
          ? 'accepted (sent by worker instances)'
          : 'off (no WEBHOOK_SECRET)',
      api: config.API_KEYS
        ? `API keys (${new Set(config.API_KEYS.map((entry) => entry.tenant)).size} tenants)`
        : 'OPEN: no API keys',
      remoteWorkers: config.WORKER_KEYS
        ? `worker keys (${config.WORKER_KEYS.length})`
        : config.API_KEYS
          ? 'closed (no WORKER_KEYS)'
          : 'OPEN: no worker keys',
    },
    `async-job service ready on ${address} (docs at ${address}/docs)`,
  );
}

/** Beyond SHUTDOWN_GRACE_S, what closing HTTP, the stores and the connections may take before the process is ended anyway. */
const SHUTDOWN_MARGIN_S = 10;

const serviceVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** How /admin is reached, for the start-up line: key counts per role, never a key. */
function adminAccess(keys: { role: string }[] | undefined, token: string | undefined): string {
  if (!keys && token === undefined) return 'loopback only';
  const counts = new Map<string, number>();
  for (const { role } of [...(keys ?? []), ...(token === undefined ? [] : [{ role: 'admin' }])])
    counts.set(role, (counts.get(role) ?? 0) + 1);
  return `keys (${[...counts].map(([role, count]) => `${count} ${role}`).join(', ')})`;
}

await main();
