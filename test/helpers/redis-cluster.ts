import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForRedis } from './redis-server.js';
import { waitFor } from './wait-for.js';

export interface SpawnedCluster {
  /** One node's URL: the store discovers the others. */
  url: string;
  stop(): Promise<void>;
}

/** A 3-master Redis Cluster (no replicas) from redis-server binaries, on free ports in a temp dir. */
export async function spawnRedisCluster(): Promise<SpawnedCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'ajs-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
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
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '2000',
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      child.unref();
      children.push(child);
    }
    for (const port of ports) await waitForRedis(`redis://127.0.0.1:${port}`, 10_000);
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stderr || created.stdout}`);
    await waitForClusterOk(ports[0]!, 15_000);
    return { url: `redis://127.0.0.1:${ports[0]}`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitForClusterOk(port: number, timeoutMs: number): Promise<void> {
  const client = new Redis(port, '127.0.0.1');
  try {
    await waitFor(async () => String(await client.cluster('INFO')).includes('cluster_state:ok'), {
      timeoutMs,
      intervalMs: 100,
      what: `the cluster on port ${port} to be ok`,
    });
  } finally {
    client.disconnect();
  }
}
