/**
 * `npm run bench`: ours against BullMQ and a bare fastify, in one run on one Redis; writes bench/results.md.
 *
 * Redis: a redis-server of its own (free port, temp dir, no persistence), killed at the end; or
 * BENCH_REDIS_URL (then only the bench's keys are deleted, never the rest). Sizes (env):
 *   BENCH_JOBS=50000 BENCH_JOBS_C1=10000 BENCH_MEMSTORE_JOBS=100000 BENCH_RUN_TIMEOUT_S=120
 *   BENCH_LATENCY_RATE=500 BENCH_LATENCY_S=5 BENCH_MEMORY_JOBS=20000
 *   BENCH_HTTP_CONNECTIONS=50 BENCH_HTTP_S=5 BENCH_HTTP_WARMUP_S=1
 *   BENCH_LIST_SMALL=10000 BENCH_LIST_BIG=1000000 BENCH_LIST_CONNECTIONS=10 BENCH_LIST_S=4
 *   BENCH_SECTIONS=engine,latency,memory,http,list,memstore (all by default)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bullLatency, bullThroughput, connectOurStore, memoryStore, oursLatency, oursThroughput, roundTrips, type LatencyRun, type ThroughputRun } from './engine.js';
import { httpBench, type HttpRun } from './http.js';
import { listBench, type ListRun } from './list.js';
import { bullMemory, oursMemory, type MemoryRun } from './memory.js';
import { machineLine, openBenchRedis, resetRedis, type BenchRedis } from './redis.js';
import type { CostPerJob } from './redis.js';
import { envNumber, fmtInt, fmtMs, fmtRatio, log, sleep, uniqueSuffix } from './util.js';

const sizes = {
  jobs: envNumber('BENCH_JOBS', 50_000),
  jobsC1: envNumber('BENCH_JOBS_C1', 10_000),
  memstoreJobs: envNumber('BENCH_MEMSTORE_JOBS', 100_000),
  runTimeoutMs: envNumber('BENCH_RUN_TIMEOUT_S', 120) * 1000,
  latencyRate: envNumber('BENCH_LATENCY_RATE', 500),
  latencyS: envNumber('BENCH_LATENCY_S', 5),
  memoryJobs: envNumber('BENCH_MEMORY_JOBS', 20_000),
  httpConnections: envNumber('BENCH_HTTP_CONNECTIONS', 50),
  httpS: envNumber('BENCH_HTTP_S', 5),
  httpWarmupS: envNumber('BENCH_HTTP_WARMUP_S', 1),
  listSmall: envNumber('BENCH_LIST_SMALL', 10_000),
  listBig: envNumber('BENCH_LIST_BIG', 1_000_000),
  listConnections: envNumber('BENCH_LIST_CONNECTIONS', 10),
  listS: envNumber('BENCH_LIST_S', 4),
};
const allSections = ['engine', 'memstore', 'latency', 'memory', 'http', 'list'] as const;
type Section = (typeof allSections)[number];
const wanted = new Set((process.env.BENCH_SECTIONS ?? allSections.join(',')).split(',').map((s) => s.trim()));
const runs = (section: Section) => wanted.has(section);

interface Results {
  engine: { concurrency: number; ours: ThroughputRun; bull: ThroughputRun }[];
  memstore?: { ours: ThroughputRun; redis: ThroughputRun };
  latency?: { ours: LatencyRun; bull: LatencyRun };
  memory?: { ours: MemoryRun; bull: MemoryRun };
  http?: HttpRun;
  list?: ListRun;
}

async function engineSection(redis: BenchRedis, results: Results): Promise<void> {
  log('1. queue engine, no HTTP: no-op jobs with a 120-byte payload');
  {
    // Warm-up of both engines (JIT, script cache), not recorded.
    const warm = Math.min(2000, sizes.jobs);
    await resetRedis(redis);
    const store = await connectOurStore(redis, 'warm');
    await oursThroughput({ store, concurrency: 10, jobs: warm, timeoutMs: sizes.runTimeoutMs });
    await store.close();
    await resetRedis(redis);
    await bullThroughput({ redis, concurrency: 10, jobs: warm, timeoutMs: sizes.runTimeoutMs });
    log(`  warmed up both engines with ${warm} jobs each`);
  }
  for (const concurrency of [1, 10, 100]) {
    const jobs = concurrency === 1 ? sizes.jobsC1 : sizes.jobs;
    await resetRedis(redis);
    const store = await connectOurStore(redis, `tp${concurrency}`);
    const ours = await oursThroughput({ store, concurrency, jobs, timeoutMs: sizes.runTimeoutMs, costRedis: redis.admin });
    await store.close();
    log(`  ours   c=${concurrency}: ${fmtInt(ours.jobsPerS)} jobs/s (${ours.completed}/${jobs} in ${ours.seconds.toFixed(2)} s; created at ${fmtInt(ours.addPerS)}/s)`);
    await resetRedis(redis);
    const bull = await bullThroughput({ redis, concurrency, jobs, timeoutMs: sizes.runTimeoutMs, measureCost: true });
    log(`  BullMQ c=${concurrency}: ${fmtInt(bull.jobsPerS)} jobs/s (${bull.completed}/${jobs} in ${bull.seconds.toFixed(2)} s; addBulk at ${fmtInt(bull.addPerS)}/s)`);
    results.engine.push({ concurrency, ours, bull });
  }
  await resetRedis(redis);
}

async function memstoreSection(redis: BenchRedis, results: Results): Promise<void> {
  log('6. in-memory store, concurrency 10');
  const ours = await oursThroughput({ store: memoryStore(), concurrency: 10, jobs: sizes.memstoreJobs, timeoutMs: sizes.runTimeoutMs });
  log(`  memory store c=10: ${fmtInt(ours.jobsPerS)} jobs/s (${ours.completed}/${sizes.memstoreJobs} in ${ours.seconds.toFixed(2)} s)`);
  let reference = results.engine.find((row) => row.concurrency === 10)?.ours;
  if (!reference) {
    await resetRedis(redis);
    const store = await connectOurStore(redis, 'tp10');
    reference = await oursThroughput({ store, concurrency: 10, jobs: sizes.jobs, timeoutMs: sizes.runTimeoutMs });
    await store.close();
    await resetRedis(redis);
  }
  results.memstore = { ours, redis: reference };
}

async function latencySection(redis: BenchRedis, results: Results): Promise<void> {
  log(`2. latency: submit → succeeded at ${sizes.latencyRate} jobs/s for ${sizes.latencyS} s, concurrency 10`);
  const warmupJobs = Math.min(500, Math.round(sizes.latencyRate));
  await resetRedis(redis);
  const store = await connectOurStore(redis, 'lat');
  const ours = await oursLatency({ store, rate: sizes.latencyRate, seconds: sizes.latencyS, warmupJobs });
  await store.close();
  log(`  ours:   p50 ${fmtMs(ours.p50)}, p99 ${fmtMs(ours.p99)}, max ${fmtMs(ours.max)} (${ours.completed}/${ours.submitted})`);
  await resetRedis(redis);
  const bull = await bullLatency({ redis, rate: sizes.latencyRate, seconds: sizes.latencyS, warmupJobs });
  log(`  BullMQ: p50 ${fmtMs(bull.p50)}, p99 ${fmtMs(bull.p99)}, max ${fmtMs(bull.max)} (${bull.completed}/${bull.submitted})`);
  await resetRedis(redis);
  results.latency = { ours, bull };
}

async function memorySection(redis: BenchRedis, results: Results): Promise<void> {
  log(`4. Redis memory per finished job (${sizes.memoryJobs} jobs, 120-byte input, small result)`);
  const ours = await oursMemory(redis, sizes.memoryJobs, sizes.runTimeoutMs);
  log(`  ours:   ${fmtInt(ours.bytesPerJob)} B/job (one job key: ${ours.oneJobBytes} B, ${ours.oneJobEncoding})`);
  const bull = await bullMemory(redis, sizes.memoryJobs, sizes.runTimeoutMs);
  log(`  BullMQ: ${fmtInt(bull.bytesPerJob)} B/job (one job key: ${bull.oneJobBytes} B, ${bull.oneJobEncoding})`);
  await resetRedis(redis);
  results.memory = { ours, bull };
}

async function httpSection(redis: BenchRedis, results: Results): Promise<void> {
  log(`3. HTTP: autocannon, ${sizes.httpConnections} connections, ${sizes.httpS} s each (after ${sizes.httpWarmupS} s warm-up)`);
  await resetRedis(redis);
  results.http = await httpBench({
    redisUrl: redis.url,
    keyPrefix: `bench-http-${uniqueSuffix()}`,
    connections: sizes.httpConnections,
    seconds: sizes.httpS,
    warmupS: sizes.httpWarmupS,
    log,
  });
  await resetRedis(redis);
}

async function listSection(redis: BenchRedis, results: Results): Promise<void> {
  log(`5. listing at scale: GET /v1/jobs?limit=20 with ${sizes.listSmall} and ${sizes.listBig} finished jobs`);
  await resetRedis(redis);
  results.list = await listBench({
    redis,
    small: sizes.listSmall,
    big: sizes.listBig,
    connections: sizes.listConnections,
    seconds: sizes.listS,
    warmupS: 2,
    log,
  });
  await resetRedis(redis);
}

// ---------------------------------------------------------------------------------------------- report

type Row = [section: string, measure: string, ours: string, reference: string, ratio: string, target: string, result: string];

const verdict = (pass: boolean | null): string => (pass === null ? 'n/a' : pass ? 'PASS' : '**MISS**');

function rows(results: Results): Row[] {
  const out: Row[] = [];
  for (const { concurrency, ours, bull } of results.engine) {
    const ratio = ours.jobsPerS / bull.jobsPerS;
    const target = concurrency === 1 ? '—' : '≥ 3×';
    const pass = concurrency === 1 ? null : ratio >= 3 && !ours.timedOut;
    out.push([
      '1 engine',
      `no-op jobs/s, concurrency ${concurrency} (${fmtInt(ours.jobs)} jobs)`,
      `${fmtInt(ours.jobsPerS)}${ours.timedOut ? ' (timed out)' : ''}`,
      `${fmtInt(bull.jobsPerS)} (BullMQ)${bull.timedOut ? ' (timed out)' : ''}`,
      fmtRatio(ratio),
      target,
      concurrency === 1 ? 'info' : verdict(pass),
    ]);
  }
  const c10 = results.engine.find((row) => row.concurrency === 10);
  if (c10) {
    out.push([
      '1 engine',
      `submit rate before the run (ours: parallel \`store.create\`; BullMQ: \`addBulk\` of 1000)`,
      `${fmtInt(c10.ours.addPerS)}/s`,
      `${fmtInt(c10.bull.addPerS)}/s (BullMQ)`,
      fmtRatio(c10.ours.addPerS / c10.bull.addPerS),
      '—',
      'info',
    ]);
  }
  if (results.latency) {
    const { ours, bull } = results.latency;
    out.push(['2 latency', `submit → succeeded p50, ${sizes.latencyRate} jobs/s`, fmtMs(ours.p50), `${fmtMs(bull.p50)} (BullMQ)`, fmtRatio(ours.p50 / bull.p50), '—', 'info']);
    out.push([
      '2 latency',
      `submit → succeeded p99, ${sizes.latencyRate} jobs/s (${ours.completed}/${ours.submitted} vs ${bull.completed}/${bull.submitted} jobs)`,
      fmtMs(ours.p99),
      `${fmtMs(bull.p99)} (BullMQ)`,
      fmtRatio(ours.p99 / bull.p99),
      '≤ 1×',
      verdict(ours.p99 <= bull.p99 && ours.completed === ours.submitted),
    ]);
  }
  if (results.http) {
    const { create, status, barePost, bareGet } = results.http;
    const createRatio = create.rps / barePost.rps;
    const statusRatio = status.rps / bareGet.rps;
    const bad = (r: { non2xx: number; errors: number }) => (r.non2xx + r.errors > 0 ? ` (${r.non2xx} non-2xx, ${r.errors} errors)` : '');
    out.push([
      '3 HTTP',
      `\`POST /v1/jobs\` req/s (p99 ${create.p99} ms vs ${barePost.p99} ms)`,
      `${fmtInt(create.rps)}${bad(create)}`,
      `${fmtInt(barePost.rps)} (bare POST)${bad(barePost)}`,
      fmtRatio(createRatio),
      '≥ 0.50×',
      verdict(createRatio >= 0.5 && create.non2xx + create.errors === 0),
    ]);
    out.push([
      '3 HTTP',
      `\`GET /v1/jobs/{id}\` req/s (p99 ${status.p99} ms vs ${bareGet.p99} ms)`,
      `${fmtInt(status.rps)}${bad(status)}`,
      `${fmtInt(bareGet.rps)} (bare GET)${bad(bareGet)}`,
      fmtRatio(statusRatio),
      '≥ 0.60×',
      verdict(statusRatio >= 0.6 && status.non2xx + status.errors === 0),
    ]);
  }
  if (results.memory) {
    const { ours, bull } = results.memory;
    const ratio = ours.bytesPerJob / bull.bytesPerJob;
    out.push([
      '4 memory',
      `Redis bytes per finished job (${fmtInt(ours.jobs)} jobs; one job key ${ours.oneJobBytes} B ${ours.oneJobEncoding} vs ${bull.oneJobBytes} B ${bull.oneJobEncoding})`,
      `${fmtInt(ours.bytesPerJob)} B`,
      `${fmtInt(bull.bytesPerJob)} B (BullMQ)`,
      fmtRatio(ratio),
      '≤ 0.50×',
      verdict(ratio <= 0.5),
    ]);
  }
  if (results.list) {
    const { small, big } = results.list;
    const ratio = big.p99 / small.p99;
    out.push([
      '5 scale',
      `\`GET /v1/jobs?limit=20\` p99 (p50 ${fmtMs(big.p50)} vs ${fmtMs(small.p50)}; ${sizes.listConnections} clients)`,
      `${fmtMs(big.p99)} at ${fmtInt(big.jobs)} jobs`,
      `${fmtMs(small.p99)} at ${fmtInt(small.jobs)} jobs`,
      fmtRatio(ratio),
      '≤ 2×',
      verdict(ratio <= 2 && big.errors === 0 && big.pageSize === 20),
    ]);
    for (const search of results.list.admin) {
      out.push([
        '5 scale',
        `\`GET /admin/jobs?${search.query}\` p99 (p50 ${fmtMs(search.p50)}; page of ${search.pageSize}${search.errors > 0 ? `; ${search.errors} errors` : ''})`,
        `${fmtMs(search.p99)} at ${fmtInt(big.jobs)} jobs`,
        '—',
        '—',
        '—',
        'info',
      ]);
    }
  }
  if (results.memstore) {
    const { ours, redis } = results.memstore;
    const ratio = ours.jobsPerS / redis.jobsPerS;
    out.push([
      '6 memory store',
      `no-op jobs/s, concurrency 10 (${fmtInt(ours.jobs)} jobs)`,
      fmtInt(ours.jobsPerS),
      `${fmtInt(redis.jobsPerS)} (ours on Redis)`,
      fmtRatio(ratio),
      '≥ 5×',
      verdict(ratio >= 5 && !ours.timedOut),
    ]);
  }
  return out;
}

function costTable(results: Results): string {
  const c10 = results.engine.find((row) => row.concurrency === 10);
  const lines = [
    '### Where the time and the bytes go (concurrency 10 run of section 1: `INFO commandstats`, `INFO cpu`, `process.cpuUsage()` deltas; section 4 keys)',
    '',
    '| | Ours | BullMQ |',
    '|---|---|---|',
  ];
  if (c10?.ours.cost && c10.bull.cost) costRows(c10, lines);
  const memory = results.memory;
  if (memory) {
    const breakdown = (run: MemoryRun) =>
      run.keyBreakdown.map(([kind, bytes]) => `${kind} ${fmtInt(bytes)} B`).join(', ') || 'n/a';
    lines.push(`| Redis memory per finished job, by key (\`MEMORY USAGE\`, summed per kind of key, over N) | ${breakdown(memory.ours)} | ${breakdown(memory.bull)} |`);
  }
  return lines.length > 4 ? lines.join('\n') : '';
}

function costRows(c10: Results['engine'][number], lines: string[]): void {
  const ours: CostPerJob = c10.ours.cost!;
  const bull: CostPerJob = c10.bull.cost!;
  const top = (cost: CostPerJob) =>
    cost.commands
      .slice(0, 12)
      .map(([name, calls]) => `${name} ${calls.toFixed(2)}`)
      .join(', ');
  const overlap = (run: ThroughputRun, cost: CostPerJob) => {
    const wall = 1e6 / run.jobsPerS;
    const cpu = cost.nodeCpuUs + cost.redisCpuUs;
    return `${wall.toFixed(0)} µs vs ${cpu.toFixed(0)} µs: ${(wall / cpu).toFixed(2)}`;
  };
  lines.push(
    `| Redis commands per job (incl. those run inside Lua) | ${ours.totalCommands.toFixed(1)} | ${bull.totalCommands.toFixed(1)} |`,
    `| Redis CPU per job | ${ours.redisCpuUs.toFixed(0)} µs | ${bull.redisCpuUs.toFixed(0)} µs |`,
    `| Node CPU per job (bench process: pool / worker and its client) | ${ours.nodeCpuUs.toFixed(0)} µs | ${bull.nodeCpuUs.toFixed(0)} µs |`,
    `| Wall time per job (1 / throughput) vs Node + Redis CPU per job, and their quotient: below 1 = Node and Redis work at once, ≈ 1 = they take turns | ${overlap(c10.ours, ours)} | ${overlap(c10.bull, bull)} |`,
    `| Top commands per job | ${top(ours)} | ${top(bull)} |`,
  );
  const probe = c10.ours.probe;
  if (probe) {
    const n = c10.ours.completed;
    lines.push(
      `| Store round trips per job (ours, from a probe around the store) | ${(roundTrips(probe) / n).toFixed(2)}: claim ${(probe.claimCalls / n).toFixed(2)}, finish ${(probe.finishCalls / n).toFixed(2)}, finishAndClaim ${(probe.finishAndClaimCalls / n).toFixed(2)}, nextWakeAt ${(probe.nextWakeCalls / n).toFixed(3)}; ${(probe.claimedJobs / Math.max(1, probe.claimCalls + probe.finishAndClaimCalls)).toFixed(2)} jobs leased per claiming call | — |`,
    );
  }
}

/** The commit measured, and whether src/ had uncommitted changes then. */
function codeVersion(): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)) }).stdout?.toString().trim() ?? '';
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
  return dirty > 0 ? `${commit} + uncommitted changes in ${dirty} file(s) of src/` : commit;
}

const loadAverage = (): string => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
  } catch {
    return '?';
  }
};
const loadStart = loadAverage();

function report(results: Results, machine: string, seconds: number, code: string): string {
  const table = [
    '| Section | Measure | Ours | Reference | Ratio (ours / ref) | Target | Result |',
    '|---|---|---|---|---|---|---|',
    ...rows(results).map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
  const overrides = Object.entries(process.env)
    .filter(([key]) => key.startsWith('BENCH_') && key !== 'BENCH_REDIS_URL')
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
  return `# Benchmark results

Generated by \`${overrides ? `${overrides} ` : ''}npm run bench\` on ${new Date().toISOString()} (whole run ${(seconds / 60).toFixed(1)} min).

Machine: ${machine}. Code: ${code}. Load average (1 min) at start / end: ${loadStart} / ${loadAverage()} (other work on these 2 cores skews every figure; both sides of each ratio run back to back).

${table}

${costTable(results)}

## How it was measured

- One run, one Redis: ${process.env.BENCH_REDIS_URL ? 'BENCH_REDIS_URL (only the bench\'s keys were touched)' : "a redis-server of the bench's own on a free port of 127.0.0.1, `--save '' --appendonly no`, emptied (FLUSHALL) between measurements and killed at the end"}. All traffic is to 127.0.0.1.
- **1 engine.** Ours: N jobs created with \`store.create\` (a \`noop\` handler: zod-checks \`{value}\`, returns \`{ok:true}\`), then a \`WorkerPool\` of that concurrency (lease 30 s, default claim batch) is started and timed until \`pool.counters.succeeded\` (polled every 10 ms) reaches N. BullMQ ${'6'}: \`Queue.addBulk\` of the same jobs (same 120-byte payload), then a \`Worker\` with that concurrency and a no-op processor, timed until N \`completed\` events. BullMQ keeps its defaults: completed jobs are kept with their return value (no \`removeOnComplete\`), events stream capped at ~10k; ours keeps finished jobs with a 24 h TTL. Both run in the bench process, after a warm-up run of 2000 jobs each; the job creation is not in the timed part.
- **2 latency.** A pool / Worker of 10 is idle before the first job; jobs are submitted on a 1 ms timer at the given rate, after ${Math.min(500, Math.round(sizes.latencyRate))} warm-up jobs. Ours: from before \`store.create\` to when the pool's outcome write for that job (\`finish\`, or \`finishAndClaim\` where the pool batches) resolved, seen by a probe wrapped around the store. BullMQ: from before \`queue.add\` to the worker's \`completed\` event.
- **3 HTTP.** Servers in their own Node process (\`bench/http-server.ts\`), autocannon in the bench process. Ours: \`buildApp\` with a RedisJobStore and \`pool: null\` (API role), no logger (the bare app has none either; a production instance logs each request at \`info\`). Bare: fastify with \`GET /hello\` → \`{hello:'world'}\` and \`POST /echo\` returning the body. Both POSTs send the same body, an \`echo\` job with the 120-byte input. Rates are requests over the run's duration.
- **4 memory.** \`INFO memory\` \`used_memory\` after − before (FLUSHALL'd Redis, the engine's clients closed), over N, after creating and processing N jobs with a pool / Worker of 10. The "one job key" figure is \`MEMORY USAGE\` of one job key (ours: the packed string of a finished job; BullMQ: its job hash).
- **5 scale.** ${'`'}bench/list.ts${'`'} fills Redis directly: one job goes through the real store (create → claim → finish), its hash is the template, and the rest are written with pipelines that mirror what create.lua + claim.lua + finish.lua leave for a finished job (the job hash with its own id and shifted times, PEXPIREAT, \`idx:succeeded:echo\`, \`expiry\`); fill took ${results.list ? results.list.fillSeconds.toFixed(0) : '?'} s. Both sets live in Redis at once under their own prefixes; the app (API role) serves each; after a 2 s warm-up of each, ${sizes.listConnections} keep-alive clients in a closed loop, ${sizes.listS} s per set in two interleaved halves (small, big, small, big), every request timed with \`performance.now()\` (autocannon's histogram has 1 ms steps).
- **6 memory store.** As (1) at concurrency 10, with \`MemoryJobStore\`, compared with (1)'s Redis figure.
`;
}

// ------------------------------------------------------------------------------------------------ main

const startedAt = performance.now();
log(`sizes: ${JSON.stringify(sizes)}`);
const redis = await openBenchRedis();
const stopRedis = async () => {
  await redis.stop();
};
process.once('SIGINT', () => {
  void stopRedis().finally(() => process.exit(130));
});
const results: Results = { engine: [] };
try {
  const machine = await machineLine(redis.admin);
  const code = codeVersion();
  log(`machine: ${machine}; load ${loadStart}; code ${code}; Redis at ${redis.url}${redis.dedicated ? ' (spawned for the bench)' : ''}`);
  if (runs('engine')) await engineSection(redis, results);
  if (runs('memstore')) await memstoreSection(redis, results);
  if (runs('latency')) await latencySection(redis, results);
  if (runs('memory')) await memorySection(redis, results);
  if (runs('http')) await httpSection(redis, results);
  if (runs('list')) await listSection(redis, results);
  const seconds = (performance.now() - startedAt) / 1000;
  const markdown = report(results, machine, seconds, code);
  const out = fileURLToPath(new URL('./results.md', import.meta.url));
  writeFileSync(out, markdown);
  log(`done in ${(seconds / 60).toFixed(1)} min; wrote ${out}`);
  process.stdout.write(`\n${rows(results).map((row) => row.join(' | ')).join('\n')}\n`);
} finally {
  await stopRedis();
  await sleep(50);
}
process.exit(0);
