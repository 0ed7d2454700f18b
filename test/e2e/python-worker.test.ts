import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
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
 * The Python example worker (examples/workers/python/example_worker.py), started as a real `python3` process
 * against a real service (node dist/server.js) on Redis, over 127.0.0.1: results and progress steps, cancel
 * through the heartbeat, a SIGKILLed worker's job run again by another worker as attempt 2, and a late
 * complete of the dead worker answered 409 without changing the job.
 */

const WORKER_KEY = 'py-worker-key-0123456789abcdef';
const API_KEY = 'py-api-key-0123456789abcdef';
const ADMIN_KEY = 'py-admin-key-0123456789abcdef';
const exampleWorker = fileURLToPath(new URL('../../examples/workers/python/example_worker.py', import.meta.url));

/** A line the worker wrote to stderr: `ts=… level=… event=… key=value …`. */
type WorkerEvent = Record<string, string>;

function parseEvents(text: string): WorkerEvent[] {
  return text
    .split('\n')
    .filter((line) => line.includes('event='))
    .map((line) => {
      const fields: WorkerEvent = {};
      for (const match of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g))
        fields[match[1]!] = match[2]!.startsWith('"') ? (JSON.parse(match[2]!) as string) : match[2]!;
      return fields;
    });
}

interface PythonWorker {
  name: string;
  child: ChildProcess;
  pid: number;
  stderr(): string;
  events(): WorkerEvent[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const pythonWorkers = new Set<PythonWorker>();

/** Starts example_worker.py; resolves once it registered. */
async function startPythonWorker(
  service: ServiceProcess,
  name: string,
  env: Record<string, string> = {},
): Promise<PythonWorker> {
  const child = spawn('python3', [exampleWorker], {
    env: {
      PATH: process.env.PATH ?? '',
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      JOBS_URL: service.baseUrl,
      WORKER_KEY,
      WORKER_NAME: name,
      WORKER_SLOTS: '2',
      // More often than the service's 1 s (lease_s 5 / 3): progress steps show within a fraction of a step.
      WORKER_HEARTBEAT_S: '0.2',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const worker: PythonWorker = {
    name,
    child,
    pid: child.pid!,
    stderr: () => stderr,
    events: () => parseEvents(stderr),
    exited,
  };
  pythonWorkers.add(worker);
  await waitFor(() => worker.events().some((event) => event.event === 'registered') || child.exitCode !== null, {
    timeoutMs: 10_000,
    what: `python worker ${name} to register`,
  });
  if (child.exitCode !== null) throw new Error(`python worker ${name} exited (${child.exitCode}):\n${stderr}`);
  return worker;
}

let service: ServiceProcess;
let api: Api;
const asClient = { authorization: `Bearer ${API_KEY}` };

async function submit(input: Record<string, unknown>): Promise<JobView> {
  const answer = await api.request<JobView>('POST', '/v1/jobs', {
    body: { type: 'research', input },
    headers: asClient,
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return answer.body;
}

const getJob = async (id: string): Promise<JobView> => {
  const answer = await api.request<JobView>('GET', `/v1/jobs/${id}`, { headers: asClient });
  expect(answer.status).toBe(200);
  return answer.body;
};

const waitForJob = (
  id: string,
  what: string,
  predicate: (job: JobView) => boolean,
  timeoutMs = 15_000,
): Promise<JobView> =>
  waitFor(
    async () => {
      const job = await getJob(id);
      return predicate(job) ? job : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `job ${id} ${what}` },
  );

beforeAll(async () => {
  assertBuilt();
  service = await startService({
    REDIS_URL: inject('redisUrl'),
    REDIS_REQUIRED: 'true',
    REDIS_KEY_PREFIX: randomPrefix('pyworker'),
    WORKER_CONCURRENCY: '0',
    WORKER_KEYS: `${WORKER_KEY}:py-fleet`,
    API_KEYS: `${API_KEY}:acme`,
    ADMIN_KEYS: `${ADMIN_KEY}:admin`,
  });
  api = Api.of(service);
  const declared = await api.request('PUT', '/admin/job-types/research', {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
    body: {
      description: 'The Python example: research a topic step by step',
      input_schema: {
        type: 'object',
        required: ['topic'],
        properties: {
          topic: { type: 'string' },
          steps: {
            oneOf: [
              { type: 'integer', minimum: 1 },
              { type: 'array', items: { type: 'string' } },
            ],
          },
          step_ms: { type: 'integer', minimum: 0 },
        },
        additionalProperties: false,
      },
      // The shortest lease a type may have: a killed worker's job is back within 5 s.
      lease_s: 5,
    },
  });
  expect(declared.status, JSON.stringify(declared.body)).toBe(201);
});

beforeEach((context) => {
  context.onTestFailed(() => {
    console.error(dumpServiceOutput([service]));
    for (const worker of pythonWorkers)
      console.error(
        `--- python worker ${worker.name} (pid ${worker.pid}) ---\n${worker.stderr().split('\n').slice(-40).join('\n')}`,
      );
  });
});

afterAll(async () => {
  // Every child this file started, by its pid.
  await Promise.all(
    [...pythonWorkers].map(async (worker) => {
      if (worker.child.exitCode === null && worker.child.signalCode === null) process.kill(worker.pid, 'SIGKILL');
      await worker.exited;
    }),
  );
  await killAllServices();
});

describe('the Python example worker against a real service', () => {
  let first: PythonWorker;

  it(
    'runs submitted jobs: their results come back and their progress steps show while they run',
    { timeout: 30_000 },
    async () => {
      first = await startPythonWorker(service, 'py-first');
      const steps = ['search', 'read', 'compare', 'summarize'];
      const job = await submit({ topic: 'fencing tokens', steps, step_ms: 600 });
      const others = [
        await submit({ topic: 'leases', steps: 2, step_ms: 10 }),
        await submit({ topic: 'heartbeats', step_ms: 10 }),
      ];

      const seen: string[] = [];
      const done = await waitFor(
        async () => {
          const current = await getJob(job.id);
          const step = current.progress.step;
          if (current.status === 'running' && step && seen.at(-1) !== step) seen.push(step);
          return current.done ? current : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 40, what: `job ${job.id} to finish` },
      );
      expect(done).toMatchObject({
        status: 'succeeded',
        attempt: 1,
        result: {
          topic: 'fencing tokens',
          steps,
          attempt: 1,
          worker: 'py-first',
          pid: first.pid,
          notes: steps.map((step) => `${step}: done`),
        },
        progress: { percent: 100 },
      });
      // The steps showed as they happened, in order: the step changed while the job ran (each lasts three heartbeats).
      expect(seen.length, `steps seen: ${seen.join(', ')}`).toBeGreaterThanOrEqual(2);
      expect(steps.filter((step) => seen.includes(step))).toEqual(seen);

      for (const other of others) {
        expect(await waitForJob(other.id, 'to finish', (current) => current.done)).toMatchObject({
          status: 'succeeded',
          attempt: 1,
          result: { worker: 'py-first' },
        });
      }

      // A PermanentError fails the job at once, not retried, with its code and the traceback as detail.
      const bad = await submit({ topic: ' ' });
      const failed = await waitForJob(bad.id, 'to fail', (current) => current.done);
      expect(failed).toMatchObject({ status: 'failed', attempt: 1, error: { code: 'bad-input', retryable: false } });
      expect(failed.error!.detail).toContain('input.topic must be a non-empty string');
    },
  );

  it(
    'a cancel reaches the running job through the heartbeat: the worker stops it and releases it, the job ends canceled',
    { timeout: 30_000 },
    async () => {
      const job = await submit({ topic: 'a long one', steps: 100, step_ms: 200 });
      await waitForJob(
        job.id,
        'to report progress',
        (current) => current.status === 'running' && current.progress.step !== null,
      );
      const cancel = await api.request('POST', `/v1/jobs/${job.id}/cancel`, { headers: asClient });
      expect(cancel.status).toBe(202);
      const canceled = await waitForJob(job.id, 'to end canceled', (current) => current.done);
      expect(canceled).toMatchObject({ status: 'canceled', attempt: 1, result: null });
      // The worker heard it in a heartbeat and gave the job back itself (not the end of its 100 steps). It logs
      // `released` once the service answered, which may be just after the job reads as canceled.
      const events = await waitFor(
        () => {
          const own = first.events().filter((event) => event.job_id === job.id);
          return own.some((event) => event.event === 'released') && own;
        },
        { what: "the worker's `released` line for the canceled job" },
      );
      expect(events.map((event) => event.event)).toEqual(['claimed', 'started', 'cancel-requested', 'released']);
      expect(events.at(-1)).toMatchObject({ job_status: 'canceled' });
    },
  );

  it(
    "a SIGKILLed worker's job is claimed again after its lease by another worker and succeeds as attempt 2; the dead worker's late complete answers 409 and changes nothing",
    { timeout: 45_000 },
    async () => {
      const job = await submit({ topic: 'crash recovery', steps: 5, step_ms: 500 });
      await waitForJob(
        job.id,
        'to run on the first worker',
        (current) => current.status === 'running' && current.progress.step !== null,
      );
      const claimed = await waitFor(
        () => first.events().find((event) => event.event === 'claimed' && event.job_id === job.id),
        { what: "the first worker's `claimed` line" },
      );
      expect(claimed).toMatchObject({ attempt: '1' });
      const staleLease = claimed.lease_id!;

      process.kill(first.pid, 'SIGKILL');
      expect(await first.exited).toMatchObject({ signal: 'SIGKILL' });
      const second = await startPythonWorker(service, 'py-second');

      // Attempt 2 runs on the second worker once the first one's lease lapsed.
      const rerun = await waitForJob(
        job.id,
        'to run again as attempt 2',
        (current) => current.attempt === 2 && current.status === 'running',
        20_000,
      );
      expect(rerun.result).toBeNull();
      const lateComplete = (leaseId: string) =>
        api.request<{ code: string }>('POST', `/v1/leases/${leaseId}/complete`, {
          headers: { authorization: `Bearer ${WORKER_KEY}` },
          body: { result: { forged: true } },
        });
      const whileRunning = await lateComplete(staleLease);
      expect(whileRunning.status).toBe(409);
      expect(whileRunning.body.code).toBe('lease-lost');
      expect(await getJob(job.id)).toMatchObject({ status: 'running', attempt: 2, result: null });

      const done = await waitForJob(job.id, 'to succeed', (current) => current.done, 20_000);
      expect(done).toMatchObject({
        status: 'succeeded',
        attempt: 2,
        result: { topic: 'crash recovery', attempt: 2, worker: 'py-second', pid: second.pid },
      });
      expect(second.events().find((event) => event.event === 'claimed' && event.job_id === job.id)).toMatchObject({
        attempt: '2',
      });

      const afterwards = await lateComplete(staleLease);
      expect(afterwards.status).toBe(409);
      expect(afterwards.body.code).toBe('lease-lost');
      const unchanged = await getJob(job.id);
      const settled = (view: JobView) => ({
        status: view.status,
        attempt: view.attempt,
        result: view.result,
        error: view.error,
        version: view.version,
        progress: view.progress,
        completed_at: (view as { completed_at?: unknown }).completed_at,
      });
      expect(settled(unchanged)).toEqual(settled(done));

      // SIGTERM: the worker stops claiming, finishes, deregisters and exits 0.
      process.kill(second.pid, 'SIGTERM');
      expect(await second.exited).toEqual({ code: 0, signal: null });
      expect(second.events().map((event) => event.event)).toEqual(expect.arrayContaining(['deregistered', 'stopped']));
    },
  );
});
