/**
 * The cluster section of `npm run bench` (issue #15): the engine workload of section 1 (no-op jobs with a 120-byte
 * payload, created first and untimed, then a WorkerPool timed until all succeeded) on a Redis Cluster of 1, 2 and 3
 * masters, with RedisJobStore's default partitions (4 per master, each under its own hash tag, placed on the masters
 * in turn).
 *
 * Every run spawns a fresh cluster (redis-server binaries, no replicas, persistence off, free ports of 127.0.0.1, a
 * temp dir; slots split evenly with CLUSTER ADDSLOTSRANGE and joined with CLUSTER MEET, since `redis-cli --cluster
 * create` refuses fewer than 3 masters; a 1-master cluster holds all 16384 slots) and stops it after the run. Per run
 * and master, over the timed part: Redis CPU (`INFO cpu` user + sys) and commands (`INFO commandstats`, all calls but
 * INFO); after the run: job keys (SCAN of the prefix's `job:` keys) and `used_memory` after − before (the store's
 * clients closed). All masters share this machine's cores, so the measured jobs/s hardly grows with masters; the
 * speed-up the spread allows is what each master's CPU per job says: 1-master Redis CPU per job / the busiest master's,
 * the throughput gain if every master had a core of its own (while Redis is the bottleneck).
 *
 * Rounds alternate the order of the master counts (round 1: 1, 2, 3; round 2: 3, 2, 1; …); every figure is the median
 * over the rounds, every ratio the median of the per-round ratios.
 *
 * Usage from bench/run.ts (section "cluster"):
 *
 *   const run = await clusterBench({ jobs, concurrency, masters: [1, 2, 3], rounds, timeoutMs, log });
 *   out.push(...clusterRows(run));  report += clusterReport(run);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { PARTITIONS_PER_MASTER } from '../src/store/partition-table.js';
import { RedisJobStore } from '../src/store/redis-job-store.js';
import { freePort } from '../test/helpers/redis-server.js';
import { oursThroughput, roundTrips } from './engine.js';
import { commandCalls, redisCpuSeconds, usedMemory } from './redis.js';
import { fmtInt, fmtRatio, fmtRatios, JOB_TTL_MS, median, sleep, stopChild, uniqueSuffix } from './util.js';

const SLOTS = 16_384;

// ------------------------------------------------------------------------------------------- the cluster

interface ClusterNode {
  port: number;
  /** Slots first..last (inclusive). */
  first: number;
  last: number;
  child: ChildProcess;
  admin: Redis;
}

export interface BenchCluster {
  /** One node's URL: the store discovers the others. */
  url: string;
  nodes: ClusterNode[];
  /** The node serving a hash tag's slot. */
  nodeOf(tag: string): number;
  stop(): Promise<void>;
}

async function answered(admin: Redis, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await admin.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`redis-server on port ${port} did not answer: ${(error as Error).message}`, { cause: error });
      await sleep(50);
    }
  }
}

/** Every node sees every node and all slots served. */
async function clusterReady(nodes: ClusterNode[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(nodes.map((node) => node.admin.cluster('INFO')));
    const ready = states.every(
      (state) =>
        state.includes('cluster_state:ok') &&
        state.includes(`cluster_known_nodes:${nodes.length}\r`) &&
        state.includes(`cluster_slots_ok:${SLOTS}\r`),
    );
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`the ${nodes.length}-master cluster did not become ready: ${states[0]}`);
    await sleep(50);
  }
}

/**
 * A Redis Cluster of `masters` masters (no replicas) on free ports of 127.0.0.1, persistence off, in a temp dir; the
 * slots split evenly in order (master 0 has the lowest). Killed on `stop`, or on the bench process's exit.
 */
export async function spawnBenchCluster(masters: number): Promise<BenchCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'ajs-bench-cluster-'));
  const nodes: ClusterNode[] = [];
  const killAll = () => nodes.forEach((node) => node.child.kill('SIGKILL'));
  process.once('exit', killAll);
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const node of nodes) node.admin.disconnect();
      await Promise.all(nodes.map((node) => stopChild(node.child)));
      process.removeListener('exit', killAll);
      rmSync(dir, { recursive: true, force: true });
    })());
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      // Its own bus port: port + 10000 (Redis's default) may be taken or above 65535.
      let busPort = await freePort();
      while (busPort === port) busPort = await freePort();
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          // A node learns its own address only from a peer's MEET: a lone master would announce "" in CLUSTER SLOTS.
          '--cluster-announce-ip',
          '127.0.0.1',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          // No replicas, so no failover to trigger: a long timeout keeps a busy node from being flagged failing.
          '--cluster-node-timeout',
          '15000',
          '--save',
          '',
          '--appendonly',
          'no',
          '--loglevel',
          'warning',
        ],
        { stdio: 'ignore' },
      );
      child.on('error', () => undefined); // a missing binary shows as a node that never answers
      const admin = new Redis(port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        retryStrategy: () => 50,
      });
      admin.on('error', () => undefined);
      const first = Math.floor((i * SLOTS) / masters);
      const last = Math.floor(((i + 1) * SLOTS) / masters) - 1;
      nodes.push({ port, first, last, child, admin });
      await answered(admin, port, 10_000);
      await admin.cluster('ADDSLOTSRANGE', first, last);
      await admin.cluster('SET-CONFIG-EPOCH', i + 1);
      if (i > 0) await nodes[0]!.admin.call('CLUSTER', 'MEET', '127.0.0.1', port, busPort); // typed without the bus port
    }
    await clusterReady(nodes, 20_000);
    const slotOwner = new Uint8Array(SLOTS);
    nodes.forEach((node, index) => slotOwner.fill(index, node.first, node.last + 1));
    return {
      url: `redis://127.0.0.1:${nodes[0]!.port}`,
      nodes,
      nodeOf: (tag) => slotOwner[calculateSlot(tag)]!,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ------------------------------------------------------------------------------------------------ a run

interface NodeSnapshot {
  cpuS: number;
  calls: number;
  /** PUBLISH messages other nodes forwarded to this one over the cluster bus (`CLUSTER INFO`). */
  busPublish: number;
}

async function nodeSnapshot(admin: Redis): Promise<NodeSnapshot> {
  const [cpuS, calls, clusterInfo] = await Promise.all([
    redisCpuSeconds(admin),
    commandCalls(admin),
    admin.cluster('INFO'),
  ]);
  let total = 0;
  for (const [name, count] of calls) if (name !== 'info' && name !== 'cluster|info') total += count;
  const busPublish = Number(/cluster_stats_messages_publish_received:(\d+)/.exec(clusterInfo)?.[1] ?? 0);
  return { cpuS, calls: total, busPublish };
}

/** One master's figures in one run. */
export interface MasterFigures {
  /** Holds the base partition (partition 0: the partition table, fleet-wide limits). */
  base: boolean;
  partitions: number;
  /** Redis CPU over the timed part, per job done. */
  cpuUs: number;
  /** Commands over the timed part (INFO excluded). */
  commands: number;
  /** PUBLISH messages received over the cluster bus during the timed part. */
  busPublish: number;
  jobKeys: number;
  /** used_memory after − before. */
  memoryBytes: number;
}

export interface ClusterRunResult {
  masters: number;
  partitions: number;
  jobs: number;
  completed: number;
  seconds: number;
  jobsPerS: number;
  timedOut: boolean;
  /** The bench process (pool, store, its Cluster client), per job. */
  nodeCpuUs: number;
  /** The pool's store calls (claim, finish, finishAndClaim, nextWakeAt, renewLeases) per job. */
  storeCallsPerJob: number;
  /** Jobs leased per claiming call (claim or finishAndClaim). */
  jobsPerClaim: number;
  /** Base partition's master first, then the others in slot order. */
  perMaster: MasterFigures[];
  /** Sum over masters of used_memory after − before, per job done. */
  bytesPerJob: number;
  spawnSeconds: number;
}

async function clusterRun(options: {
  masters: number;
  jobs: number;
  concurrency: number;
  timeoutMs: number;
}): Promise<ClusterRunResult> {
  const spawnStart = performance.now();
  const cluster = await spawnBenchCluster(options.masters);
  const spawnSeconds = (performance.now() - spawnStart) / 1000;
  try {
    const admins = cluster.nodes.map((node) => node.admin);
    const memoryBefore = await Promise.all(admins.map(usedMemory));
    const keyPrefix = `bench-cluster${options.masters}-${uniqueSuffix()}`;
    const store = await RedisJobStore.connect({
      url: cluster.url,
      cluster: true,
      keyPrefix,
      jobTtlMs: JOB_TTL_MS,
      connectTimeoutMs: 3000,
      commandTimeoutMs: 10_000,
    });
    let before: NodeSnapshot[] = [];
    let after: NodeSnapshot[] = [];
    let nodeCpuBefore = process.cpuUsage();
    let nodeCpuUs = 0;
    const run = await (async () => {
      try {
        return await oursThroughput({
          store,
          concurrency: options.concurrency,
          jobs: options.jobs,
          timeoutMs: options.timeoutMs,
          timed: {
            start: async () => {
              before = await Promise.all(admins.map(nodeSnapshot));
              nodeCpuBefore = process.cpuUsage();
            },
            end: async () => {
              const used = process.cpuUsage(nodeCpuBefore);
              nodeCpuUs = used.user + used.system;
              after = await Promise.all(admins.map(nodeSnapshot));
            },
          },
        });
      } finally {
        await store.close();
      }
    })();
    const done = Math.max(1, run.completed);
    // Where the partitions' tags landed (the table is in the base partition: `{<prefix>}:partitions`).
    const baseNode = cluster.nodeOf(keyPrefix);
    const tags = JSON.parse((await admins[baseNode]!.hget(`{${keyPrefix}}:partitions`, 'tags')) ?? '[]') as string[];
    const partitionsOn = cluster.nodes.map(() => 0);
    for (const tag of tags) partitionsOn[cluster.nodeOf(tag)]!++;
    const jobKeys = await Promise.all(admins.map((admin) => countKeys(admin, `{${keyPrefix}*}:job:*`)));
    const memoryAfter = await Promise.all(admins.map(usedMemory));
    const perMaster = cluster.nodes.map((_, i): MasterFigures => ({
      base: i === baseNode,
      partitions: partitionsOn[i]!,
      cpuUs: ((after[i]!.cpuS - before[i]!.cpuS) * 1e6) / done,
      commands: after[i]!.calls - before[i]!.calls,
      busPublish: after[i]!.busPublish - before[i]!.busPublish,
      jobKeys: jobKeys[i]!,
      memoryBytes: memoryAfter[i]! - memoryBefore[i]!,
    }));
    perMaster.sort((a, b) => Number(b.base) - Number(a.base)); // stable: the others stay in slot order
    return {
      masters: options.masters,
      partitions: tags.length,
      jobs: options.jobs,
      completed: run.completed,
      seconds: run.seconds,
      jobsPerS: run.jobsPerS,
      timedOut: run.timedOut,
      nodeCpuUs: nodeCpuUs / done,
      storeCallsPerJob: run.probe ? roundTrips(run.probe) / done : Number.NaN,
      jobsPerClaim: run.probe
        ? run.probe.claimedJobs / Math.max(1, run.probe.claimCalls + run.probe.finishAndClaimCalls)
        : Number.NaN,
      perMaster,
      bytesPerJob: perMaster.reduce((total, master) => total + master.memoryBytes, 0) / done,
      spawnSeconds,
    };
  } finally {
    await cluster.stop();
  }
}

async function countKeys(admin: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let count = 0;
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    count += keys.length;
  } while (cursor !== '0');
  return count;
}

// ---------------------------------------------------------------------------------------------- section

export interface ClusterRun {
  jobs: number;
  concurrency: number;
  masters: number[];
  /** rounds[r]: that round's runs, in the order of `masters` (whatever order they ran in). */
  rounds: ClusterRunResult[][];
}

export async function clusterBench(options: {
  jobs: number;
  concurrency: number;
  masters: number[];
  rounds: number;
  timeoutMs: number;
  log: (message: string) => void;
}): Promise<ClusterRun> {
  const { jobs, concurrency, masters, log } = options;
  log(
    `9. cluster: no-op jobs, concurrency ${concurrency}, ${fmtInt(jobs)} jobs per run, on ${masters.join(', ')} master(s) (${PARTITIONS_PER_MASTER} partitions per master), ${options.rounds} alternated round(s), a fresh cluster per run`,
  );
  {
    // Warm-up (JIT, the Cluster client's paths), not recorded.
    const warm = await clusterRun({
      masters: Math.max(...masters),
      jobs: Math.min(2000, jobs),
      concurrency,
      timeoutMs: options.timeoutMs,
    });
    log(`  warmed up with ${warm.completed} jobs on ${warm.masters} masters`);
  }
  const rounds: ClusterRunResult[][] = [];
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? masters : [...masters].reverse();
    const byMasters = new Map<number, ClusterRunResult>();
    for (const count of order) {
      const run = await clusterRun({ masters: count, jobs, concurrency, timeoutMs: options.timeoutMs });
      byMasters.set(count, run);
      const share = (pick: (master: MasterFigures) => number) => shares(run.perMaster.map(pick)).join('/');
      log(
        `  round ${round + 1}/${options.rounds} ${count} master(s): ${fmtInt(run.jobsPerS)} jobs/s (${run.completed}/${jobs} in ${run.seconds.toFixed(2)} s${run.timedOut ? ', TIMED OUT' : ''}); ` +
          `Redis CPU µs/job ${run.perMaster.map((master) => master.cpuUs.toFixed(1)).join('/')}, Node ${run.nodeCpuUs.toFixed(1)}; ` +
          `commands ${share((master) => master.commands)}, job keys ${share((master) => master.jobKeys)}, partitions ${run.perMaster.map((master) => master.partitions).join('/')}, bus PUBLISH received ${(run.perMaster.reduce((sum, master) => sum + master.busPublish, 0) / Math.max(1, run.completed)).toFixed(2)}/job; ` +
          `${fmtInt(run.bytesPerJob)} B/job; cluster up in ${run.spawnSeconds.toFixed(1)} s`,
      );
    }
    rounds.push(masters.map((count) => byMasters.get(count)!));
  }
  return { jobs, concurrency, masters, rounds };
}

// ----------------------------------------------------------------------------------------------- report

/** Each value's share of their sum, as a whole percentage. */
function shares(values: number[]): string[] {
  const total = values.reduce((sum, value) => sum + value, 0);
  return values.map((value) => (total > 0 ? `${Math.round((value / total) * 100)}%` : 'n/a'));
}

const busiest = (run: ClusterRunResult): number => Math.max(...run.perMaster.map((master) => master.cpuUs));

/** Per-round figures of one master count (index into `run.masters`), each figure's median over the rounds. */
function summary(run: ClusterRun, index: number) {
  const runs = run.rounds.map((round) => round[index]!);
  const ones = run.rounds.map((round) => round[run.masters.indexOf(1)]);
  const perMaster = (pick: (master: MasterFigures) => number) =>
    runs[0]!.perMaster.map((_, i) => median(runs.map((each) => pick(each.perMaster[i]!))));
  const shareOf = (pick: (master: MasterFigures) => number) =>
    runs[0]!.perMaster.map((_, i) =>
      median(
        runs.map((each) => {
          const total = each.perMaster.reduce((sum, master) => sum + pick(master), 0);
          return total > 0 ? pick(each.perMaster[i]!) / total : Number.NaN;
        }),
      ),
    );
  return {
    masters: runs[0]!.masters,
    partitions: runs[0]!.partitions,
    partitionsPerMaster: runs[0]!.perMaster.map((master) => master.partitions),
    jobsPerS: median(runs.map((each) => each.jobsPerS)),
    speedUps: runs.map((each, r) => (ones[r] ? each.jobsPerS / ones[r].jobsPerS : Number.NaN)),
    allowed: runs.map((each, r) => (ones[r] ? busiest(ones[r]) / busiest(each) : Number.NaN)),
    cpuUs: perMaster((master) => master.cpuUs),
    busiestUs: median(runs.map(busiest)),
    totalRedisUs: median(runs.map((each) => each.perMaster.reduce((sum, master) => sum + master.cpuUs, 0))),
    nodeCpuUs: median(runs.map((each) => each.nodeCpuUs)),
    storeCalls: median(runs.map((each) => each.storeCallsPerJob)),
    jobsPerClaim: median(runs.map((each) => each.jobsPerClaim)),
    commandShare: shareOf((master) => master.commands),
    commandsPerJob: median(
      runs.map(
        (each) => each.perMaster.reduce((sum, master) => sum + master.commands, 0) / Math.max(1, each.completed),
      ),
    ),
    keyShare: shareOf((master) => master.jobKeys),
    busPublishPerJob: median(
      runs.map(
        (each) => each.perMaster.reduce((sum, master) => sum + master.busPublish, 0) / Math.max(1, each.completed),
      ),
    ),
    bytesPerJob: median(runs.map((each) => each.bytesPerJob)),
    timedOut: runs.filter((each) => each.timedOut).length,
  };
}

const pct = (values: number[]) =>
  values.map((value) => (Number.isFinite(value) ? `${Math.round(value * 100)}%` : 'n/a')).join(' / ');
const us = (values: number[]) => values.map((value) => value.toFixed(1)).join(' / ');

type Row = [string, string, string, string, string, string, string];

/** The main table's rows, shaped as bench/run.ts's: each master count above 1 against 1 master (info, no target). */
export function clusterRows(run: ClusterRun): Row[] {
  const one = run.masters.indexOf(1);
  if (one < 0) return [];
  const base = summary(run, one);
  return run.masters
    .map((count, index) => ({ count, index }))
    .filter(({ count }) => count !== 1)
    .map(({ count, index }) => {
      const each = summary(run, index);
      return [
        '9 cluster',
        `no-op jobs/s, concurrency ${run.concurrency}, ${fmtInt(run.jobs)} jobs, ${count} masters vs 1 (${count * PARTITIONS_PER_MASTER} vs ${PARTITIONS_PER_MASTER} partitions; all on this machine's cores${run.rounds.length > 1 ? `, median of ${run.rounds.length} rounds` : ', one round'}); the spread allows ${fmtRatios(each.allowed)} (1-master Redis CPU per job / busiest master's)`,
        `${fmtInt(each.jobsPerS)} (${count} masters)${each.timedOut ? ` (${each.timedOut} run(s) timed out)` : ''}`,
        `${fmtInt(base.jobsPerS)} (1 master)${base.timedOut ? ` (${base.timedOut} run(s) timed out)` : ''}`,
        fmtRatios(each.speedUps),
        '—',
        'info',
      ];
    });
}

/** The section's own table and the sizing rule, for bench/results.md. */
export function clusterReport(run: ClusterRun): string {
  const all = run.masters.map((_, index) => summary(run, index));
  const one = all.find((each) => each.masters === 1);
  const lines = [
    `### Cluster (section 9: ${fmtInt(run.jobs)} no-op jobs per run, concurrency ${run.concurrency}, a fresh cluster per run, each figure the median over ${run.rounds.length} round(s); per master: the base partition's master first, then the others in slot order)`,
    '',
    '| Masters | Partitions (per master) | Jobs/s | Speed-up vs 1 master (measured) | Redis CPU µs/job per master | Busiest master µs/job | Speed-up the spread allows | Node CPU µs/job | Store calls per job; jobs per claiming call | Redis commands per job; share per master | Job-key share per master | PUBLISH received over the cluster bus per job (all masters) | Bytes per job (all masters) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...all
      .map((each) =>
        [
          each.masters,
          `${each.partitions} (${each.partitionsPerMaster.join(' / ')})`,
          `${fmtInt(each.jobsPerS)}${each.timedOut ? ` (${each.timedOut} timed out)` : ''}`,
          each.masters === 1 ? '1×' : fmtRatios(each.speedUps),
          `${us(each.cpuUs)} (sum ${each.totalRedisUs.toFixed(1)})`,
          each.busiestUs.toFixed(1),
          each.masters === 1 ? '1×' : fmtRatios(each.allowed),
          each.nodeCpuUs.toFixed(1),
          `${each.storeCalls.toFixed(3)}; ${each.jobsPerClaim.toFixed(1)}`,
          `${each.commandsPerJob.toFixed(1)}; ${pct(each.commandShare)}`,
          pct(each.keyShare),
          each.busPublishPerJob.toFixed(2),
          fmtInt(each.bytesPerJob),
        ].join(' | '),
      )
      .map((row) => `| ${row} |`),
  ];
  if (one) {
    const perCore = 1e6 / one.busiestUs;
    const more = all.filter((each) => each.masters !== 1);
    const scaled = more
      .map(
        (each) =>
          `${fmtInt(1e6 / each.busiestUs)} jobs/s on ${each.masters} (${fmtRatio(median(each.allowed))}; Redis CPU per job summed over the masters ${each.totalRedisUs.toFixed(1)} µs vs ${one.totalRedisUs.toFixed(1)} µs on 1)`,
      )
      .join(', ');
    lines.push(
      '',
      `**Sizing rule** (from these figures): **jobs/s per master core ≈ ${fmtInt(perCore)}** for this workload (1e6 / ${one.busiestUs.toFixed(1)} µs of Redis CPU per job on 1 master; a larger input, a result, retries or progress writes cost more). With M masters, each on a core of its own, a cluster carries about 1e6 / (the busiest master's µs per job)${scaled ? `: here ${scaled}` : ''}; the Redis CPU per job summed over the masters (${[one, ...more].map((each) => `${each.totalRedisUs.toFixed(1)} µs on ${each.masters}`).join(', ')}) shows what the spread itself costs: a job's signals are sharded (SPUBLISH: ${more.map((each) => `${each.busPublishPerJob.toFixed(2)} PUBLISH received over the cluster bus per job on ${each.masters}`).join(', ')}), and a claim visits partitions in turn. The workers (Node: ${one.nodeCpuUs.toFixed(1)} µs of CPU per job here) scale with instances, not masters. **Bytes per job ≈ ${fmtInt(one.bytesPerJob)}** per finished job on 1 master (120-byte input, kept JOB_TTL_S; ${more.map((each) => `${fmtInt(each.bytesPerJob)} summed over ${each.masters}`).join(', ')}): size each master for its share (1/M) of the jobs kept × bytes per job. **Partitions per master: ${PARTITIONS_PER_MASTER}** (the default at start-up; REDIS_PARTITIONS, at most 256): more than one per master so the jobs spread evenly over the masters (each master holds whole partitions; the share columns above), and so that, when masters are added, resharding can move whole partitions (their slots) onto the new ones.`,
    );
  }
  return lines.join('\n');
}
