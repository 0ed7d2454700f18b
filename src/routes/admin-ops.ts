import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import { isJobId } from '../jobs/job-id.js';
import { JobStatus, jobStatuses } from '../jobs/job.js';
import { recordAudit } from '../ops/audit.js';
import { servingWorkers, type BulkAction, type OpsStore, type TypePause } from '../ops/ops-store.js';
import type { JobStore } from '../store/job-store.js';
import { adminSearchFilter, matchingIds } from './admin-search.js';
import { adminSecurity, problemResponses, problemSchema } from './schemas.js';

/**
 * Operator routes on what is not one job: job types (pause, resume, alarm), the worker registry (drain,
 * resume), stats history, the audit log and bulk actions. Registered inside the admin scope (the admin guard
 * runs first); each route names the least role it needs in `config.adminRole`.
 */
export interface AdminOpsRoutesOptions {
  store: JobStore;
  ops: OpsStore;
  handlers: HandlerRegistry;
}

const security = adminSecurity;
/** Most ids a bulk action names directly, and most a filter's snapshot holds. */
export const BULK_MAX_IDS = 1000;
export const BULK_MAX_MATCHED = 10_000;
export const SNAPSHOT_TTL_MS = 10 * 60_000;
/** Jobs a bulk action works on at once. */
const BULK_CONCURRENCY = 50;

const iso = (ms: number): string => new Date(ms).toISOString();
const timestamp = z.iso.datetime({ offset: true }).describe('RFC 3339 time, UTC');
/** A problem response entry with this route's own description. */
const problemAnswer = (description: string) => ({ description, content: { 'application/problem+json': { schema: problemSchema } } });

const statusCounts = z.object(Object.fromEntries(jobStatuses.map((status) => [status, z.number().int()])) as Record<JobStatus, z.ZodNumber>);
const pauseSchema = z
  .object({
    by: z.string().describe('Key id (first 8 hex digits of the admin key\'s SHA-256, or `loopback`) of who paused it'),
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
const pauseBody = z.object({ reason: z.string().trim().min(1).max(500).describe('Why: shown to other operators and kept in the audit log') }).strict();
const pauseStateSchema = z.object({ type: z.string(), paused: pauseSchema.nullable(), changed: z.boolean().describe('false when it already was in that state (resume only)') });

const workerSchema = z
  .object({
    id: z.string(),
    state: z.enum(['live', 'stale', 'dead']).describe('live: beat within 3 beat intervals (30 s); stale: within 5 minutes; dead: older (dropped after an hour)'),
    host: z.string(),
    pid: z.number().int(),
    version: z.string(),
    role: z.string(),
    started_at: timestamp,
    beat_at: timestamp,
    beat_age_s: z.number(),
    types: z.array(z.string()),
    slots_total: z.number().int(),
    slots_busy: z.number().int(),
    job_ids: z.array(z.string()),
    leases_lost: z.number().int(),
    draining: z.boolean().describe('Claims no new jobs: an operator drained it, or it is shutting down'),
  })
  .meta({ id: 'AdminWorker' });
const workerParams = z.object({ id: z.string().min(1).max(200) });

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
    window: z.enum(['1h', '24h', '7d']),
    bucket_s: z.number().int().describe('60 for 1h, 600 for 24h, 3600 for 7d'),
    from: timestamp,
    to: timestamp,
    buckets: z.array(z.object({ at: timestamp.describe('Start of the bucket'), types: z.record(z.string(), typeHistorySchema).describe('Only the types with activity') })),
  })
  .meta({ id: 'StatsHistory' });

const auditEntrySchema = z
  .object({
    id: z.string(),
    at: timestamp,
    actor: z.object({ key_id: z.string(), role: z.enum(['viewer', 'operator', 'admin']) }),
    action: z.string().describe('`type.pause`, `type.resume`, `worker.drain`, `worker.resume`, `bulk.retry`, `bulk.cancel`, `bulk.delete`, …'),
    target: z.string().describe('A job id, a type, a worker id, `ids` or `filter`'),
    count: z.number().int().describe('How many it changed'),
    detail: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });
const auditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().regex(/^\d+$/, 'not a cursor this API gave').optional().describe('`next_cursor` of the previous page'),
  })
  .strict();

const bulkAction = z.enum(['retry', 'cancel', 'delete']);
const bulkBody = z
  .object({
    action: bulkAction.describe('retry: failed or canceled jobs; cancel: queued or running ones; delete: any'),
    ids: z.array(z.string().min(1).max(64)).min(1).max(BULK_MAX_IDS).optional().describe('Act on these jobs at once'),
    filter: adminSearchFilter.optional().describe('The filters of GET /admin/jobs: needs `dry_run: true` first'),
    dry_run: z.boolean().optional().describe('Count what matches and keep the ids in a snapshot, act on nothing'),
    snapshot: z.string().min(1).max(100).optional().describe("A dry run's token: act on exactly its jobs (once)"),
  })
  .strict()
  .meta({ id: 'BulkAction' });
const bulkDryRunSchema = z
  .object({
    action: bulkAction,
    count: z.number().int().describe('Jobs matched now'),
    truncated: z.boolean().describe(`More than ${BULK_MAX_MATCHED} matched; the snapshot holds the first ${BULK_MAX_MATCHED}`),
    snapshot: z.string().describe('Send back as {action, snapshot} to act on exactly these jobs'),
    expires_at: timestamp,
  })
  .meta({ id: 'BulkDryRun' });
const bulkResultSchema = z
  .object({
    action: bulkAction,
    affected: z.number().int(),
    skipped: z.number().int().describe('Gone, or no longer in a state the action applies to (e.g. retried, or already finished)'),
  })
  .meta({ id: 'BulkResult' });

export const adminOpsRoutes: FastifyPluginAsync<AdminOpsRoutesOptions> = async (fastify, { store, ops, handlers }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const renderPause = (pause: TypePause) => ({ by: pause.by, reason: pause.reason, at: iso(pause.at) });
  const who = (request: { admin: { keyId: string } | null }) => request.admin?.keyId ?? 'unknown';

  app.get('/admin/types', {
    config: { adminRole: 'viewer' },
    schema: {
            operationId: 'adminListTypes',
summary: 'Job types: paused state, counts, live workers, alarm',
      description: 'Every type this service knows (its handlers, and any found in the store), with its counts per status, whether it is paused, how many live workers run it, and an alarm when jobs wait and no live worker runs the type.',
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
      description: 'Workers on every instance stop claiming jobs of this type (running ones finish); who paused it, why and when are kept and audited. Pausing again replaces the reason.',
      tags: ['admin'],
      security,
      params: typeParams,
      body: pauseBody,
      response: { 200: pauseStateSchema, ...problemResponses(401, 403, 422, 503) },
    },
    handler: async (request) => {
      const { type } = request.params;
      const pause = { by: who(request), reason: request.body.reason, at: Date.now() };
      await ops.pauseType(type, pause);
      await recordAudit(ops, request, { action: 'type.pause', target: type, count: 1, detail: { reason: pause.reason } });
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
      await recordAudit(ops, request, { action: 'type.resume', target: type, count: changed ? 1 : 0, ...(was ? { detail: { paused_by: was.by, reason: was.reason } } : {}) });
      return { type, paused: null, changed };
    },
  });

  app.get('/admin/workers', {
    config: { adminRole: 'viewer' },
    schema: {
            operationId: 'adminListWorkers',
summary: 'The worker registry',
      description: 'Every worker pool that beat within the last hour, with its state (live, stale, dead), the age of its last beat, its slots and the jobs it runs.',
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
          state: worker.state,
          host: worker.host,
          pid: worker.pid,
          version: worker.version,
          role: worker.role,
          started_at: iso(worker.started_at),
          beat_at: iso(worker.beat_at),
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
          throw new HttpProblem('worker-not-found', `No worker with id ${id} is known: workers appear once they beat, and are forgotten an hour after their last beat.`);
        }
        await recordAudit(ops, request, { action: `worker.${verb}`, target: id, count: 1 });
        return { id, draining };
      },
    });
  }

  app.get('/admin/stats/history', {
    config: { adminRole: 'viewer' },
    schema: {
            operationId: 'adminGetStatsHistory',
summary: 'Stats over time',
      description:
        'Per bucket and type: jobs finished (succeeded, failed, canceled), the queue depth, and wait and run time percentiles. Buckets: 1 minute over 1h, 10 minutes over 24h, 1 hour over 7d; kept in Redis across restarts (bounded: 2 h, 25 h and 8 days).',
      tags: ['admin'],
      security,
      querystring: z.object({ window: z.enum(['1h', '24h', '7d']).default('1h') }).strict(),
      response: { 200: historySchema, ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const history = await ops.history(request.query.window, Date.now());
      return {
        window: history.window,
        bucket_s: history.bucket_ms / 1000,
        from: iso(history.from),
        to: iso(history.to),
        buckets: history.buckets.map((bucket) => ({ at: iso(bucket.at), types: bucket.types })),
      };
    },
  });

  app.get('/admin/audit', {
    config: { adminRole: 'viewer' },
    schema: {
            operationId: 'adminListAudit',
summary: 'The audit log: every admin write',
      description: 'Who (key id and role), what, on what, how many jobs, when; newest first; the last 10,000 kept.',
      tags: ['admin'],
      security,
      querystring: auditQuery,
      response: { 200: z.object({ data: z.array(auditEntrySchema), next_cursor: z.string().nullable() }), ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const page = await ops.auditLog({ limit: request.query.limit, ...(request.query.cursor !== undefined ? { before: request.query.cursor } : {}) });
      return {
        data: page.entries.map((entry) => ({
          id: entry.id,
          at: iso(entry.at),
          actor: entry.actor,
          action: entry.action,
          target: entry.target,
          count: entry.count,
          detail: entry.detail ?? {},
        })),
        next_cursor: page.next_cursor,
      };
    },
  });

  app.post('/admin/bulk', {
    config: { adminRole: 'operator' },
    schema: {
            operationId: 'adminBulkAction',
summary: 'Retry, cancel or delete many jobs',
      description: [
        'By `ids` (at most 1000): acts at once, answering `{affected, skipped}`.',
        `By \`filter\` (the filters of GET /admin/jobs): first \`dry_run: true\`, which counts the jobs matching now (at most ${BULK_MAX_MATCHED}), keeps their ids in a snapshot for 10 minutes and answers \`{count, snapshot, expires_at}\`; then \`{action, snapshot}\` acts on exactly those jobs, once: jobs that matched only later are never touched.`,
        'Each job is checked when acted on: retry takes only failed or canceled jobs, cancel only queued or running ones; the others are skipped.',
      ].join(' '),
      tags: ['admin'],
      security,
      body: bulkBody,
      response: {
        200: z.union([bulkResultSchema, bulkDryRunSchema]),
        ...problemResponses(401, 403, 422, 503),
        409: problemAnswer('The snapshot was made for another action (snapshot-mismatch); it is spent'),
        410: problemAnswer('The snapshot is unknown, expired or already used (snapshot-gone): make a new dry run'),
      },
    },
    handler: async (request) => {
      const { action, ids, filter, dry_run: dryRun, snapshot } = request.body;
      const given = [ids && '/ids', filter && '/filter', snapshot && '/snapshot'].filter((pointer): pointer is string => typeof pointer === 'string');
      if (given.length !== 1) {
        throw new HttpProblem('validation-failed', 'Give exactly one of `ids`, `filter` or `snapshot`.', {
          errors: (given.length === 0 ? ['/'] : given).map((pointer) => ({ pointer, detail: 'give exactly one of ids, filter, snapshot' })),
        });
      }
      const now = Date.now();

      if (snapshot !== undefined) {
        if (dryRun) throw new HttpProblem('validation-failed', 'A snapshot is acted on, not dry-run again.', { errors: [{ pointer: '/dry_run', detail: 'not with snapshot' }] });
        const taken = await ops.takeSnapshot(snapshot);
        if (!taken) {
          throw new HttpProblem('snapshot-gone', 'This snapshot is unknown, expired (after 10 minutes) or already used: a snapshot acts once. Make a new dry run.', {
            errors: [{ pointer: '/snapshot', detail: 'unknown, expired or used' }],
          });
        }
        if (taken.action !== action) {
          throw new HttpProblem('snapshot-mismatch', `This snapshot was made for ${taken.action}, not ${action}; it is spent now. Make a new dry run for ${action}.`, {
            errors: [{ pointer: '/snapshot', detail: `made for ${taken.action}` }],
          });
        }
        const outcome = await act(store, action, taken.ids, now);
        await recordAudit(ops, request, {
          action: `bulk.${action}`,
          target: 'filter',
          count: outcome.affected,
          detail: { skipped: outcome.skipped, snapshot_size: taken.ids.length, filter: taken.filter ?? null, dry_run_by: taken.by },
        });
        return { action, ...outcome };
      }

      if (filter !== undefined) {
        if (!dryRun) {
          throw new HttpProblem('validation-failed', 'A bulk action by filter needs a dry run first: send `dry_run: true`, then `{action, snapshot}` with the snapshot it answers.', {
            errors: [{ pointer: '/dry_run', detail: 'must be true with filter' }],
          });
        }
        const matched = await matchingIds(store, filter, BULK_MAX_MATCHED);
        const token = await ops.saveSnapshot({ action, ids: matched.ids, filter, by: who(request) }, SNAPSHOT_TTL_MS);
        return { action, count: matched.ids.length, truncated: matched.truncated, snapshot: token, expires_at: iso(now + SNAPSHOT_TTL_MS) };
      }

      const unique = [...new Set(ids)];
      if (dryRun) {
        const existing = (await mapChunked(unique, async (id) => (isJobId(id) && (await store.get(id)) ? id : undefined))).filter((id): id is string => id !== undefined);
        const token = await ops.saveSnapshot({ action, ids: existing, by: who(request) }, SNAPSHOT_TTL_MS);
        return { action, count: existing.length, truncated: false, snapshot: token, expires_at: iso(now + SNAPSHOT_TTL_MS) };
      }
      const outcome = await act(store, action, unique, now);
      await recordAudit(ops, request, {
        action: `bulk.${action}`,
        target: unique.length === 1 ? unique[0]! : 'ids',
        count: outcome.affected,
        detail: { skipped: outcome.skipped, requested: unique.length },
      });
      return { action, ...outcome };
    },
  });
};

/**
 * Applies the action to each job, re-checking it there and then (each store call is atomic): retry takes only
 * failed or canceled jobs, cancel only active ones, delete anything still there. The rest are skipped, never touched.
 */
async function act(store: JobStore, action: BulkAction, ids: string[], now: number): Promise<{ affected: number; skipped: number }> {
  const done = await mapChunked(ids, async (id) => {
    if (!isJobId(id)) return false;
    switch (action) {
      case 'retry': {
        const outcome = await store.retry(id, now);
        return outcome !== undefined && outcome !== 'not-retryable';
      }
      case 'cancel': {
        const outcome = await store.cancel(id, now);
        return outcome !== undefined && outcome.outcome !== 'unchanged';
      }
      case 'delete':
        return store.delete(id);
    }
  });
  const affected = done.filter(Boolean).length;
  return { affected, skipped: ids.length - affected };
}

/** `fn` over every item, BULK_CONCURRENCY at a time, results in order. */
async function mapChunked<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += BULK_CONCURRENCY) {
    results.push(...(await Promise.all(items.slice(start, start + BULK_CONCURRENCY).map(fn))));
  }
  return results;
}
