import type { Logger } from 'pino';
import { maskRedisUrl, type Config } from '../config.js';
import type { JobStore } from './job-store.js';
import { MemoryJobStore } from './memory-job-store.js';
import { RedisJobStore, type RedisJobStoreOptions } from './redis-job-store.js';

export interface StoreSelection {
  store: JobStore;
  /** True when Redis was configured but could not be reached, so jobs live in memory (and /health warns). */
  fallback: boolean;
}

export class RedisRequiredError extends Error {}

/** How to reach the configured Redis (the service's store, and the export/import command's). */
export function redisStoreOptions(config: Config, url: string): RedisJobStoreOptions {
  return {
    url,
    cluster: config.REDIS_CLUSTER,
    partitions: config.REDIS_PARTITIONS,
    sentinels: config.REDIS_SENTINELS?.split(',').map((entry) => {
      const [host, port] = entry.split(':');
      return { host: host!, port: Number(port) };
    }),
    sentinelMaster: config.REDIS_SENTINEL_MASTER,
    compressThresholdBytes: config.COMPRESS_THRESHOLD_BYTES,
    keyPrefix: config.REDIS_KEY_PREFIX,
    jobTtlMs: config.JOB_TTL_S * 1000,
    poisonAfter: config.POISON_AFTER,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  };
}

/**
 * Chooses the store once, at start-up: switching at run time would split jobs between two stores.
 * REDIS_URL unset → memory. Set and reachable → Redis. Set and unreachable → exit when REDIS_REQUIRED,
 * else memory with a loud warning.
 */
export async function createJobStore(config: Config, log: Logger): Promise<StoreSelection> {
  const jobTtlMs = config.JOB_TTL_S * 1000;
  if (!config.REDIS_URL) {
    log.warn('REDIS_URL is not set: jobs are kept in memory and are lost when the process stops');
    return { store: new MemoryJobStore({ jobTtlMs, poisonAfter: config.POISON_AFTER }), fallback: false };
  }
  const url = maskRedisUrl(config.REDIS_URL);
  try {
    const store = await RedisJobStore.connect(redisStoreOptions(config, config.REDIS_URL));
    log.info(
      {
        redis: url,
        keyPrefix: config.REDIS_KEY_PREFIX,
        partitions: store.partitionCount,
        activePartitions: store.active,
      },
      'job store: Redis',
    );
    return { store, fallback: false };
  } catch (error) {
    const reason = (error as Error).message;
    if (config.REDIS_REQUIRED) {
      throw new RedisRequiredError(`REDIS_REQUIRED=true but Redis at ${url} cannot be reached: ${reason}`);
    }
    log.error(
      { redis: url, reason },
      '!!! REDIS_URL is set but Redis cannot be reached: FALLING BACK TO THE IN-MEMORY STORE. Jobs will be lost on restart and are not shared with other instances. Set REDIS_REQUIRED=true to refuse to start instead. !!!',
    );
    return { store: new MemoryJobStore({ jobTtlMs, poisonAfter: config.POISON_AFTER }), fallback: true };
  }
}
