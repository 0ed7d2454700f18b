import { Cluster, Redis, ReplyError, type RedisOptions } from 'ioredis';
import { withDeadline } from '../deadline.js';
import { StoreUnavailableError } from '../store/job-store.js';

/*
 * How the Redis-backed stores (jobs, src/store/redis-job-store.ts; operator state, src/ops/redis-ops-store.ts)
 * talk to Redis: one client kind, one deadline rule, one way to tell an outage from a bug, one way to
 * open a pub/sub connection.
 */

export interface RedisConnectionOptions {
  url: string;
  /** Treat `url` as one node of a Redis Cluster. */
  cluster?: boolean;
  /** Sentinel addresses; `url` then only carries the password (and TLS, with rediss://). */
  sentinels?: { host: string; port: number }[];
  sentinelMaster?: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /**
   * Commands sent at once rather than gathered into the next auto-pipeline: the worker's claim and finish
   * scripts already carry a batch each, and the pipeline's bookkeeping costs more per call than it saves.
   */
  unpipelinedCommands?: string[];
}

/**
 * Reply errors that mean "Redis cannot serve right now", not "our script is wrong". MOVED and ASK (the command not run)
 * come from a Cluster whose slots moved, e.g. to a promoted replica, while ioredis still routed by its old map: ioredis
 * follows them itself, but not in an auto-pipelined batch where other commands succeeded (ioredis issue #2075).
 */
const transientReply = /^(LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|MOVED |ASK )/;

/** Connection trouble (and transient replies) as StoreUnavailableError; a genuine reply error (our bug) as it is. */
export function storeError(error: unknown): Error {
  if (error instanceof StoreUnavailableError) return error;
  if (error instanceof ReplyError && !transientReply.test((error as Error).message)) return error as Error;
  return new StoreUnavailableError(`Redis is unavailable: ${(error as Error).message}`, { cause: error });
}

/**
 * Runs Redis work within `ms`, failing as storeError says. ioredis's own commandTimeout starts only when a
 * command is sent, and with auto-pipelining a command may first wait behind the batch in flight: the
 * deadline covers the whole wait.
 */
export async function guardRedis<T>(operation: () => Promise<T>, ms: number): Promise<T> {
  try {
    return await withDeadline(operation(), ms);
  } catch (error) {
    throw storeError(error);
  }
}

/**
 * A connection of its own for pub/sub (it queues while reconnecting, and ioredis re-subscribes after). `sharded`, on a
 * Cluster: one subscriber per master for sharded channels (SSUBSCRIBE), following the slots through a failover.
 */
export function subscriberFor(redis: RedisClient, { sharded = false }: { sharded?: boolean } = {}): RedisClient {
  const subscriber =
    redis instanceof Cluster
      ? redis.duplicate([], { enableOfflineQueue: true, shardedSubscribers: sharded })
      : redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, lazyConnect: false });
  subscriber.on('error', () => undefined); // a lost connection reconnects; its commands answer through guardRedis
  return subscriber;
}

export type RedisClient = Redis | Cluster;

/** A standalone, Sentinel-managed or Cluster client, all failing fast instead of queueing while disconnected. */
export function createClient(options: RedisConnectionOptions): RedisClient {
  const url = new URL(options.url);
  const auth = {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  const common: RedisOptions = {
    lazyConnect: true,
    // Fail fast instead of queueing while disconnected: callers get a 503 within seconds, not a hang.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: options.connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  };
  const pipelining = { enableAutoPipelining: true, autoPipeliningIgnoredCommands: options.unpipelinedCommands ?? [] };
  if (options.cluster) {
    return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
      lazyConnect: true,
      enableOfflineQueue: false,
      ...pipelining,
      redisOptions: { ...common, ...auth },
      clusterRetryStrategy: (attempt) => Math.min(attempt * 200, 2000),
      // Such a batch's MOVED does not correct ioredis's slot map either, and ioredis 5 no longer re-reads the map on a
      // timer by default: re-read it every 5 s, so no route stays stale longer after a failover or a resharding.
      slotsRefreshInterval: 5000,
    });
  }
  if (options.sentinels && options.sentinels.length > 0) {
    return new Redis({
      ...common,
      ...auth,
      ...pipelining,
      sentinels: options.sentinels,
      name: options.sentinelMaster ?? 'mymaster',
      ...(auth.password ? { sentinelPassword: auth.password } : {}),
    });
  }
  return new Redis(options.url, { ...common, ...pipelining });
}

/** QUIT, but never wait on a Redis that does not answer: disconnect after `timeoutMs`. */
export async function quit(client: RedisClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([client.quit().catch(() => undefined), timeout]);
  clearTimeout(timer);
  client.disconnect();
}
