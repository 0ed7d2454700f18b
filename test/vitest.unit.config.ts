import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
import base from '../vitest.config.js';

/*
 * `npm run test:unit`: the fast tests, run inside vitest's own processes. `npm test` (vitest.config.ts) runs
 * these and the slow ones below.
 *
 * Tests on Redis count as fast when they use the run's shared Redis (inject('redisUrl') from test/global-setup.ts:
 * TEST_REDIS_URL if set, else one Redis for the whole run) and start no process of their own.
 */

/** Test files that start processes: the server, redis-server (their own, to pause, kill or cluster), the CLI, dependency-cruiser, Chromium. */
export const SLOW_TESTS = [
  'test/e2e/**', // `node dist/server.js` as a child process, often with a redis-server of its own
  'test/scale/**', // fleets of server processes on a redis-server of their own
  'test/cli/**', // the `jobs` CLI run with execFile
  'test/lint/**', // dependency-cruiser run with execFile
  'test/ui/dashboard.test.ts', // headless Chromium
  'test/store/redis-cluster-job-store.test.ts', // a 3-node Redis Cluster
  'test/store/redis-sentinel.test.ts', // redis-server plus a Sentinel
  'test/store/redis-job-store-outage.test.ts', // a redis-server per test, paused and killed
  'test/routes/health-redis.test.ts', // a redis-server per test, with and without AOF
];

export default defineConfig({
  ...base,
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    ...base.test,
    exclude: [...configDefaults.exclude, ...SLOW_TESTS],
    // The JSON report (test-results/vitest.json) is the full run's, for .ci/run.
    reporters: ['default'],
  },
});
