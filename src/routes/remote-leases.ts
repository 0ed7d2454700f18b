import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { workerKeyOf } from '../http/worker-auth.js';
import { STACK_MAX, type JobError } from '../jobs/job.js';
import { keptLineText, LOG_LEVELS, redact } from '../jobs/log-lines.js';
import type { WorkerView } from '../ops/ops-store.js';
import { LOG_LINES_MAX } from '../store/job-store.js';
import { leaseIdPattern, parseLeaseId } from '../remote/lease-ids.js';
import type { RemoteContext } from '../remote/remote-context.js';
import { settleLeases, type SettleRequest, type Settlement } from '../remote/settle-leases.js';
import { recordCall, remoteWorker } from '../remote/worker-records.js';
import { jsonValue, problemAnswer, problemResponses, workerSecurity as security } from './schemas.js';

/**
 * The writes of a remote worker on the attempts it holds (the pull-worker protocol, part two): complete,
 * fail, release, logs, and many settled in one call. Each is fenced by its lease: once the lease no longer
 * holds the job, nothing changes and the answer is 409 `lease-lost`. Registered in the worker scope.
 */
export interface RemoteLeaseRoutesOptions {
  context: RemoteContext;
}

/** A failure's message is cut to this many characters (a worker must not lose its failure to a 422). */
const ERROR_MESSAGE_MAX = 2000;
/** Most leases settled in one POST /v1/leases:complete. */
const BATCH_MAX = 100;

const leaseParams = z.object({ lease_id: z.string().min(1).max(200) });

const jobErrorBody = z
  .object({
    code: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'letters, digits and _ . : - (at most 64)')
      .describe(
        'Your machine code of the failure (`timeout`, `lease-expired` and `handler-error` mean what they do in-process)',
      ),
    message: z.string().min(1).describe(`What went wrong (cut to ${ERROR_MESSAGE_MAX} characters)`),
    detail: z
      .string()
      .optional()
      .describe(
        `A stack trace or the like: shown to operators in the attempt timeline, secrets masked, cut to ${STACK_MAX} characters`,
      ),
  })
  .strict();
const retryable = z
  .boolean()
  .optional()
  .describe('Whether another attempt may follow (while attempts are left). Default: true');
const retryAfterS = z
  .number()
  .min(0)
  .max(604_800)
  .optional()
  .describe('Wait this long before the next attempt instead of the backoff');

const completeBody = z
  .object({ result: jsonValue.describe('The result clients read') })
  .strict()
  .meta({ id: 'CompleteLease' });
const failBody = z
  .object({ error: jobErrorBody, retryable, retry_after_s: retryAfterS })
  .strict()
  .meta({ id: 'FailLease' });
const logsBody = z
  .object({
    lines: z
      .array(z.object({ level: z.enum(LOG_LEVELS), message: z.string() }).strict())
      .min(1)
      .max(LOG_LINES_MAX)
      .describe(
        'Kept with the attempt, as ctx.log lines are: secrets masked, each cut to 2000 characters, the last 200 of the job kept',
      ),
  })
  .strict()
  .meta({ id: 'LeaseLogs' });
const batchBody = z
  .object({
    items: z
      .array(
        z.union([
          z.object({ lease_id: z.string().regex(leaseIdPattern, 'not a lease id'), result: jsonValue }).strict(),
          z
            .object({
              lease_id: z.string().regex(leaseIdPattern, 'not a lease id'),
              error: jobErrorBody,
              retryable,
              retry_after_s: retryAfterS,
            })
            .strict(),
        ]),
      )
      .min(1)
      .max(BATCH_MAX)
      .describe('Each item completes (`result`) or fails (`error`) one lease'),
  })
  .strict()
  .meta({ id: 'CompleteLeases' });

const settledSchema = z
  .object({
    lease_id: z.string(),
    status: z.literal('ok'),
    job_status: z
      .enum(['queued', 'running', 'succeeded', 'failed', 'canceled'])
      .describe(
        'The job now: `queued` after a release or a failure with a retry to come; `canceled` when a cancel was asked meanwhile',
      ),
  })
  .meta({ id: 'LeaseSettled' });
const logsAnswer = z
  .object({ lease_id: z.string(), lines: z.number().int().describe('Lines kept') })
  .meta({ id: 'LeaseLogsKept' });
const batchAnswer = z
  .object({
    items: z
      .array(
        z.object({
          lease_id: z.string(),
          status: z.enum(['ok', 'lost']).describe('`lost`: the lease no longer held the job; nothing changed'),
        }),
      )
      .describe('One per item, in order'),
  })
  .meta({ id: 'LeasesSettled' });

const leaseResponses = {
  ...problemResponses(400, 401, 403, 415, 422, 503),
  404: problemAnswer('Not a lease id this service handed out to a worker of this key (lease-not-found)'),
  409: problemAnswer(
    'The lease no longer holds the job (lease-lost): it lapsed, the attempt timed out, the job was canceled, deleted or is held by another worker. Nothing changed; drop the job',
  ),
};

/** The failure a remote worker reports, as the job keeps it. */
function jobErrorOf(error: z.infer<typeof jobErrorBody>, isRetryable: boolean | undefined): JobError {
  return {
    code: error.code,
    message: error.message.slice(0, ERROR_MESSAGE_MAX),
    retryable: isRetryable ?? true,
    ...(error.detail ? { stack: redact(error.detail).slice(0, STACK_MAX) } : {}),
  };
}

const leaseLost = (leaseId: string): HttpProblem =>
  new HttpProblem(
    'lease-lost',
    `Lease ${leaseId} no longer holds its job (it lapsed, the attempt timed out, the job was canceled, deleted or is held by another worker): nothing was changed. Drop the job.`,
  );

export const remoteLeaseRoutes: FastifyPluginAsync<RemoteLeaseRoutesOptions> = async (fastify, { context }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { store, ops } = context;

  const single = (operationId: string, summary: string, description: string) => ({
    operationId,
    summary,
    description,
    tags: ['workers'],
    security,
    params: leaseParams,
  });

  app.post('/v1/leases/:lease_id/complete', {
    schema: {
      ...single(
        'completeLease',
        'Complete an attempt',
        'The job succeeds with `result`. Repeating it with the same lease and result answers as the first did.',
      ),
      body: completeBody,
      response: { 200: settledSchema, ...leaseResponses },
    },
    handler: async (request) =>
      settleOne(request, request.params.lease_id, { kind: 'complete', result: request.body.result }),
  });

  app.post('/v1/leases/:lease_id/fail', {
    schema: {
      ...single(
        'failLease',
        'Fail an attempt',
        'A retryable failure with attempts left queues the job again (after `retry_after_s`, else the backoff); otherwise the job fails with `error`.',
      ),
      body: failBody,
      response: { 200: settledSchema, ...leaseResponses },
    },
    handler: async (request) => {
      const { error, retryable: isRetryable, retry_after_s: after } = request.body;
      return settleOne(request, request.params.lease_id, {
        kind: 'fail',
        error: jobErrorOf(error, isRetryable),
        ...(after === undefined ? {} : { retryAfterMs: after * 1000 }),
      });
    },
  });

  app.post('/v1/leases/:lease_id/release', {
    schema: {
      ...single(
        'releaseLease',
        'Release an attempt',
        'The job goes back to the queue at once; the attempt is not counted (a worker stopping before it ran the job, or giving up a canceled one).',
      ),
      response: { 200: settledSchema, ...leaseResponses },
    },
    handler: async (request) => settleOne(request, request.params.lease_id, { kind: 'release' }),
  });

  app.post('/v1/leases/:lease_id/logs', {
    schema: {
      ...single(
        'appendLeaseLogs',
        'Log lines of an attempt',
        "Kept with the job, as a handler's ctx.log lines are (operators read them in the dashboard).",
      ),
      body: logsBody,
      response: { 200: logsAnswer, ...leaseResponses },
    },
    handler: async (request) => {
      const leaseId = request.params.lease_id;
      const { lease, worker } = await ownLease(request, leaseId);
      const job = await store.get(lease.jobId);
      if (!job || job.status !== 'running' || job.lease?.id !== lease.leaseId) throw leaseLost(leaseId);
      const now = Date.now();
      const lines = request.body.lines.map((line) => ({
        at: now,
        attempt: job.attempt,
        level: line.level,
        message: keptLineText(line.message),
      }));
      await store.appendLogs([{ jobId: job.id, lines }]);
      if (worker) await recordCall(ops, worker.id, {}, request.log);
      return { lease_id: leaseId, lines: lines.length };
    },
  });

  // `::` is a literal colon in a fastify path (one `:` would start a parameter).
  app.post('/v1/leases::complete', {
    schema: {
      operationId: 'completeLeases',
      summary: 'Complete or fail many attempts',
      description: `Settles up to ${BATCH_MAX} leases in one call (one store call however many): each item answers \`ok\` or \`lost\`, in order.`,
      tags: ['workers'],
      security,
      body: batchBody,
      response: { 200: batchAnswer, ...problemResponses(400, 401, 403, 415, 422, 503) },
    },
    handler: async (request) => {
      const key = workerKeyOf(request);
      const now = Date.now();
      const items = request.body.items.map((item) => ({ item, ...parseLeaseId(item.lease_id)! }));
      const workers = new Map<string, WorkerView | 'foreign' | undefined>();
      await Promise.all(
        [...new Set(items.map((each) => each.workerId))].map(async (id) =>
          workers.set(id, await remoteWorker(ops, id, key.name, now)),
        ),
      );
      // A lease of another key's worker is answered lost: this key holds nothing there.
      const requests: (SettleRequest | null)[] = items.map(({ item, lease, workerId }) => {
        const worker = workers.get(workerId);
        if (worker === 'foreign') return null;
        const settlement: Settlement =
          'result' in item
            ? { kind: 'complete', result: item.result }
            : {
                kind: 'fail',
                error: jobErrorOf(item.error, item.retryable),
                ...(item.retry_after_s === undefined ? {} : { retryAfterMs: item.retry_after_s * 1000 }),
              };
        return { leaseId: item.lease_id, lease, workerId, workerName: worker?.name ?? workerId, settlement };
      });
      const settled = await settleLeases(
        context,
        requests.filter((each): each is SettleRequest => each !== null),
        now,
      );
      let next = 0;
      const answers = requests.map((each, i) => ({
        lease_id: items[i]!.item.lease_id,
        status: each === null ? ('lost' as const) : settled[next++]!.status,
      }));
      for (const [id, worker] of workers) {
        if (worker === undefined || worker === 'foreign') continue;
        const done = new Set(items.filter((each) => each.workerId === id).map((each) => each.item.lease_id));
        const lost = answers.filter((answer) => done.has(answer.lease_id) && answer.status === 'lost').length;
        await recordCall(ops, worker.id, { remove: [...done], lost }, request.log);
      }
      return { items: answers };
    },
  });

  /** The lease a path names and its worker's record (undefined when the record is gone); 404 for what is not this key's lease. */
  async function ownLease(request: FastifyRequest, leaseId: string) {
    const parsed = parseLeaseId(leaseId);
    const worker = parsed && (await remoteWorker(ops, parsed.workerId, workerKeyOf(request).name, Date.now()));
    if (!parsed || worker === 'foreign')
      throw new HttpProblem('lease-not-found', `No lease ${leaseId} was handed out to a worker of this worker key.`);
    return { lease: parsed.lease, workerId: parsed.workerId, worker };
  }

  async function settleOne(request: FastifyRequest, leaseId: string, settlement: Settlement) {
    const { lease, workerId, worker } = await ownLease(request, leaseId);
    const now = Date.now();
    const [settled] = await settleLeases(
      context,
      [{ leaseId, lease, workerId, workerName: worker?.name ?? workerId, settlement }],
      now,
    );
    if (worker)
      await recordCall(ops, worker.id, { remove: [leaseId], lost: settled!.status === 'lost' ? 1 : 0 }, request.log);
    if (settled!.status === 'lost') throw leaseLost(leaseId);
    return { lease_id: leaseId, status: 'ok' as const, job_status: settled!.jobStatus };
  }
};
