import { hasRedisServerBinary, spawnRedis } from './redis-server.js';

export interface TestRedis {
  url: string;
  source: 'TEST_REDIS_URL' | 'testcontainers' | 'redis-server';
  stop(): Promise<void>;
}

const DOCKER_PROBE_MS = 5000;

async function dockerAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const probe = getContainerRuntimeClient().then(
      () => true,
      () => false,
    );
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), DOCKER_PROBE_MS).unref());
    return await Promise.race([probe, timeout]);
  } catch {
    return false;
  }
}

/**
 * The Redis the test suite uses: TEST_REDIS_URL if set, else a testcontainers Redis when a Docker engine
 * answers, else a redis-server binary spawned on a free port; never a silent skip.
 */
export async function startTestRedis(): Promise<TestRedis> {
  const fromEnv = process.env.TEST_REDIS_URL;
  if (fromEnv) return { url: fromEnv, source: 'TEST_REDIS_URL', stop: async () => undefined };
  if (await dockerAnswers()) {
    const { GenericContainer } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    return {
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  }
  if (hasRedisServerBinary()) {
    const server = await spawnRedis();
    return { url: server.url, source: 'redis-server', stop: () => server.stop() };
  }
  throw new Error(
    'No Redis for the tests: set TEST_REDIS_URL=redis://host:port, start a Docker engine (testcontainers), or install the redis-server binary (Debian: apt-get install redis-server).',
  );
}
