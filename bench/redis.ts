import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../test/helpers/redis-server.js';
import { sleep, stopChild } from './util.js';

/** Every key the bench writes starts with one of these, so an overridden (shared) Redis can be cleaned. */
export const BENCH_KEY_PATTERNS = ['{bench-*', 'benchbull:*'];

export interface BenchRedis {
  url: string;
  host: string;
  port: number;
  /** True when the bench spawned this server (then it may FLUSHALL it, and kills it at the end). */
  dedicated: boolean;
  admin: Redis;
  stop(): Promise<void>;
}

/** BENCH_REDIS_URL when set, else a redis-server of our own on a free port, persistence off. */
export async function openBenchRedis(): Promise<BenchRedis> {
  const override = process.env.BENCH_REDIS_URL;
  if (override) {
    const parsed = new URL(override);
    // The bench loads what it talks to: only this machine's loopback is a fair (and allowed) target.
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(parsed.hostname)) {
      throw new Error(
        `BENCH_REDIS_URL must point at a loopback address (127.x.x.x, localhost, [::1]), got ${parsed.hostname}`,
      );
    }
    const admin = new Redis(override, { maxRetriesPerRequest: 1 });
    await admin.ping();
    return {
      url: override,
      host: parsed.hostname,
      port: Number(parsed.port || 6379),
      dedicated: false,
      admin,
      stop: async () => {
        await admin.quit();
      },
    };
  }
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error('redis-server is not installed (apt-get install redis-server), and BENCH_REDIS_URL is not set');
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ajs-bench-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  admin.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await admin.connect();
      await admin.ping();
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the bench's redis-server on port ${port} did not answer: ${(error as Error).message}`, {
          cause: error,
        });
      }
      admin.disconnect();
      await sleep(50);
    }
  }
  return {
    url,
    host: '127.0.0.1',
    port,
    dedicated: true,
    admin,
    stop: async () => {
      admin.disconnect();
      await stopChild(child);
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Empties what the bench wrote: FLUSHALL on our own server, else deletes only the bench's keys. */
export async function resetRedis(redis: BenchRedis): Promise<void> {
  if (redis.dedicated) {
    await redis.admin.flushall('SYNC');
    return;
  }
  for (const pattern of BENCH_KEY_PATTERNS) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.admin.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
      cursor = next;
      if (keys.length > 0) await redis.admin.unlink(...keys);
    } while (cursor !== '0');
  }
}

export async function info(redis: Redis, section: string): Promise<Record<string, string>> {
  const text = await redis.info(section);
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

export async function usedMemory(redis: Redis): Promise<number> {
  return Number((await info(redis, 'memory')).used_memory);
}

/** Redis server CPU seconds (user + sys, main and background threads). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const cpu = await info(redis, 'cpu');
  return Number(cpu.used_cpu_user) + Number(cpu.used_cpu_sys);
}

/** Command name → calls, from INFO commandstats (commands run inside Lua scripts count too). */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const stats = await info(redis, 'commandstats');
  const calls = new Map<string, number>();
  for (const [key, value] of Object.entries(stats)) {
    if (!key.startsWith('cmdstat_')) continue;
    const match = /calls=(\d+)/.exec(value);
    if (match) calls.set(key.slice('cmdstat_'.length), Number(match[1]));
  }
  return calls;
}

export interface CostSnapshot {
  calls: Map<string, number>;
  redisCpu: number;
  nodeCpu: NodeJS.CpuUsage;
}

export async function costSnapshot(redis: Redis): Promise<CostSnapshot> {
  return { calls: await commandCalls(redis), redisCpu: await redisCpuSeconds(redis), nodeCpu: process.cpuUsage() };
}

export interface CostPerJob {
  /** Command → calls per job, biggest first (the INFO calls of the measurement itself excluded). */
  commands: [string, number][];
  totalCommands: number;
  redisCpuUs: number;
  nodeCpuUs: number;
}

export function costPerJob(before: CostSnapshot, after: CostSnapshot, jobs: number): CostPerJob {
  const commands: [string, number][] = [];
  let total = 0;
  for (const [name, calls] of after.calls) {
    if (name === 'info') continue;
    const delta = calls - (before.calls.get(name) ?? 0);
    if (delta <= 0) continue;
    total += delta / jobs;
    if (delta / jobs < 0.005) continue; // connection set-up and the like, not per-job work
    commands.push([name, delta / jobs]);
  }
  commands.sort((a, b) => b[1] - a[1]);
  return {
    commands,
    totalCommands: total,
    redisCpuUs: ((after.redisCpu - before.redisCpu) * 1e6) / jobs,
    nodeCpuUs: (after.nodeCpu.user + after.nodeCpu.system - before.nodeCpu.user - before.nodeCpu.system) / jobs,
  };
}

export async function machineLine(redis: Redis): Promise<string> {
  const nproc = spawnSync('nproc').stdout?.toString().trim() || 'unknown';
  let cpu = 'unknown CPU';
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (model) cpu = model[1]!.trim();
  } catch {
    // not Linux: keep "unknown"
  }
  const server = await info(redis, 'server');
  return `nproc ${nproc}, ${cpu}, Node ${process.version}, Redis ${server.redis_version ?? 'unknown'}`;
}
