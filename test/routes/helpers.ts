import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { expect } from 'vitest';
import { z } from 'zod';
import { buildApp, type AppDeps } from '../../src/app.js';
import { defineHandler, type Handler } from '../../src/handlers/handler.js';
import { builtInHandlers, HandlerRegistry } from '../../src/handlers/registry.js';
import { jobSchema, problemSchema } from '../../src/routes/schemas.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import type { OpsStore } from '../../src/ops/ops-store.js';
import { WorkerPool } from '../../src/worker/worker-pool.js';
import { waitFor } from '../helpers/wait-for.js';

export type Job = z.infer<typeof jobSchema>;
export type Problem = z.infer<typeof problemSchema>;

export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Returns a plain string: checks that a JSON string result is served as a JSON string. */
export const textHandler = defineHandler({
  type: 'text',
  input: z.object({ text: z.string() }).strict(),
  async run(input) {
    return input.text;
  },
});

/** Runs until aborted and records why: lets a test see that a cancel or delete reached the handler. */
export function blockingHandler(): { handler: Handler; started: Set<string>; aborted: Map<string, unknown> } {
  const started = new Set<string>();
  const aborted = new Map<string, unknown>();
  const handler = defineHandler({
    type: 'block',
    input: z.object({}).strict(),
    async run(_input, ctx) {
      started.add(ctx.jobId);
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener(
          'abort',
          () => {
            aborted.set(ctx.jobId, ctx.signal.reason);
            resolve();
          },
          { once: true },
        );
      });
      throw new Error('aborted');
    },
  });
  return { handler, started, aborted };
}

export interface Harness {
  app: FastifyInstance;
  store: JobStore;
  ops: OpsStore;
  pool: WorkerPool | null;
  close(): Promise<void>;
}

export interface HarnessOptions extends Partial<Omit<AppDeps, 'handlers' | 'store' | 'pool' | 'ops'>> {
  /** Start a real worker pool (default false: jobs stay queued). */
  workers?: boolean;
  concurrency?: number;
  extraHandlers?: Handler[];
  store?: JobStore;
  /** Operator state (default: a new MemoryOpsStore), closed with the harness. */
  ops?: OpsStore;
}

/** buildApp over a MemoryJobStore (or the given store), the built-in handlers plus extras, and optionally a running pool. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const {
    workers = false,
    concurrency = 4,
    extraHandlers = [],
    store = new MemoryJobStore({ jobTtlMs: 60_000 }),
    ops = new MemoryOpsStore(),
    ...deps
  } = options;
  const handlers = new HandlerRegistry([...builtInHandlers, ...extraHandlers]);
  const pool = workers
    ? new WorkerPool({
        store,
        handlers,
        log: pino({ level: 'silent' }),
        concurrency,
        leaseMs: 5_000,
        backoff: { baseMs: 10, maxMs: 20 },
        progressIntervalMs: 10,
      })
    : null;
  const app = await buildApp({ ...deps, store, ops, handlers, pool });
  await app.ready();
  await pool?.start();
  let closed = false;
  return {
    app,
    store,
    ops,
    pool,
    async close() {
      if (closed) return;
      closed = true;
      await pool?.drain(1000);
      await app.close();
      await ops.close();
      await store.close();
    },
  };
}

/** Waits until the clock has moved past `ms` (so the next job gets a later ULID time part). */
export async function clockPast(ms: number): Promise<void> {
  await waitFor(() => Date.now() > ms, { intervalMs: 1, what: 'the clock to tick' });
}

export function parseJob(response: LightMyRequestResponse): Job {
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  return jobSchema.parse(response.json());
}

/** Asserts a problem+json response with `status` and `code`, and returns the parsed problem. */
export function expectProblem(response: LightMyRequestResponse, status: number, code?: string): Problem {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = problemSchema.parse(response.json());
  expect(body.status).toBe(status);
  if (code !== undefined) {
    expect(body.code).toBe(code);
    expect(body.type).toBe(`/problems/${code}`);
  }
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}

export async function createJob(app: FastifyInstance, body: Record<string, unknown>): Promise<Job> {
  const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload: body });
  expect(response.statusCode, response.body).toBe(202);
  return parseJob(response);
}

export async function getJob(app: FastifyInstance, id: string): Promise<Job> {
  const response = await app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
  expect(response.statusCode, response.body).toBe(200);
  return parseJob(response);
}

/** Polls GET /v1/jobs/{id} until the job's status is one of `statuses`; the error shows the last status seen. */
export async function waitForStatus(app: FastifyInstance, id: string, ...statuses: Job['status'][]): Promise<Job> {
  let last: Job | undefined;
  try {
    return await waitFor(
      async () => {
        last = await getJob(app, id);
        return statuses.includes(last.status) ? last : undefined;
      },
      { what: `job ${id} to be ${statuses.join('|')}` },
    );
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last seen: ${JSON.stringify(last && { status: last.status, attempt: last.attempt, error: last.error })}`,
      {
        cause: error,
      },
    );
  }
}

/** Closes every harness opened through `open` (call `closeAll` in afterEach). */
export function harnessScope(): { open(options?: HarnessOptions): Promise<Harness>; closeAll(): Promise<void> } {
  const opened: Harness[] = [];
  return {
    async open(options) {
      const harness = await startHarness(options);
      opened.push(harness);
      return harness;
    },
    async closeAll() {
      for (const harness of opened.splice(0)) await harness.close();
    },
  };
}
