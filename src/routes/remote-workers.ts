import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { MAX_WAIT_S, preferredWaitS } from '../http/prefer.js';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import { assertTypeAllowed, workerKeyOf, type WorkerKey } from '../http/worker-auth.js';
import type { JobRecord } from '../jobs/job.js';
import type { WorkerView } from '../ops/ops-store.js';
import type { HeldLease } from '../store/job-store.js';
import { claimLeases } from '../remote/claim-leases.js';
import { releaseLeases } from '../remote/settle-leases.js';
import { leaseIdOf, newWorkerId, parseLeaseId } from '../remote/lease-ids.js';
import { defaultTimeoutS, leaseSOf, type RemoteContext } from '../remote/remote-context.js';
import { leaseFactsOf } from '../remote/remote-timeouts.js';
import { heldLease, heldLeaseIds, newRemoteRecord, recordCall, remoteWorker } from '../remote/worker-records.js';
import { problemAnswer, problemResponses, storedJson, workerSecurity as security } from './schemas.js';

/**
 * Remote workers (the pull-worker protocol, part one): register, claim leases (long-poll), heartbeat,
 * deregister. Registered in the worker scope (src/app.ts), whose guard (src/http/worker-auth.ts) runs first;
 * the writes on leases are in remote-leases.ts.
 */
export interface RemoteWorkerRoutesOptions {
  context: RemoteContext;
}

const workerParams = z.object({ worker_id: z.string().min(1).max(64) });

const registerBody = z
  .object({
    name: z.string().min(1).max(64).describe('Your name for this worker process (shown to operators)'),
    types: z
      .array(z.string().min(1).max(64))
      .min(1)
      .max(50)
      .describe("Declared job types it runs (PUT /admin/job-types/{type}); within the worker key's types"),
    slots: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .describe('Jobs it runs at once: a claim never leases more than its free slots'),
    labels: z
      .record(z.string().min(1).max(64), z.string().max(256))
      .refine((value) => Object.keys(value).length <= 32, 'at most 32 labels')
      .optional()
      .describe('Your own labels (host, region, version …), shown to operators; `version` is shown as its version'),
  })
  .strict()
  .meta({ id: 'RegisterWorker' });

const registrationSchema = z
  .object({
    worker_id: z.string().describe('Name it in every call for this worker'),
    heartbeat_s: z.number().int().describe('Call heartbeat at least this often (a third of lease_s)'),
    lease_s: z
      .number()
      .int()
      .describe('A lease lapses after this long without a heartbeat (the shortest lease_s of its types)'),
    max_wait_s: z.number().int().describe('Longest `Prefer: wait` a claim honours'),
    max_claim: z.number().int().describe('Most leases one claim asks for (`max`)'),
  })
  .meta({ id: 'WorkerRegistration' });

const claimBody = z
  .object({
    max: z.number().int().min(1).describe('Most jobs to lease: 1 to max_claim; never more than the free slots'),
  })
  .strict()
  .meta({ id: 'ClaimLeases' });

const leaseSchema = z
  .object({
    lease_id: z.string().describe('Names the lease in every write (`<job id>.<lease>`): it fences them'),
    lease_until: timestamp.describe('The lease lapses then unless a heartbeat renews it'),
    job: z.object({
      id: z.string(),
      type: z.string(),
      input: storedJson,
      attempt: z.number().int().describe("This attempt's number, from 1"),
      max_attempts: z.number().int(),
      timeout_at: timestamp.nullable().describe('The service fails the attempt with `timeout` then (null: no timeout)'),
      metadata: z.record(z.string(), z.string()),
      priority: z.number().int(),
    }),
  })
  .meta({ id: 'Lease' });
const leasesSchema = z.object({ leases: z.array(leaseSchema) }).meta({ id: 'Leases' });

const heartbeatBody = z
  .object({
    leases: z
      .array(
        z
          .object({
            lease_id: z.string().min(1).max(200),
            progress: z
              .object({
                percent: z
                  .number()
                  .min(0)
                  .max(100)
                  .nullable()
                  .describe('Never decreases within an attempt; capped at 99 until it succeeds'),
                step: z.string().max(256).optional(),
                message: z.string().max(2000).optional(),
              })
              .strict()
              .optional(),
          })
          .strict(),
      )
      .max(1000)
      .describe('Every lease it holds (one call renews them all); none when idle'),
  })
  .strict()
  .meta({ id: 'Heartbeat' });

const heartbeatAnswer = z
  .object({
    worker: z
      .enum(['active', 'drain', 'stop'])
      .describe(
        '`drain`: an operator drained it: finish what you hold, claim nothing; `stop`: the service shuts down: finish or release what you hold, then stop',
      ),
    leases: z.array(
      z.object({
        lease_id: z.string(),
        status: z
          .enum(['ok', 'cancel_requested', 'lost'])
          .describe(
            '`cancel_requested`: stop the job, then release or fail it; `lost`: drop it, every write would answer 409',
          ),
        lease_until: timestamp.nullable().describe('Null when lost'),
      }),
    ),
  })
  .meta({ id: 'HeartbeatAnswer' });

const notFound = problemAnswer(
  'No remote worker with this id is registered with this key (worker-not-found): register again',
);

/** Aborts when the client goes away (the response's `close`: a request emits its own as soon as its body was read). */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => controller.abort());
  return controller.signal;
}

export const remoteWorkerRoutes: FastifyPluginAsync<RemoteWorkerRoutesOptions> = async (fastify, { context }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { store, ops, settings, timeouts } = context;

  app.post('/v1/workers', {
    schema: {
      operationId: 'registerWorker',
      summary: 'Register a remote worker',
      description:
        'A worker process announces itself and the declared job types it runs; the answer says how often to call and how much to ask for.',
      tags: ['workers'],
      security,
      body: registerBody,
      response: { 201: registrationSchema, ...problemResponses(400, 401, 403, 415, 422, 503) },
    },
    handler: async (request, reply) => {
      const key = workerKeyOf(request);
      const { name, slots, labels = {} } = request.body;
      request.body.types.forEach((type, i) => assertTypeAllowed(key, type, `/types/${i}`));
      // A type declared through another instance a moment ago: this one reads the declarations again before refusing.
      await context.declaredTypes?.knowsAll(request.body.types);
      const undeclared = request.body.types.flatMap((type, i) =>
        context.declaredTypes?.get(type)
          ? []
          : [{ pointer: `/types/${i}`, detail: `"${type}" is not a declared job type` }],
      );
      if (undeclared.length > 0) {
        throw new HttpProblem(
          'validation-failed',
          'Remote workers run declared job types only (PUT /admin/job-types/{type}).',
          { errors: undeclared },
        );
      }
      const types = [...new Set(request.body.types)];
      const leaseS = leaseSOf(context, types);
      const heartbeatS = Math.max(1, Math.floor(leaseS / 3));
      const id = newWorkerId();
      const version = labels.version ?? '';
      await ops.beat(
        newRemoteRecord({
          id,
          name,
          labels,
          keyName: key.name,
          types,
          slots,
          leaseS,
          heartbeatS,
          host: request.ip,
          version,
          now: Date.now(),
        }),
      );
      request.log.info({ workerId: id, workerName: name, keyName: key.name, types, slots }, 'remote worker registered');
      return reply.code(201).send({
        worker_id: id,
        heartbeat_s: heartbeatS,
        lease_s: leaseS,
        max_wait_s: settings.maxWaitS,
        max_claim: settings.maxClaim,
      });
    },
  });

  app.post('/v1/workers/:worker_id/leases', {
    schema: {
      operationId: 'claimLeases',
      summary: 'Claim jobs',
      description:
        'Leases up to `max` ready jobs of its types (never more than its free slots), as in-process workers claim them: priorities, delays, fleet-wide limits, pauses and drains apply. With `Prefer: wait=N` it answers as soon as work arrives, else with no leases when N seconds pass.',
      tags: ['workers'],
      security,
      params: workerParams,
      body: claimBody,
      headers: z
        .object({
          prefer: z
            .string()
            .optional()
            .describe(
              `\`wait=N\` (N ≤ max_wait_s, at most ${MAX_WAIT_S}): wait up to N seconds for work when none is ready`,
            ),
        })
        .loose(),
      response: { 200: leasesSchema, ...problemResponses(400, 401, 403, 415, 422, 503), 404: notFound },
    },
    handler: async (request, reply) => {
      const key = workerKeyOf(request);
      const worker = await ownWorker(request.params.worker_id, key);
      // The key's types may have narrowed since the worker registered.
      for (const type of worker.types) assertTypeAllowed(key, type);
      if (request.body.max > settings.maxClaim) {
        throw new HttpProblem('validation-failed', `A claim asks for at most max_claim (${settings.maxClaim}) jobs.`, {
          errors: [{ pointer: '/max', detail: `at most ${settings.maxClaim}` }],
        });
      }
      const asked = preferredWaitS(request.headers.prefer);
      const waitS = asked === undefined ? 0 : Math.min(asked, settings.maxWaitS);
      if (asked !== undefined) reply.header('preference-applied', `wait=${waitS}`);
      const claimed = await claimLeases(context, worker, request.body.max, waitS * 1000, abortOnClose(reply));
      const leases = claimed.jobs.map((job) => renderLease(job));
      await recordCall(
        ops,
        claimed.worker.id,
        { add: leases.map((lease) => ({ leaseId: lease.lease_id, jobId: lease.job.id })) },
        request.log,
      );
      if (leases.length > 0)
        request.log.debug(
          { workerId: worker.id, jobIds: claimed.jobs.map((job) => job.id) },
          'remote worker claimed jobs',
        );
      return { leases };
    },
  });

  app.post('/v1/workers/:worker_id/heartbeat', {
    schema: {
      operationId: 'workerHeartbeat',
      summary: 'Renew leases and report progress',
      description:
        'Renews every lease listed in one call and records progress (same rules as in-process progress). Answers, per lease, whether it still holds its job or the job should stop, and whether the worker should go on, drain or stop.',
      tags: ['workers'],
      security,
      params: workerParams,
      body: heartbeatBody,
      response: { 200: heartbeatAnswer, ...problemResponses(400, 401, 403, 415, 422, 503), 404: notFound },
    },
    handler: async (request) => {
      const key = workerKeyOf(request);
      const now = Date.now();
      const worker = await ownWorker(request.params.worker_id, key);
      const leaseMs = (worker.lease_s ?? settings.leaseS) * 1000;
      // A lease id that is not one, or not this worker's, is answered lost: it holds nothing the worker may write.
      const listed = request.body.leases.map((entry) => {
        const parsed = parseLeaseId(entry.lease_id);
        return { entry, lease: parsed?.workerId === worker.id ? parsed.lease : undefined };
      });
      const held = listed.filter((each): each is typeof each & { lease: HeldLease } => each.lease !== undefined);
      const renewal =
        held.length === 0
          ? { lost: [], cancelRequested: [] }
          : await store.renewLeases(
              held.map((each) => each.lease),
              leaseMs,
              now,
            );
      const lostJobs = new Set(renewal.lost);
      const canceling = new Set(renewal.cancelRequested);
      const status = new Map<string, 'ok' | 'cancel_requested' | 'lost'>(
        listed.map(({ entry, lease }) => [
          entry.lease_id,
          !lease || lostJobs.has(lease.jobId) ? 'lost' : canceling.has(lease.jobId) ? 'cancel_requested' : 'ok',
        ]),
      );
      const live = held.filter(({ entry }) => status.get(entry.lease_id) !== 'lost');
      await Promise.all(
        live.map(async ({ entry, lease }) => {
          if (!entry.progress) return;
          const { percent, step, message } = entry.progress;
          if (!(await store.reportProgress(lease, { percent, step: step ?? null, message: message ?? null }, now)))
            status.set(entry.lease_id, 'lost');
        }),
      );
      await armTimeouts(
        live.filter(({ entry }) => status.get(entry.lease_id) !== 'lost'),
        now + leaseMs,
      );
      const kept = listed
        .filter(({ entry }) => status.get(entry.lease_id) !== 'lost')
        .map(({ entry }) => entry.lease_id);
      const lost = held.length - live.length + live.filter(({ entry }) => status.get(entry.lease_id) === 'lost').length;
      for (const { entry } of listed) if (status.get(entry.lease_id) === 'lost') timeouts.forget(entry.lease_id);
      await recordCall(ops, worker.id, { replace: kept.map(heldLease), lost }, request.log);
      return {
        worker: context.isShuttingDown()
          ? ('stop' as const)
          : worker.draining
            ? ('drain' as const)
            : ('active' as const),
        leases: listed.map(({ entry }) => {
          const state = status.get(entry.lease_id)!;
          return {
            lease_id: entry.lease_id,
            status: state,
            lease_until: state === 'lost' ? null : rfc3339(now + leaseMs),
          };
        }),
      };
    },
  });

  app.delete('/v1/workers/:worker_id', {
    schema: {
      operationId: 'deregisterWorker',
      summary: 'Deregister a remote worker',
      description:
        'A worker shutting down: every lease it holds goes back to the queue at once (the attempts are not counted), and it leaves the registry.',
      tags: ['workers'],
      security,
      params: workerParams,
      response: { 204: z.undefined().describe('Deregistered'), ...problemResponses(401, 403, 503), 404: notFound },
    },
    handler: async (request, reply) => {
      const worker = await ownWorker(request.params.worker_id, workerKeyOf(request));
      // A lease's type is known when this instance handed it out or heard of it; else it is one of the worker's.
      const held = heldLeaseIds(worker).flatMap((leaseId) => {
        const parsed = parseLeaseId(leaseId);
        const type = timeouts.facts(leaseId)?.type;
        return parsed ? [{ leaseId, lease: parsed.lease, types: type === undefined ? worker.types : [type] }] : [];
      });
      await releaseLeases(context, held);
      await ops.removeWorker(worker.id);
      request.log.info({ workerId: worker.id, released: held.length }, 'remote worker deregistered');
      return reply.code(204).send();
    },
  });

  /** The caller's worker: 404 when unknown, or registered with another key. */
  async function ownWorker(id: string, key: WorkerKey): Promise<WorkerView> {
    const worker = await remoteWorker(ops, id, key.name, Date.now());
    if (worker === undefined || worker === 'foreign') {
      throw new HttpProblem(
        'worker-not-found',
        `No remote worker ${id} is registered with this worker key (it deregistered, or was forgotten an hour after its last call): register again.`,
      );
    }
    return worker;
  }

  /** Arms the timeout of each lease handed out; remembers what it needs to fail the attempt. */
  function renderLease(job: JobRecord) {
    const lease = { jobId: job.id, leaseId: job.lease!.id };
    const facts = leaseFactsOf(job, defaultTimeoutS(context, job.type));
    const leaseId = leaseIdOf(lease);
    timeouts.track(leaseId, lease, facts, job.lease!.until);
    return {
      lease_id: leaseId,
      lease_until: rfc3339(job.lease!.until),
      job: {
        id: job.id,
        type: job.type,
        input: job.input,
        attempt: job.attempt,
        max_attempts: job.maxAttempts,
        timeout_at: facts.timeoutAt === null ? null : rfc3339(facts.timeoutAt),
        metadata: job.metadata,
        priority: job.priority,
      },
    };
  }

  /** Known leases are renewed in the timeouts; one this instance has not heard of is read once, to arm its timeout. */
  async function armTimeouts(
    leases: { entry: { lease_id: string }; lease: HeldLease }[],
    until: number,
  ): Promise<void> {
    const unknown = leases.filter(({ entry }) => !timeouts.renewed(entry.lease_id, until));
    await Promise.all(
      unknown.map(async ({ entry, lease }) => {
        const job = await store.get(lease.jobId);
        if (job?.status === 'running' && job.lease?.id === lease.leaseId)
          timeouts.track(entry.lease_id, lease, leaseFactsOf(job, defaultTimeoutS(context, job.type)), until);
      }),
    );
  }
};
