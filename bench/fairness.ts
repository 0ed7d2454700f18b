/**
 * The fairness rows of `npm run bench` (issue #13): what fair claims cost the engine, measured as the engine
 * section measures (no-op jobs through a WorkerPool in the bench process, on the Redis store, jobs created first
 * and untimed), each comparison in alternated rounds on the same Redis.
 *
 * (a) Tenants: N jobs of one tenant (`t0`: one flow, so claims take the plain batch path) against N jobs spread
 *     round-robin over `tenants` tenants (`t0`…`t9`: every claim takes turns between them). Both sides use named
 *     tenants, so the per-tenant indexes cost the same; the difference is the fair rotation. Target: ≥ 0.85×.
 * (b) Keys: `queued` jobs (default 100,000) with `queued` distinct concurrency keys against the same number over
 *     10 keys, timed over their first N; the type has `fair_by: key` (keys take turns) and `key_concurrency` equal to
 *     the pool's concurrency, so the cap is checked on every claim but never binds and both sides claim the same
 *     number of jobs at once. One tenant. What differs is the size of the rotation and running-count structures.
 *     Target: not measurably slower (≥ 0.90×, within this machine's round-to-round noise).
 *
 * Each row's ratio is the median of the per-round jobs/s ratios (what the target judges); the measure also gives the
 * same comparison by CPU per job (Node + Redis: baseline / test), which moves far less on a shared machine.
 *
 * Usage from bench/run.ts (section "fairness"):
 *
 *   const run = await fairnessBench({ redis, jobs, queued, tenants, concurrencies, keysConcurrency, rounds, timeoutMs, log });
 *   out.push(...fairnessRows(run));
 */
import type { NewJob } from '../src/jobs/job.js';
import type { ClaimLimit } from '../src/store/job-store.js';
import { connectOurStore, oursThroughput, type ThroughputRun } from './engine.js';
import { resetRedis, type BenchRedis } from './redis.js';
import { fmtInt, fmtRatios, median, newJob, noopHandler, PAYLOAD } from './util.js';

/** One round: the run under test and its baseline, back to back, `testFirst` saying which ran first. */
export interface FairnessRound {
  test: ThroughputRun;
  base: ThroughputRun;
  testFirst: boolean;
}

export interface FairnessRun {
  jobs: number;
  tenants: number;
  /** (a) per concurrency. */
  byTenants: { concurrency: number; rounds: FairnessRound[] }[];
  /** (b): `queued` jobs over `queued` keys (test) vs over 10 keys (base), at `concurrency`. */
  byKeys: { concurrency: number; queued: number; rounds: FairnessRound[] } | null;
}

/** The targets of issue #13, applied to the median ratio (test / baseline). */
export const FAIRNESS_TARGETS = {
  tenants: { text: '≥ 0.85× (#13)', meets: (ratio: number) => ratio >= 0.85 },
  keys: { text: '≥ 0.90× (#13: not measurably slower)', meets: (ratio: number) => ratio >= 0.9 },
} as const;

const FEW_KEYS = 10;

const jobOf = (tenant: string, concurrencyKey: string | null = null, fairByKey = false): NewJob => ({
  ...newJob(noopHandler.type, PAYLOAD),
  tenant,
  concurrencyKey,
  fairByKey,
});

async function measured(
  redis: BenchRedis,
  label: string,
  options: {
    concurrency: number;
    jobs: number;
    queued?: number;
    makeJob: (index: number) => NewJob;
    limits?: Record<string, ClaimLimit>;
    timeoutMs: number;
  },
): Promise<ThroughputRun> {
  await resetRedis(redis);
  const store = await connectOurStore(redis, label);
  try {
    return await oursThroughput({ store, costRedis: redis.admin, ...options });
  } finally {
    await store.close();
  }
}

async function alternatedRound(
  round: number,
  test: () => Promise<ThroughputRun>,
  base: () => Promise<ThroughputRun>,
): Promise<FairnessRound> {
  const testFirst = round % 2 === 0;
  if (testFirst) {
    const first = await test();
    return { test: first, base: await base(), testFirst };
  }
  const first = await base();
  return { test: await test(), base: first, testFirst };
}

/** Node (the bench process) + Redis CPU per job, µs; NaN when not measured. */
const cpuPerJob = (run: ThroughputRun): number => (run.cost ? run.cost.nodeCpuUs + run.cost.redisCpuUs : Number.NaN);

const runLine = (run: ThroughputRun) => {
  const redisUs = run.cost
    ? `, CPU per job: Node ${run.cost.nodeCpuUs.toFixed(0)} µs + Redis ${run.cost.redisCpuUs.toFixed(0)} µs`
    : '';
  const perClaim = run.probe
    ? `, ${(run.probe.claimedJobs / Math.max(1, run.probe.claimCalls + run.probe.finishAndClaimCalls)).toFixed(2)} jobs per claiming call`
    : '';
  return `${fmtInt(run.jobsPerS)} jobs/s (${run.completed}/${run.jobs} in ${run.seconds.toFixed(2)} s${redisUs}${perClaim}; created at ${fmtInt(run.addPerS)}/s)`;
};

export async function fairnessBench(options: {
  redis: BenchRedis;
  /** Timed jobs per run. */
  jobs: number;
  /** (b): jobs queued, and distinct keys of the many-keys side. */
  queued: number;
  tenants: number;
  /** (a) runs at each of these. */
  concurrencies: number[];
  /** (b) runs at this one (its 2 × `queued` creates per round are the section's main cost). */
  keysConcurrency: number;
  rounds: number;
  timeoutMs: number;
  log: (message: string) => void;
}): Promise<FairnessRun> {
  const { redis, jobs, queued, tenants, rounds, timeoutMs, log } = options;
  log(
    `8. fairness: (a) ${jobs} no-op jobs of 1 tenant vs spread over ${tenants}, concurrency ${options.concurrencies.join(', ')}; ` +
      `(b) ${queued} queued jobs over ${queued} concurrency keys vs ${FEW_KEYS} keys (fair_by key), first ${jobs} timed, concurrency ${options.keysConcurrency}; ${rounds} alternated round(s)`,
  );
  {
    // Warm-up of the rotation and key paths (JIT, script cache), not recorded.
    const warm = Math.min(2000, jobs);
    await measured(redis, 'fwarm', {
      concurrency: 10,
      jobs: warm,
      makeJob: (i) => jobOf(`t${i % tenants}`, `k${i}`, true),
      limits: { [noopHandler.type]: { keyConcurrency: 10 } },
      timeoutMs,
    });
    log(`  warmed up the fair paths with ${warm} jobs`);
  }

  const byTenants: FairnessRun['byTenants'] = options.concurrencies.map((concurrency) => ({ concurrency, rounds: [] }));
  const keysLimits = { [noopHandler.type]: { keyConcurrency: options.keysConcurrency } };
  const keyRounds: FairnessRound[] = [];
  for (let round = 0; round < rounds; round++) {
    const tag = `round ${round + 1}/${rounds}`;
    for (const row of byTenants) {
      const c = row.concurrency;
      const pair = await alternatedRound(
        round,
        async () => {
          const run = await measured(redis, `ften${c}`, {
            concurrency: c,
            jobs,
            makeJob: (i) => jobOf(`t${i % tenants}`),
            timeoutMs,
          });
          log(`  ${tag} ${tenants} tenants c=${c}: ${runLine(run)}`);
          return run;
        },
        async () => {
          const run = await measured(redis, `fone${c}`, {
            concurrency: c,
            jobs,
            makeJob: () => jobOf('t0'),
            timeoutMs,
          });
          log(`  ${tag} 1 tenant    c=${c}: ${runLine(run)}`);
          return run;
        },
      );
      row.rounds.push(pair);
      log(
        `  ${tag} c=${c}: ${tenants} tenants ${(pair.test.jobsPerS / pair.base.jobsPerS).toFixed(2)}× 1 tenant (${pair.testFirst ? `${tenants} tenants` : '1 tenant'} first)`,
      );
    }
    const c = options.keysConcurrency;
    const pair = await alternatedRound(
      round,
      async () => {
        const run = await measured(redis, `fkmany`, {
          concurrency: c,
          jobs,
          queued,
          makeJob: (i) => jobOf('t0', `k${i}`, true),
          limits: keysLimits,
          timeoutMs,
        });
        log(`  ${tag} ${queued} keys c=${c}: ${runLine(run)}`);
        return run;
      },
      async () => {
        const run = await measured(redis, `fkfew`, {
          concurrency: c,
          jobs,
          queued,
          makeJob: (i) => jobOf('t0', `k${i % FEW_KEYS}`, true),
          limits: keysLimits,
          timeoutMs,
        });
        log(`  ${tag} ${FEW_KEYS} keys     c=${c}: ${runLine(run)}`);
        return run;
      },
    );
    keyRounds.push(pair);
    log(
      `  ${tag}: ${queued} keys ${(pair.test.jobsPerS / pair.base.jobsPerS).toFixed(2)}× ${FEW_KEYS} keys (${pair.testFirst ? `${queued} keys` : `${FEW_KEYS} keys`} first)`,
    );
  }
  await resetRedis(redis);
  return {
    jobs,
    tenants,
    byTenants,
    byKeys: { concurrency: options.keysConcurrency, queued, rounds: keyRounds },
  };
}

type Row = [string, string, string, string, string, string, string];

function row(options: {
  measure: string;
  rounds: FairnessRound[];
  testNote: string;
  baseNote: string;
  target: { text: string; meets: (ratio: number) => boolean };
}): Row {
  const { rounds } = options;
  const ratios = rounds.map((pair) => pair.test.jobsPerS / pair.base.jobsPerS);
  const ratio = median(ratios);
  const clean = rounds.every((pair) => !pair.test.timedOut && !pair.base.timedOut);
  const redisUs = (runs: ThroughputRun[]) =>
    runs.every((run) => run.cost)
      ? `, CPU per job: Node ${median(runs.map((run) => run.cost!.nodeCpuUs)).toFixed(0)} µs + Redis ${median(runs.map((run) => run.cost!.redisCpuUs)).toFixed(0)} µs`
      : '';
  const test = rounds.map((pair) => pair.test);
  const base = rounds.map((pair) => pair.base);
  // CPU per job moves far less than a rate on a shared machine: the same comparison as a rate (baseline CPU / test CPU).
  const cpuRatios = rounds.map((pair) => cpuPerJob(pair.base) / cpuPerJob(pair.test));
  return [
    '8 fairness',
    `${options.measure}${rounds.length > 1 ? `, median of ${rounds.length} rounds` : ', one round'}; by Node + Redis CPU per job: ${fmtRatios(cpuRatios)}`,
    `${fmtInt(median(test.map((run) => run.jobsPerS)))} ${options.testNote}${redisUs(test)})${clean ? '' : ' (timed out)'}`,
    `${fmtInt(median(base.map((run) => run.jobsPerS)))} ${options.baseNote}${redisUs(base)})`,
    fmtRatios(ratios),
    options.target.text,
    Number.isNaN(ratio) ? 'n/a' : options.target.meets(ratio) && clean ? 'PASS' : '**MISS**',
  ];
}

/** The report rows, shaped as bench/run.ts's: [section, measure, ours, reference, ratio, target, result]. */
export function fairnessRows(run: FairnessRun): Row[] {
  const rows = run.byTenants.map(({ concurrency, rounds }) =>
    row({
      measure: `no-op jobs/s, concurrency ${concurrency}, ${fmtInt(run.jobs)} jobs spread over ${run.tenants} tenants (claims take turns) vs all of one tenant`,
      rounds,
      testNote: `(${run.tenants} tenants`,
      baseNote: '(1 tenant',
      target: FAIRNESS_TARGETS.tenants,
    }),
  );
  if (run.byKeys) {
    const { concurrency, queued, rounds } = run.byKeys;
    rows.push(
      row({
        measure: `no-op jobs/s, concurrency ${concurrency}, first ${fmtInt(run.jobs)} of ${fmtInt(queued)} queued jobs of a \`fair_by: key\`, \`key_concurrency: ${concurrency}\` type: ${fmtInt(queued)} distinct keys vs ${FEW_KEYS} keys`,
        rounds,
        testNote: `(${fmtInt(queued)} keys`,
        baseNote: `(${FEW_KEYS} keys`,
        target: FAIRNESS_TARGETS.keys,
      }),
    );
  }
  return rows;
}
