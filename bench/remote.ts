/**
 * The remote-worker row of `npm run bench` (issue #12): no-op jobs per second through the pull-worker HTTP
 * protocol, against the in-process engine in the same run, on the same Redis.
 *
 * Remote: the real service (`node --import tsx src/server.ts`, WORKER_CONCURRENCY=0, LOG_LEVEL=warn, open
 * worker endpoints) in a process of its own on 127.0.0.1; one worker, `runWorker` of the typed client in the
 * bench process, `slots` at once, claims of at most `maxClaim` (50) with a long-poll, completions of one tick
 * settled in one `POST /v1/leases:complete`. N jobs of a declared type are created first, straight in the store
 * (untimed, as the engine section creates its jobs); the timing starts when the worker starts (registration
 * included) and ends when it has completed N.
 *
 * In-process: `oursThroughput` of bench/engine.ts (a WorkerPool in the bench process) with `inProcessConcurrency`,
 * N jobs, on its own key prefix. Each round runs both back to back, alternating which goes first.
 *
 * Usage from bench/run.ts (section "remote"):
 *
 *   const run = await remoteBench({ redis, jobs: sizes.jobs, rounds, timeoutMs: sizes.runTimeoutMs, log });
 *   out.push(remoteRow(run));
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runWorker } from '../src/client/jobs-client.js';
import type { JobStore } from '../src/store/job-store.js';
import { RedisJobStore } from '../src/store/redis-job-store.js';
import { freePort } from '../test/helpers/redis-server.js';
import { connectOurStore, oursThroughput, type ThroughputRun } from './engine.js';
import { redisCpuSeconds, resetRedis, type BenchRedis } from './redis.js';
import {
  fmtInt,
  fmtRatios,
  inBatches,
  JOB_TTL_MS,
  median,
  newJob,
  PAYLOAD,
  RESULT,
  sleep,
  stopChild,
  uniqueSuffix,
  waitUntil,
} from './util.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const serverEntry = fileURLToPath(new URL('../src/server.ts', import.meta.url));

/** The declared type the remote runs use (no in-process handler serves it). */
const REMOTE_TYPE = 'bench-remote';

export interface RemoteThroughput {
  jobs: number;
  completed: number;
  seconds: number;
  jobsPerS: number;
  /** HTTP calls the worker made while timed, by kind: what one job costs in round trips. */
  calls: { claim: number; settle: number; heartbeat: number; other: number };
  /** Jobs leased per claim call, on average (the long-polls that found nothing at the end count too). */
  jobsPerClaim: number;
  /** CPU per completed job, µs, while timed: the service process, Redis, the worker (the bench process). NaN where not measurable. */
  cpuPerJobUs: { service: number; redis: number; worker: number };
  timedOut: boolean;
}

export interface RemoteRound {
  remote: RemoteThroughput;
  inProcess: ThroughputRun;
  remoteFirst: boolean;
}

export interface RemoteRun {
  jobs: number;
  slots: number;
  maxClaim: number;
  inProcessConcurrency: number;
  rounds: RemoteRound[];
}

interface ServiceHandle {
  base: string;
  keyPrefix: string;
  /** CPU seconds the service process used so far (Linux /proc; NaN elsewhere). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** utime + stime of a process, in seconds (Linux: /proc/<pid>/stat, clock ticks of 1/100 s); NaN when unreadable. */
function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The real service on 127.0.0.1 (from source, through tsx), on the bench's Redis; resolves once it is live. */
async function startService(redis: BenchRedis): Promise<ServiceHandle> {
  const port = await freePort();
  const keyPrefix = `bench-remote-${uniqueSuffix()}`;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', serverEntry], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redis.url,
      REDIS_REQUIRED: 'true',
      REDIS_KEY_PREFIX: keyPrefix,
      WORKER_CONCURRENCY: '0',
      // No request lines (the HTTP section's app has no logger either); warnings still show.
      LOG_LEVEL: 'warn',
      // Open endpoints: no keys (a key is one SHA-256 per request, not what this row measures).
      API_KEYS: '',
      ADMIN_KEYS: '',
      ADMIN_TOKEN: '',
      WORKER_KEYS: '',
      RATE_LIMIT_PER_MIN: '',
      WEBHOOK_SECRET: '',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const base = `http://127.0.0.1:${port}`;
  const live = await waitUntilAsync(async () => {
    if (child.exitCode !== null)
      throw new Error(`the bench's service exited with code ${child.exitCode} before it was live`);
    try {
      return (await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(1000) })).status === 200;
    } catch {
      return false;
    }
  }, 60_000);
  if (!live) {
    child.kill('SIGKILL');
    throw new Error(`the bench's service on port ${port} was not live within 60 s`);
  }
  return {
    base,
    keyPrefix,
    cpuSeconds: () => processCpuSeconds(child.pid),
    stop: async () => {
      await stopChild(child);
      process.removeListener('exit', killOnExit);
    },
  };
}

async function waitUntilAsync(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

async function declareType(base: string): Promise<void> {
  const answer = await fetch(`${base}/admin/job-types/${REMOTE_TYPE}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      input_schema: { type: 'object', properties: { value: { type: 'string' } } },
      description: 'bench: a no-op job run by a remote worker',
    }),
  });
  if (answer.status !== 200 && answer.status !== 201)
    throw new Error(`PUT /admin/job-types/${REMOTE_TYPE} answered ${answer.status}: ${await answer.text()}`);
}

/** One remote run: N jobs created in the store, then one runWorker times until it completed them all. */
async function remoteThroughput(options: {
  service: ServiceHandle;
  redis: BenchRedis;
  jobs: number;
  slots: number;
  maxClaim: number;
  timeoutMs: number;
}): Promise<RemoteThroughput> {
  const { service, jobs } = options;
  await declareType(service.base); // again after a reset: the declaration lives in Redis
  const store: JobStore = await RedisJobStore.connect({
    url: options.redis.url,
    keyPrefix: service.keyPrefix,
    jobTtlMs: JOB_TTL_MS,
    connectTimeoutMs: 3000,
    commandTimeoutMs: 10_000,
  });
  try {
    await inBatches(jobs, 1000, () => store.create(newJob(REMOTE_TYPE, PAYLOAD)));
  } finally {
    await store.close();
  }

  // Counts the calls by kind (by their path only: reading the bodies twice would cost the worker CPU).
  const calls = { claim: 0, settle: 0, heartbeat: 0, other: 0 };
  const countingFetch: typeof fetch = (input, init) => {
    const path = new URL(input instanceof Request ? input.url : input).pathname;
    calls[
      path.endsWith('/leases')
        ? 'claim'
        : path.startsWith('/v1/leases')
          ? 'settle'
          : path.endsWith('/heartbeat')
            ? 'heartbeat'
            : 'other'
    ]++;
    return fetch(input, init);
  };
  const cpuBefore = {
    service: service.cpuSeconds(),
    redis: await redisCpuSeconds(options.redis.admin),
    worker: process.cpuUsage(),
  };
  const started = performance.now();
  const worker = runWorker({
    baseUrl: service.base,
    name: 'bench-remote',
    types: [REMOTE_TYPE],
    slots: options.slots,
    maxClaim: options.maxClaim,
    waitS: 5,
    fetch: countingFetch,
    handle: async () => RESULT,
    logger: {
      info: () => undefined,
      warn: (message, fields) => console.error(`[remote worker] ${message}`, fields ?? ''),
      error: (message, fields) => console.error(`[remote worker] ${message}`, fields ?? ''),
    },
  });
  const finished = await waitUntil(() => worker.counts.completed >= jobs, options.timeoutMs);
  const seconds = (performance.now() - started) / 1000;
  const completed = worker.counts.completed;
  const timedCalls = { ...calls };
  const workerCpu = process.cpuUsage(cpuBefore.worker);
  const perJobUs = (cpuS: number) => (cpuS / Math.max(1, completed)) * 1e6;
  const cpuPerJobUs = {
    service: perJobUs(service.cpuSeconds() - cpuBefore.service),
    redis: perJobUs((await redisCpuSeconds(options.redis.admin)) - cpuBefore.redis),
    worker: perJobUs((workerCpu.user + workerCpu.system) / 1e6),
  };
  await worker.stop();
  return {
    jobs,
    completed,
    seconds,
    jobsPerS: completed / seconds,
    calls: timedCalls,
    jobsPerClaim: worker.counts.claimed / Math.max(1, timedCalls.claim),
    cpuPerJobUs,
    timedOut: !finished,
  };
}

/**
 * The remote-worker section: `rounds` rounds of a remote run and an in-process run back to back (alternating
 * which goes first), N jobs each. Defaults: slots 100, maxClaim 50, in-process concurrency 100.
 */
export async function remoteBench(options: {
  redis: BenchRedis;
  jobs: number;
  rounds: number;
  timeoutMs: number;
  log: (message: string) => void;
  slots?: number;
  maxClaim?: number;
  inProcessConcurrency?: number;
}): Promise<RemoteRun> {
  const slots = options.slots ?? 100;
  const maxClaim = options.maxClaim ?? 50;
  const concurrency = options.inProcessConcurrency ?? 100;
  const { log } = options;
  log(
    `7. remote worker: no-op jobs through the HTTP protocol (1 runWorker, ${slots} slots, claims of ≤ ${maxClaim}, leases:complete) vs the in-process engine (c=${concurrency}), ${options.jobs} jobs, ${options.rounds} alternated round(s)`,
  );
  const service = await startService(options.redis);
  try {
    {
      // Warm-up (JIT on both sides, the server's script cache), not recorded.
      const warm = Math.min(2000, options.jobs);
      await remoteThroughput({
        service,
        redis: options.redis,
        jobs: warm,
        slots,
        maxClaim,
        timeoutMs: options.timeoutMs,
      });
      log(`  warmed up the remote path with ${warm} jobs`);
    }
    const rounds: RemoteRound[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const remoteFirst = round % 2 === 0;
      const tag = `round ${round + 1}/${options.rounds}`;
      const remote = async () => {
        await resetRedis(options.redis);
        const run = await remoteThroughput({
          service,
          redis: options.redis,
          jobs: options.jobs,
          slots,
          maxClaim,
          timeoutMs: options.timeoutMs,
        });
        const perJob = (count: number) => (count / Math.max(1, run.completed)).toFixed(3);
        const cpu = run.cpuPerJobUs;
        log(
          `  ${tag} remote: ${fmtInt(run.jobsPerS)} jobs/s (${run.completed}/${run.jobs} in ${run.seconds.toFixed(2)} s; ${run.jobsPerClaim.toFixed(1)} jobs per claim; calls per job: claim ${perJob(run.calls.claim)}, settle ${perJob(run.calls.settle)}, heartbeat ${perJob(run.calls.heartbeat)}; CPU per job: service ${fmtInt(cpu.service)} µs, Redis ${fmtInt(cpu.redis)} µs, worker ${fmtInt(cpu.worker)} µs; wall ${fmtInt(1e6 / run.jobsPerS)} µs)`,
        );
        return run;
      };
      const inProcess = async () => {
        await resetRedis(options.redis);
        const store = await connectOurStore(options.redis, `rip${concurrency}`);
        try {
          const run = await oursThroughput({ store, concurrency, jobs: options.jobs, timeoutMs: options.timeoutMs });
          log(
            `  ${tag} in-process c=${concurrency}: ${fmtInt(run.jobsPerS)} jobs/s (${run.completed}/${run.jobs} in ${run.seconds.toFixed(2)} s)`,
          );
          return run;
        } finally {
          await store.close();
        }
      };
      const [remoteRun, inProcessRun] = remoteFirst
        ? [await remote(), await inProcess()]
        : await inProcess().then(async (first) => [await remote(), first] as const);
      log(
        `  ${tag}: remote ${(remoteRun.jobsPerS / inProcessRun.jobsPerS).toFixed(2)}× in-process (${remoteFirst ? 'remote' : 'in-process'} first)`,
      );
      rounds.push({ remote: remoteRun, inProcess: inProcessRun, remoteFirst });
    }
    await resetRedis(options.redis);
    return { jobs: options.jobs, slots, maxClaim, inProcessConcurrency: concurrency, rounds };
  } finally {
    await service.stop();
  }
}

/** The target of issue #12: the HTTP protocol reaches at least a third of the in-process rate. */
export const REMOTE_TARGET = { text: '≥ 0.33×', meets: (ratio: number) => ratio >= 1 / 3 } as const;

/**
 * The report row, shaped as bench/run.ts's rows: [section, measure, ours, reference, ratio, target, result].
 * Ratio: the median of the per-round ratios (every round's in order).
 */
export function remoteRow(run: RemoteRun): [string, string, string, string, string, string, string] {
  const remote = run.rounds.map((round) => round.remote);
  const inProcess = run.rounds.map((round) => round.inProcess);
  const ratios = run.rounds.map((round) => round.remote.jobsPerS / round.inProcess.jobsPerS);
  const ratio = median(ratios);
  const clean = [...remote, ...inProcess].every((each) => !each.timedOut);
  const perClaim = median(remote.map((each) => each.jobsPerClaim));
  const calls = (kind: keyof RemoteThroughput['calls']) =>
    median(remote.map((each) => each.calls[kind] / Math.max(1, each.completed)));
  return [
    '7 remote',
    `no-op jobs/s through the HTTP pull-worker protocol: 1 \`runWorker\`, ${run.slots} slots, claims of ≤ ${run.maxClaim} (${perClaim.toFixed(1)} per claim), \`leases:complete\` (${calls('settle').toFixed(3)} settle calls per job), ${fmtInt(run.jobs)} jobs${run.rounds.length > 1 ? `, median of ${run.rounds.length} rounds` : ', one round'}`,
    `${fmtInt(median(remote.map((each) => each.jobsPerS)))}${clean ? '' : ' (timed out)'}`,
    `${fmtInt(median(inProcess.map((each) => each.jobsPerS)))} (in-process, c=${run.inProcessConcurrency})`,
    fmtRatios(ratios),
    REMOTE_TARGET.text,
    Number.isNaN(ratio) ? 'n/a' : REMOTE_TARGET.meets(ratio) && clean ? 'PASS' : '**MISS**',
  ];
}
