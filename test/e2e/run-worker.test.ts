import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  runWorker,
  WorkerProtocolError,
  type RemoteJob,
  type RemoteJobContext,
  type RemoteWorkerHandle,
  type RunWorkerOptions,
} from '../../src/client/jobs-client.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  Api,
  assertBuilt,
  dumpServiceOutput,
  killAllServices,
  randomPrefix,
  startService,
  type JobView,
  type ServiceProcess,
} from './helpers.js';

/*
 * The TypeScript client's runWorker against two real service processes on one Redis: 1,000 jobs through
 * several workers (pointed at both instances), none running twice at once, all succeeding; cancel and lease
 * loss reaching ctx.signal; an operator's drain honoured without a claim loop; refusals surfacing in `done`.
 * (The protocol's own auth and scope rules are covered by test/routes/remote-workers.test.ts.)
 */

const WORKER_KEY = 'ts-worker-key-0123456789abcdef';
const SCOPED_KEY = 'ts-scoped-key-0123456789abcdef';
const API_KEY = 'ts-api-key-0123456789abcdef';
const ADMIN_KEY = 'ts-admin-key-0123456789abcdef';
const asClient = { authorization: `Bearer ${API_KEY}` };
const asAdmin = { authorization: `Bearer ${ADMIN_KEY}` };

let services: ServiceProcess[];
let apis: Api[];
const workers: RemoteWorkerHandle[] = [];

function startWorker(options: Omit<RunWorkerOptions, 'workerKey'> & { workerKey?: string }): RemoteWorkerHandle {
  const worker = runWorker({ workerKey: WORKER_KEY, ...options });
  workers.push(worker);
  return worker;
}

async function declare(type: string, settings: Record<string, unknown> = {}): Promise<void> {
  const answer = await apis[0]!.request('PUT', `/admin/job-types/${type}`, {
    headers: asAdmin,
    body: { input_schema: { type: 'object' }, ...settings },
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
}

async function submit(api: Api, type: string, input: unknown): Promise<JobView> {
  const answer = await api.request<JobView>('POST', '/v1/jobs', { body: { type, input }, headers: asClient });
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return answer.body;
}

const getJob = async (api: Api, id: string): Promise<JobView> =>
  (await api.request<JobView>('GET', `/v1/jobs/${id}`, { headers: asClient })).body;

beforeAll(async () => {
  assertBuilt();
  const env = {
    REDIS_URL: inject('redisUrl'),
    REDIS_REQUIRED: 'true',
    REDIS_KEY_PREFIX: randomPrefix('runworker'),
    WORKER_CONCURRENCY: '0',
    WORKER_KEYS: `${WORKER_KEY}:ts-fleet,${SCOPED_KEY}:scoped:fenced`,
    API_KEYS: `${API_KEY}:acme`,
    ADMIN_KEYS: `${ADMIN_KEY}:admin`,
    LOG_LEVEL: 'warn',
  };
  services = await Promise.all([startService(env), startService(env)]);
  apis = services.map((service) => Api.of(service));
});

beforeEach((context) => {
  context.onTestFailed(() => console.error(dumpServiceOutput(services)));
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await killAllServices();
});

describe('runWorker against two service instances on one Redis', () => {
  it(
    'runs 1,000 jobs through three workers on both instances: each job runs once at a time (fenced) and all succeed',
    { timeout: 60_000 },
    async () => {
      await declare('fenced');
      const JOBS = 1000;
      const intervals: { jobId: string; worker: string; start: number; end: number }[] = [];
      const running = new Map<string, string>();
      const overlaps: string[] = [];
      const handler = (name: string) => async (job: RemoteJob, ctx: RemoteJobContext) => {
        const start = performance.now();
        const other = running.get(job.id);
        if (other !== undefined) overlaps.push(`${job.id} on ${name} while on ${other}`);
        running.set(job.id, name);
        try {
          const { n } = job.input as { n: number };
          if (n % 100 === 0) {
            ctx.progress(50, { step: 'half' });
            ctx.log.info(`job ${n} on ${name}`);
          }
          // A few ms, some jobs longer: claims, heartbeats and batched completions interleave.
          await new Promise((resolve) => setTimeout(resolve, n % 7 === 0 ? 20 : n % 3));
          return { n, by: name, attempt: ctx.attempt };
        } finally {
          running.delete(job.id);
          intervals.push({ jobId: job.id, worker: name, start, end: performance.now() });
        }
      };
      const pool = ['w0', 'w1', 'w2'].map((name, i) =>
        startWorker({
          baseUrl: services[i % 2]!.baseUrl,
          name,
          types: ['fenced'],
          slots: 10,
          handle: handler(name),
          waitS: 2,
        }),
      );
      await waitFor(() => pool.every((worker) => worker.workerId !== undefined), { what: 'the workers to register' });

      // Submitted through both instances, 25 at a time.
      const ids: string[] = [];
      for (let start = 0; start < JOBS; start += 25) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(25, JOBS - start) }, (_, k) =>
            submit(apis[(start + k) % 2]!, 'fenced', { n: start + k }),
          ),
        );
        ids.push(...batch.map((job) => job.id));
      }
      await waitFor(() => pool.reduce((sum, worker) => sum + worker.counts.completed, 0) >= JOBS, {
        timeoutMs: 45_000,
        intervalMs: 50,
        what: 'every job to complete',
      });

      expect(overlaps).toEqual([]);
      const byJob = new Map<string, typeof intervals>();
      for (const interval of intervals) byJob.set(interval.jobId, [...(byJob.get(interval.jobId) ?? []), interval]);
      for (const runs of byJob.values()) {
        runs.sort((a, b) => a.start - b.start);
        for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
      }
      expect(new Set(byJob.keys())).toEqual(new Set(ids));
      // Each worker, on either instance, did part of the work; nothing was dropped, failed or released.
      for (const worker of pool) expect(worker.counts.completed).toBeGreaterThan(0);
      expect(
        pool
          .map((worker) => worker.counts)
          .reduce((sum, counts) => sum + counts.failed + counts.dropped + counts.released, 0),
      ).toBe(0);

      const views = await Promise.all(ids.map((id, i) => getJob(apis[i % 2]!, id)));
      const notDone = views.filter((view) => view.status !== 'succeeded');
      expect(notDone.map((view) => [view.id, view.status])).toEqual([]);
      views.forEach((view, i) => {
        expect(view.result).toMatchObject({ n: i, attempt: view.attempt });
        // A job that ran more than once did so after a lost lease, one attempt each.
        expect(byJob.get(view.id)!.length).toBe(view.attempt);
      });

      await Promise.all(pool.map((worker) => worker.stop()));
    },
  );

  it(
    'cancel aborts ctx.signal (reason canceled) and the job ends canceled; a timed-out attempt aborts it with lease-lost',
    { timeout: 30_000 },
    async () => {
      await declare('cancelable');
      await declare('timed', { timeout_s: 1, max_attempts: 1 });
      const reasons = new Map<string, unknown>();
      const started = new Set<string>();
      const warnings: string[] = [];
      const worker = startWorker({
        baseUrl: services[1]!.baseUrl,
        name: 'aborts',
        types: ['cancelable', 'timed'],
        slots: 2,
        heartbeatS: 0.2,
        logger: {
          info: () => undefined,
          warn: (message) => warnings.push(message),
          error: (message) => warnings.push(`error: ${message}`),
        },
        handle: (job, ctx) =>
          new Promise((_, reject) => {
            started.add(job.id);
            ctx.progress(10, { step: 'waiting' });
            ctx.signal.addEventListener('abort', () => {
              reasons.set(job.id, ctx.signal.reason);
              reject(new Error('stopped'));
            });
          }),
      });
      // On instance 0, worked through instance 1.
      const canceled = await submit(apis[0]!, 'cancelable', {});
      await waitFor(() => started.has(canceled.id), { what: 'the job to start' });
      expect((await apis[0]!.request('POST', `/v1/jobs/${canceled.id}/cancel`, { headers: asClient })).status).toBe(
        202,
      );
      await waitFor(async () => (await getJob(apis[0]!, canceled.id)).status === 'canceled', {
        what: 'the job to end canceled',
      });
      expect(reasons.get(canceled.id)).toBe('canceled');

      // The service fails the attempt at its timeout; the worker hears `lost` and drops the outcome.
      const timed = await submit(apis[0]!, 'timed', {});
      await waitFor(() => reasons.has(timed.id), { what: 'ctx.signal to abort on the lost lease' });
      expect(reasons.get(timed.id)).toBe('lease-lost');
      expect(await getJob(apis[0]!, timed.id)).toMatchObject({ status: 'failed', error: { code: 'timeout' } });
      await waitFor(() => worker.counts.dropped === 1, { what: 'the outcome to be dropped' });
      expect(warnings).toEqual(['lease lost']);
      expect(worker.counts).toMatchObject({ claimed: 2, released: 1, completed: 0, failed: 0 });
      await worker.stop();
    },
  );

  it(
    'a drained worker claims nothing (no claim loop) until resumed; stop() deregisters it',
    { timeout: 30_000 },
    async () => {
      await declare('drainable');
      const calls: string[] = [];
      const answers: number[] = [];
      const countingFetch: typeof fetch = async (input, init) => {
        calls.push(`${init?.method ?? 'GET'} ${new URL(input instanceof Request ? input.url : input).pathname}`);
        const response = await fetch(input, init);
        answers.push(response.status);
        return response;
      };
      const done: string[] = [];
      const worker = startWorker({
        baseUrl: services[0]!.baseUrl,
        name: 'drained',
        types: ['drainable'],
        slots: 2,
        heartbeatS: 0.2,
        waitS: 5,
        fetch: countingFetch,
        handle: async (job) => {
          done.push(job.id);
          return { ok: true };
        },
      });
      await waitFor(() => worker.workerId, { what: 'the worker to register' });
      const id = worker.workerId!;
      const heartbeats = () => calls.filter((call) => call.endsWith('/heartbeat')).length;
      const claims = () => calls.filter((call) => call.endsWith('/leases')).length;
      expect((await apis[1]!.request('POST', `/admin/workers/${id}/drain`, { headers: asAdmin })).status).toBe(200);
      // Its held long-poll ends (the drain wakes it) and a heartbeat tells it to drain.
      const beatsAtDrain = heartbeats();
      await waitFor(() => heartbeats() >= beatsAtDrain + 2, { what: 'two heartbeats after the drain' });
      const job = await submit(apis[1]!, 'drainable', {});
      const claimsBefore = claims();
      const beatsBefore = heartbeats();
      await waitFor(() => heartbeats() >= beatsBefore + 5, { what: 'five more heartbeats while drained' });
      expect(claims() - claimsBefore).toBeLessThanOrEqual(1);
      expect(done).toEqual([]);
      expect((await getJob(apis[1]!, job.id)).status).toBe('queued');

      expect((await apis[1]!.request('POST', `/admin/workers/${id}/resume`, { headers: asAdmin })).status).toBe(200);
      await waitFor(async () => (await getJob(apis[1]!, job.id)).status === 'succeeded', {
        what: 'the job to run after the resume',
      });
      expect(done).toEqual([job.id]);

      await worker.stop();
      // Its last call: deregistered (its held long-poll was ended first).
      expect(calls.at(-1)).toBe(`DELETE /v1/workers/${id}`);
      expect(answers.at(-1)).toBe(204);
    },
  );

  it("a refusal ends `done` with the problem instead of retrying: an API key, a type outside the key's scope", async () => {
    await declare('elsewhere');
    const handle = async () => null;
    const asApiKey = runWorker({
      baseUrl: services[0]!.baseUrl,
      workerKey: API_KEY,
      types: ['fenced'],
      slots: 1,
      handle,
    });
    await expect(asApiKey.done).rejects.toMatchObject({ status: 403, code: 'not-a-worker-key' });
    const outOfScope = runWorker({
      baseUrl: services[1]!.baseUrl,
      workerKey: SCOPED_KEY,
      types: ['fenced', 'elsewhere'],
      slots: 1,
      handle,
    });
    const refusal: unknown = await outOfScope.done.catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(WorkerProtocolError);
    expect(refusal).toMatchObject({ status: 403, code: 'type-not-allowed' });
  });
});
