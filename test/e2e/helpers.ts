import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { freePort } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * End-to-end helpers: the real server (`node dist/server.js`) as a child process, reached over HTTP on
 * 127.0.0.1 only. Every process started here is tracked so `killAllServices()` (afterEach) ends exactly
 * those, by their handle.
 */

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const serverEntry = fileURLToPath(new URL('../../dist/server.js', import.meta.url));

/** Throws a clear error when the build output is missing (`npm test` builds first; `npx vitest` alone does not). */
export function assertBuilt(): void {
  if (!existsSync(serverEntry)) {
    throw new Error(`${serverEntry} is missing: run npm run build first (npm test does it before vitest runs).`);
  }
}

/** A Redis key prefix no other test uses. */
export const randomPrefix = (label = 'e2e'): string => `${label}-${randomBytes(6).toString('hex')}`;

export interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  jobId?: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  readonly port: number;
  readonly baseUrl: string;
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** Settles once the process exited and its stdout/stderr are closed. */
  readonly exited: Promise<Exit>;
  readonly running: boolean;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr, for "the output mentions X" checks. */
  output(): string;
  /** stdout parsed as pino JSON lines (non-JSON lines are skipped). */
  logs(): LogLine[];
  /** Sends `signal` and waits (at most `timeoutMs`) for the exit. */
  kill(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** Waits for the exit without signalling. */
  waitForExit(timeoutMs: number): Promise<Exit>;
}

const live = new Set<ServiceProcess>();
const started: ServiceProcess[] = [];

export interface SpawnOptions {
  /** Port to listen on; a free one by default. */
  port?: number;
}

/**
 * Starts `node dist/server.js` with the test's environment on top of process.env (PORT, HOST and
 * LOG_LEVEL=info are always set; pass a key with '' to unset it: the service treats '' as unset).
 * Does not wait for readiness: see `startService`.
 */
export async function spawnService(env: Record<string, string>, options: SpawnOptions = {}): Promise<ServiceProcess> {
  assertBuilt();
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [serverEntry], {
    cwd: repoRoot,
    env: {
      ...process.env,
      // The caller's shell must not leak a Redis or an admin token into a test that did not ask for one.
      REDIS_URL: '',
      REDIS_REQUIRED: '',
      ADMIN_TOKEN: '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let done = false;
  const exited = new Promise<Exit>((resolve) => {
    child.once('close', (code, signal) => {
      done = true;
      live.delete(service);
      resolve({ code, signal });
    });
    child.once('error', () => {
      // spawn failure: 'close' still follows
    });
  });

  const waitForExit = async (timeoutMs: number): Promise<Exit> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`server pid ${child.pid} did not exit within ${timeoutMs} ms\n${tail(stdout + stderr)}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const service: ServiceProcess = {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    child,
    pid: child.pid,
    exited,
    get running() {
      return !done;
    },
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => stdout + stderr,
    logs: () => parseLogLines(stdout),
    async kill(signal = 'SIGKILL', timeoutMs = 10_000) {
      if (!done) child.kill(signal);
      return waitForExit(timeoutMs);
    },
    waitForExit,
  };
  live.add(service);
  started.push(service);
  return service;
}

/** Starts the service and waits until GET /health/live answers 200 (fails early, with its output, if it exits). */
export async function startService(
  env: Record<string, string>,
  options: SpawnOptions & { readyTimeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const service = await spawnService(env, options);
  const timeoutMs = options.readyTimeoutMs ?? 10_000;
  let outcome: 'live' | 'exited';
  try {
    outcome = await waitFor(
      async () => {
        if (!service.running) return 'exited';
        try {
          const response = await fetch(`${service.baseUrl}/health/live`, { signal: AbortSignal.timeout(1000) });
          await response.arrayBuffer();
          return response.status === 200 ? 'live' : undefined;
        } catch {
          return undefined; // not listening yet
        }
      },
      { timeoutMs, intervalMs: 50, what: `the server on port ${service.port} to be live` },
    );
  } catch {
    await service.kill('SIGKILL');
    throw new Error(`server was not live within ${timeoutMs} ms\n${tail(service.output())}`);
  }
  if (outcome === 'exited') {
    const exit = await service.exited;
    throw new Error(
      `server exited before it was live (code ${exit.code}, signal ${exit.signal})\n${tail(service.output())}`,
    );
  }
  return service;
}

/** SIGKILLs every service this module started that is still running (afterEach/afterAll). */
export async function killAllServices(): Promise<void> {
  await Promise.all(
    [...live].map(async (service) => {
      service.child.kill('SIGKILL');
      await service.exited;
    }),
  );
}

/** Output of the services started since the last call: printed when a test failed, to see why. */
export function takeStartedServices(): ServiceProcess[] {
  return started.splice(0, started.length);
}

/**
 * The hooks every e2e file uses: fail fast without a build, SIGKILL the test's servers after each test,
 * and print their output when a test failed.
 */
export function useServiceCleanup(): void {
  beforeAll(assertBuilt);
  beforeEach((context) => {
    takeStartedServices();
    context.onTestFailed(() => {
      const services = takeStartedServices();
      if (services.length > 0) console.error(dumpServiceOutput(services));
    });
  });
  afterEach(killAllServices);
  afterAll(killAllServices);
}

export function dumpServiceOutput(services: ServiceProcess[], lines = 40): string {
  return services.map((s) => `--- server on port ${s.port} (pid ${s.pid}) ---\n${tail(s.output(), lines)}`).join('\n');
}

export function parseLogLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a partial last line, or not JSON
    }
  }
  return lines;
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** True once nothing accepts TCP connections on 127.0.0.1:port (a killed redis-server released it). */
export async function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

// ---------------------------------------------------------------- HTTP

export interface JobView {
  id: string;
  type: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';
  done: boolean;
  attempt: number;
  max_attempts: number;
  result: unknown;
  error: { code: string; detail: string; retryable: boolean } | null;
  progress: { percent: number | null; step: string | null; message: string | null; updated_at: string | null };
  version: number;
  run_at: string;
}

export interface HealthView {
  status: 'pass' | 'warn' | 'fail';
  description?: string;
  checks: {
    store: { kind: 'memory' | 'redis'; fallback: boolean; status: string; latency_ms: number | null; output?: string };
    persistence?: { status: string; aof: boolean | null; rdb: boolean | null; output?: string };
    workers: { concurrency: number; busy: number; status: string; live?: number; unserved_types?: string[] };
  };
}

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  /** Wall time of the request, response body included. */
  elapsedMs: number;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** A small client for one service; every call is bounded by a timeout so a hang fails the test instead of the run. */
export class Api {
  constructor(readonly baseUrl: string) {}

  static of(service: ServiceProcess): Api {
    return new Api(service.baseUrl);
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<HttpAnswer<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const started = performance.now();
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    const text = await response.text();
    const elapsedMs = performance.now() - started;
    let body: unknown = text;
    if (/json/.test(response.headers.get('content-type') ?? '') && text.length > 0) body = JSON.parse(text);
    return { status: response.status, headers: response.headers, body: body as T, elapsedMs };
  }

  /** POST /v1/jobs; expects 202 and returns the Job. */
  async submit(body: Record<string, unknown>): Promise<JobView> {
    const answer = await this.request<JobView>('POST', '/v1/jobs', { body });
    if (answer.status !== 202)
      throw new Error(`POST /v1/jobs answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /** GET /v1/jobs/{id}; expects 200. */
  async job(id: string): Promise<JobView> {
    const answer = await this.request<JobView>('GET', `/v1/jobs/${id}`);
    if (answer.status !== 200)
      throw new Error(`GET /v1/jobs/${id} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /** Polls the job until `predicate` holds; returns it. */
  async waitForJob(
    id: string,
    what: string,
    predicate: (job: JobView) => boolean,
    timeoutMs = 10_000,
    intervalMs = 50,
  ): Promise<JobView> {
    let last: JobView | undefined;
    try {
      return await waitFor(
        async () => {
          last = await this.job(id);
          return predicate(last) ? last : undefined;
        },
        { timeoutMs, intervalMs, what: `job ${id} ${what}` },
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}; last state: ${JSON.stringify(last && { status: last.status, attempt: last.attempt, error: last.error })}`,
        {
          cause: error,
        },
      );
    }
  }

  health(timeoutMs = 5000): Promise<HttpAnswer<HealthView>> {
    return this.request<HealthView>('GET', '/health', { timeoutMs });
  }
}
