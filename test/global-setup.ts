import 'vitest';
import type { TestProject } from 'vitest/node';
import { startTestRedis } from './helpers/test-redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** One Redis for the whole run; each test isolates itself with a random key prefix. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startTestRedis();
  console.log(`[tests] Redis from ${redis.source}: ${redis.url}`);
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}
