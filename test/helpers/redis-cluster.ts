import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { freePort, waitForRedis } from './redis-server.js';
import { waitFor } from './wait-for.js';

/** A master of the spawned cluster as it was created (a failover later moves its slots to its replica). */
export interface ClusterMaster {
  port: number;
  pid: number | undefined;
  /** The node id (CLUSTER MYID). */
  id: string;
  /** The slot ranges it serves, inclusive: [first, last]. */
  slots: [number, number][];
  /** Its replica's port (with `replicas: 1`). */
  replicaPort?: number;
}

export interface ClusterReplica {
  port: number;
  pid: number | undefined;
  id: string;
  masterPort: number;
}

export interface SpawnedCluster {
  /** One node's URL (the first master's): the store discovers the others. */
  url: string;
  masters: ClusterMaster[];
  replicas: ClusterReplica[];
  /** SIGKILLs the node on `port` and waits (at most 5 s) for its exit. */
  killNode(port: number): Promise<void>;
  stop(): Promise<void>;
}

export interface SpawnClusterOptions {
  /** Replicas per master (0: 3 nodes; 1: 6 nodes, failover possible). */
  replicas?: number;
  /**
   * `cluster-require-full-coverage` (Redis's default: true). With it, every node refuses every command (CLUSTERDOWN)
   * while some slot has no live master: between a master's FAIL and its replica's promotion.
   */
  requireFullCoverage?: boolean;
}

const MASTERS = 3;
/**
 * Short, so a replica is promoted within a few seconds of its master's death (FAIL after this, election after), but
 * not so short that a node starved of CPU by a loaded test machine is taken for dead.
 */
const NODE_TIMEOUT_MS = 2000;

/**
 * A Redis Cluster of 3 masters (and `replicas` replicas each) from redis-server binaries, on free ports in a temp dir.
 * Returns once every node sees the cluster ok and every replica has synced with its master (so a failover can happen).
 */
export async function spawnRedisCluster(options: SpawnClusterOptions = {}): Promise<SpawnedCluster> {
  const replicasPerMaster = options.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'ajs-cluster-'));
  const ports: number[] = [];
  const busPorts = new Map<number, number>();
  const used = new Set<number>();
  const unusedPort = async (): Promise<number> => {
    let port = await freePort();
    while (used.has(port)) port = await freePort();
    used.add(port);
    return port;
  };
  for (let i = 0; i < MASTERS * (1 + replicasPerMaster); i++) {
    const port = await unusedPort();
    ports.push(port);
    // A node's cluster bus port is its port + 10000 unless set, and redis-server refuses a port over 55535 then
    // (freePort answers up to 60999 here): each node gets a free bus port of its own.
    busPorts.set(port, await unusedPort());
  }
  const children = new Map<number, ChildProcess>();
  const exitOf = (child: ChildProcess): Promise<void> =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  const stop = async () => {
    await Promise.all([...children.values()].map(exitOf));
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
          '--cluster-port',
          String(busPorts.get(port)),
          '--cluster-node-timeout',
          String(NODE_TIMEOUT_MS),
          // A replica may always take over, however long ago it last heard from its master.
          '--cluster-replica-validity-factor',
          '0',
          '--cluster-require-full-coverage',
          options.requireFullCoverage === false ? 'no' : 'yes',
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      child.unref();
      children.set(port, child);
    }
    for (const port of ports) await waitForRedis(`redis://127.0.0.1:${port}`, 10_000);
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stderr || created.stdout}`);
    const topology = await waitForClusterReady(ports, MASTERS, replicasPerMaster, 20_000);
    const masters: ClusterMaster[] = topology.masters.map((master) => ({
      ...master,
      pid: children.get(master.port)?.pid,
    }));
    const replicas: ClusterReplica[] = topology.replicas.map((replica) => {
      const master = masters.find((each) => each.id === replica.masterId)!;
      master.replicaPort = replica.port;
      return { port: replica.port, id: replica.id, masterPort: master.port, pid: children.get(replica.port)?.pid };
    });
    const first = masters.reduce((a, b) => (a.slots[0]![0] < b.slots[0]![0] ? a : b));
    return {
      url: `redis://127.0.0.1:${first.port}`,
      masters,
      replicas,
      async killNode(port) {
        const child = children.get(port);
        if (!child) throw new Error(`no node of this cluster on port ${port}`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          exitOf(child),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`redis-server on port ${port} did not exit`)), 5000);
          }),
        ]).finally(() => clearTimeout(timer));
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string | null;
  linkState: string;
  slots: [number, number][];
}

/** CLUSTER NODES, parsed (slot ranges only: migrating/importing entries are skipped). */
export async function clusterNodes(port: number): Promise<NodeLine[]> {
  const client = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return parseClusterNodes(String(await client.cluster('NODES')));
  } finally {
    client.disconnect();
  }
}

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, master, , , , linkState, ...slots] = line.trim().split(' ');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':')[1]),
        flags: flags!.split(','),
        masterId: master === '-' ? null : master!,
        linkState: linkState!,
        slots: slots
          .filter((slot) => !slot.startsWith('['))
          .map((slot): [number, number] => {
            const [from, to] = slot.split('-').map(Number);
            return [from!, to ?? from!];
          }),
      };
    });
}

/**
 * Waits until every node says cluster_state:ok and sees every node connected, with `masters` masters serving slots
 * and `replicasPerMaster` replicas of each whose replication link is up (a replica not synced cannot take over).
 */
async function waitForClusterReady(
  ports: number[],
  masters: number,
  replicasPerMaster: number,
  timeoutMs: number,
): Promise<{ masters: Omit<ClusterMaster, 'pid'>[]; replicas: { port: number; id: string; masterId: string }[] }> {
  const clients = ports.map((port) => {
    const client = new Redis(port, '127.0.0.1');
    client.on('error', () => undefined);
    return client;
  });
  try {
    return await waitFor(
      async () => {
        let view: NodeLine[] | undefined;
        for (const client of clients) {
          if (!String(await client.cluster('INFO')).includes('cluster_state:ok')) return undefined;
          const nodes = parseClusterNodes(String(await client.cluster('NODES')));
          if (nodes.length !== ports.length || nodes.some((node) => node.linkState !== 'connected')) return undefined;
          view ??= nodes;
        }
        const masterLines = view!.filter((node) => node.flags.includes('master') && node.slots.length > 0);
        const replicaLines = view!.filter((node) => node.flags.includes('slave'));
        if (masterLines.length !== masters || replicaLines.length !== masters * replicasPerMaster) return undefined;
        for (const master of masterLines) {
          if (replicaLines.filter((replica) => replica.masterId === master.id).length !== replicasPerMaster)
            return undefined;
        }
        for (const replica of replicaLines) {
          const info = String(await clients[ports.indexOf(replica.port)]!.info('replication'));
          if (!info.includes('master_link_status:up') || !info.includes('master_sync_in_progress:0')) return undefined;
        }
        return {
          masters: masterLines.map(({ id, port, slots }) => ({ id, port, slots })),
          replicas: replicaLines.map(({ id, port, masterId }) => ({ id, port, masterId: masterId! })),
        };
      },
      { timeoutMs, intervalMs: 100, what: `the cluster on ports ${ports.join(', ')} to be ok with replicas in sync` },
    );
  } finally {
    for (const client of clients) client.disconnect();
  }
}

/**
 * A 3-master cluster of the enclosing describe block's own: spawned before its tests, stopped after them. Read its
 * `url` inside tests.
 */
export function useSpawnedCluster(): { readonly url: string } {
  let cluster: SpawnedCluster | undefined;
  beforeAll(async () => {
    cluster = await spawnRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  return {
    get url() {
      if (!cluster) throw new Error('the cluster of this block is not started yet: use it inside tests');
      return cluster.url;
    },
  };
}
