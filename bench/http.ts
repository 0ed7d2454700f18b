import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { percentile, PAYLOAD, stopChild } from './util.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const serverScript = fileURLToPath(new URL('./http-server.ts', import.meta.url));

export interface ServerHandle {
  port: number;
  base: string;
  stop(): Promise<void>;
}

/** Starts bench/http-server.ts in its own Node process and waits for its port. */
export async function startServer(env: Record<string, string>): Promise<ServerHandle> {
  const child = spawn(process.execPath, ['--import', 'tsx', serverScript], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`bench server (${JSON.stringify(env)}) did not start within 30 s`)),
      30_000,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /LISTENING (\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench server exited with code ${code} before listening`));
    });
  });
  child.stdout.resume();
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    stop: async () => {
      await stopChild(child);
      process.removeListener('exit', killOnExit);
    },
  };
}

export interface CannonResult {
  rps: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
}

/** One autocannon run (programmatic API) against 127.0.0.1; bounded by its duration. */
export async function cannon(options: {
  url: string;
  method: 'GET' | 'POST';
  body?: string;
  connections: number;
  seconds: number;
}): Promise<CannonResult> {
  const result = await autocannon({
    url: options.url,
    method: options.method,
    connections: options.connections,
    duration: options.seconds,
    headers: options.body !== undefined ? { 'content-type': 'application/json' } : {},
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  return {
    rps: result.requests.total / result.duration,
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** The body both POST targets get: an echo job with the 120-byte input. */
export const CREATE_BODY = JSON.stringify({ type: 'echo', input: PAYLOAD });

/** One round: both POSTs back to back, then both GETs back to back, in the round's order. */
export interface HttpRound {
  create: CannonResult;
  status: CannonResult;
  barePost: CannonResult;
  bareGet: CannonResult;
  /** Round 1, 3, …: ours first, then the bare route; round 2, 4, …: the bare route first. */
  oursFirst: boolean;
}

export interface HttpRun {
  rounds: HttpRound[];
}

/**
 * Our app (API role) and a bare fastify, each in its own process, started once. Every target is warmed up
 * once (`warmupS`, not recorded); then `rounds` rounds, each timing POST ours / bare back to back and GET
 * ours / bare back to back, alternating which of the two goes first.
 */
export async function httpBench(options: {
  redisUrl: string;
  keyPrefix: string;
  connections: number;
  seconds: number;
  warmupS: number;
  rounds: number;
  log: (m: string) => void;
}): Promise<HttpRun> {
  const app = await startServer({
    BENCH_SERVER_MODE: 'app',
    BENCH_SERVER_REDIS_URL: options.redisUrl,
    BENCH_SERVER_KEY_PREFIX: options.keyPrefix,
  });
  const bare = await startServer({ BENCH_SERVER_MODE: 'bare' }).catch(async (error: unknown) => {
    await app.stop();
    throw error;
  });
  try {
    const created = await fetch(`${app.base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: CREATE_BODY,
    });
    if (created.status !== 202) throw new Error(`POST /v1/jobs answered ${created.status}: ${await created.text()}`);
    const { id } = (await created.json()) as { id: string };
    interface Target {
      label: string;
      url: string;
      method: 'GET' | 'POST';
      body?: string;
    }
    const targets = {
      create: { label: 'POST /v1/jobs', url: `${app.base}/v1/jobs`, method: 'POST', body: CREATE_BODY },
      barePost: { label: 'bare POST /echo', url: `${bare.base}/echo`, method: 'POST', body: CREATE_BODY },
      status: { label: 'GET /v1/jobs/{id}', url: `${app.base}/v1/jobs/${id}`, method: 'GET' },
      bareGet: { label: 'bare GET /hello', url: `${bare.base}/hello`, method: 'GET' },
    } satisfies Record<string, Target>;
    const shape = (target: Target) => ({
      url: target.url,
      method: target.method,
      connections: options.connections,
      ...(target.body !== undefined ? { body: target.body } : {}),
    });
    for (const target of Object.values(targets)) await cannon({ ...shape(target), seconds: options.warmupS });
    const rounds: HttpRound[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const oursFirst = round % 2 === 0;
      const measure = async (target: Target) => {
        const result = await cannon({ ...shape(target), seconds: options.seconds });
        options.log(
          `  round ${round + 1}/${options.rounds} ${target.label}: ${Math.round(result.rps)} req/s, p99 ${result.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}`,
        );
        return result;
      };
      const pair = async (ours: Target, reference: Target): Promise<[CannonResult, CannonResult]> => {
        if (oursFirst) {
          const first = await measure(ours);
          return [first, await measure(reference)];
        }
        const first = await measure(reference);
        return [await measure(ours), first];
      };
      const [create, barePost] = await pair(targets.create, targets.barePost);
      const [status, bareGet] = await pair(targets.status, targets.bareGet);
      options.log(
        `  round ${round + 1}/${options.rounds}: POST ${(create.rps / barePost.rps).toFixed(2)}× bare, GET ${(status.rps / bareGet.rps).toFixed(2)}× bare`,
      );
      rounds.push({ create, status, barePost, bareGet, oursFirst });
    }
    return { rounds };
  } finally {
    await app.stop();
    await bare.stop();
  }
}

export interface LatencySample {
  requests: number;
  errors: number;
  p50: number;
  p99: number;
  /** Jobs on the first page answered (checks the listing really returned a page). */
  pageSize: number;
  latencies: number[];
}

/**
 * A closed loop of `connections` keep-alive clients, each sending the next GET when the last answered,
 * timing every request with performance.now() (autocannon's histogram has 1 ms resolution). Bounded by
 * `seconds` and `maxRequests`.
 */
export async function timedGets(
  url: string,
  options: { connections: number; seconds: number; maxRequests: number },
): Promise<LatencySample> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  let errors = 0;
  let pageSize = -1;
  const deadline = performance.now() + options.seconds * 1000;
  let issued = 0;
  const getOnce = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { agent, method: 'GET' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const client = async () => {
    while (performance.now() < deadline && issued < options.maxRequests) {
      issued++;
      const started = performance.now();
      try {
        const { status, body } = await getOnce();
        const took = performance.now() - started;
        if (status !== 200) {
          errors++;
          continue;
        }
        latencies.push(took);
        if (pageSize < 0) pageSize = ((JSON.parse(body) as { data: unknown[] }).data ?? []).length;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, client));
  agent.destroy();
  return {
    requests: latencies.length,
    errors,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    pageSize,
    latencies,
  };
}
