import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './wait-for.js';

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export const hasRedisServerBinary = (): boolean => spawnSync('redis-server', ['--version']).status === 0;

export interface SpawnedRedis {
  url: string;
  port: number;
  dir: string;
  readonly pid: number | undefined;
  /** Sends a signal to the server process (SIGKILL to crash it, SIGSTOP/SIGCONT to pause it). */
  signal(signal: NodeJS.Signals): void;
  /** Starts it again on the same port and directory (an AOF file there is replayed). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A redis-server of the test's own, on a free port in a temp dir: tests may kill, pause and restart it.
 * `appendonly` turns on AOF with fsync always, so a SIGKILL loses nothing acknowledged.
 */
export async function spawnRedis(options: { appendonly?: boolean } = {}): Promise<SpawnedRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ajs-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'no'];
  if (options.appendonly) args.push('--appendonly', 'yes', '--appendfsync', 'always');
  else args.push('--appendonly', 'no');
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;

  const start = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    child.unref();
    await waitForRedis(url, 10_000);
  };
  await start();

  return {
    url,
    port,
    dir,
    get pid() {
      return child?.pid;
    },
    signal(signal) {
      child?.kill(signal);
    },
    async restart() {
      await start();
    },
    async stop() {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until the Redis at `url` answers PING (a new connection per try); the error names the last failure. */
export async function waitForRedis(url: string, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 500,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.ping();
        return true;
      } finally {
        client.disconnect();
      }
    },
    { timeoutMs, intervalMs: 50, what: `redis at ${url} to answer` },
  );
}
