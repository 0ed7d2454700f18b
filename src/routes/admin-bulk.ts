import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import { isJobId } from '../jobs/job-id.js';
import { actorKeyId, recordAudit } from '../ops/audit.js';
import type { BulkAction, OpsStore } from '../ops/ops-store.js';
import { adminSearchFilter, matchingIds } from '../search/job-search.js';
import type { JobStore } from '../store/job-store.js';
import { adminSecurity as security, problemAnswer, problemResponses } from './schemas.js';

/**
 * Bulk actions, for operators: retry, cancel or delete many jobs, by ids at once, or by a filter after a dry
 * run whose snapshot the action then works on, once. Registered inside the admin scope (the admin guard runs first).
 */
export interface AdminBulkRoutesOptions {
  store: JobStore;
  ops: OpsStore;
}

/** Most ids a bulk action names directly, and most a filter's snapshot holds. */
export const BULK_MAX_IDS = 1000;
export const BULK_MAX_MATCHED = 10_000;
/** How long a dry run's snapshot can be acted on. */
export const SNAPSHOT_TTL_MS = 10 * 60_000;
const SNAPSHOT_TTL_MIN = SNAPSHOT_TTL_MS / 60_000;
/** Jobs a bulk action works on at once. */
const BULK_CONCURRENCY = 50;

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
    truncated: z
      .boolean()
      .describe(`More than ${BULK_MAX_MATCHED} matched; the snapshot holds the first ${BULK_MAX_MATCHED}`),
    snapshot: z.string().describe('Send back as {action, snapshot} to act on exactly these jobs'),
    expires_at: timestamp,
  })
  .meta({ id: 'BulkDryRun' });
const bulkResultSchema = z
  .object({
    action: bulkAction,
    affected: z.number().int(),
    skipped: z
      .number()
      .int()
      .describe('Gone, or no longer in a state the action applies to (e.g. retried, or already finished)'),
  })
  .meta({ id: 'BulkResult' });

export const adminBulkRoutes: FastifyPluginAsync<AdminBulkRoutesOptions> = async (fastify, { store, ops }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.post('/admin/bulk', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminBulkAction',
      summary: 'Retry, cancel or delete many jobs',
      description: [
        `By \`ids\` (at most ${BULK_MAX_IDS}): acts at once, answering \`{affected, skipped}\`.`,
        `By \`filter\` (the filters of GET /admin/jobs): first \`dry_run: true\`, which counts the jobs matching now (at most ${BULK_MAX_MATCHED}), keeps their ids in a snapshot for ${SNAPSHOT_TTL_MIN} minutes and answers \`{count, snapshot, expires_at}\`; then \`{action, snapshot}\` acts on exactly those jobs, once: jobs that matched only later are never touched.`,
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
      const given = [ids && '/ids', filter && '/filter', snapshot && '/snapshot'].filter(
        (pointer): pointer is string => typeof pointer === 'string',
      );
      if (given.length !== 1) {
        throw new HttpProblem('validation-failed', 'Give exactly one of `ids`, `filter` or `snapshot`.', {
          errors: (given.length === 0 ? ['/'] : given).map((pointer) => ({
            pointer,
            detail: 'give exactly one of ids, filter, snapshot',
          })),
        });
      }
      const now = Date.now();

      if (snapshot !== undefined) {
        if (dryRun)
          throw new HttpProblem('validation-failed', 'A snapshot is acted on, not dry-run again.', {
            errors: [{ pointer: '/dry_run', detail: 'not with snapshot' }],
          });
        const taken = await ops.takeSnapshot(snapshot);
        if (!taken) {
          throw new HttpProblem(
            'snapshot-gone',
            `This snapshot is unknown, expired (after ${SNAPSHOT_TTL_MIN} minutes) or already used: a snapshot acts once. Make a new dry run.`,
            {
              errors: [{ pointer: '/snapshot', detail: 'unknown, expired or used' }],
            },
          );
        }
        if (taken.action !== action) {
          throw new HttpProblem(
            'snapshot-mismatch',
            `This snapshot was made for ${taken.action}, not ${action}; it is spent now. Make a new dry run for ${action}.`,
            {
              errors: [{ pointer: '/snapshot', detail: `made for ${taken.action}` }],
            },
          );
        }
        const outcome = await act(store, action, taken.ids, now);
        await recordAudit(ops, request, {
          action: `bulk.${action}`,
          target: 'filter',
          count: outcome.affected,
          detail: {
            skipped: outcome.skipped,
            snapshot_size: taken.ids.length,
            filter: taken.filter ?? null,
            dry_run_by: taken.by,
          },
        });
        return { action, ...outcome };
      }

      if (filter !== undefined) {
        if (!dryRun) {
          throw new HttpProblem(
            'validation-failed',
            'A bulk action by filter needs a dry run first: send `dry_run: true`, then `{action, snapshot}` with the snapshot it answers.',
            {
              errors: [{ pointer: '/dry_run', detail: 'must be true with filter' }],
            },
          );
        }
        const matched = await matchingIds(store, filter, BULK_MAX_MATCHED);
        const token = await ops.saveSnapshot(
          { action, ids: matched.ids, filter, by: actorKeyId(request) },
          SNAPSHOT_TTL_MS,
        );
        return {
          action,
          count: matched.ids.length,
          truncated: matched.truncated,
          snapshot: token,
          expires_at: rfc3339(now + SNAPSHOT_TTL_MS),
        };
      }

      const unique = [...new Set(ids)];
      if (dryRun) {
        const existing = (
          await mapChunked(unique, async (id) => (isJobId(id) && (await store.get(id)) ? id : undefined))
        ).filter((id): id is string => id !== undefined);
        const token = await ops.saveSnapshot({ action, ids: existing, by: actorKeyId(request) }, SNAPSHOT_TTL_MS);
        return {
          action,
          count: existing.length,
          truncated: false,
          snapshot: token,
          expires_at: rfc3339(now + SNAPSHOT_TTL_MS),
        };
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
async function act(
  store: JobStore,
  action: BulkAction,
  ids: string[],
  now: number,
): Promise<{ affected: number; skipped: number }> {
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
