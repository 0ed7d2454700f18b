import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  Api,
  assertBuilt,
  dumpServiceOutput,
  randomPrefix,
  startService,
  type HttpAnswer,
  type ServiceProcess,
} from '../e2e/helpers.js';

/*
 * RATE_LIMIT_PER_MIN across a fleet: two real server processes on one Redis and one key prefix count a
 * tenant's requests together, so the budget holds whichever instance a request reaches. Each tenant's
 * count is its own.
 */

const PER_MIN = 10;
const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const INITECH = 'initech-key-0123456789abcdef';

/** Only the processes this file started, stopped by their own handle (their pid) after its tests. */
const services: ServiceProcess[] = [];
let a: Api;
let b: Api;

beforeAll(async () => {
  assertBuilt();
  const env = {
    REDIS_URL: inject('redisUrl'),
    REDIS_REQUIRED: 'true',
    REDIS_KEY_PREFIX: randomPrefix('ratelimit'),
    RATE_LIMIT_PER_MIN: String(PER_MIN),
    API_KEYS: `${ACME}:acme,${GLOBEX}:globex,${INITECH}:initech`,
    LINK_SIGNING_SECRET: 'rate-limit-fleet-link-secret-0123456789',
    WORKER_CONCURRENCY: '0',
    LOG_LEVEL: 'warn',
    // The caller's shell must not change what is measured.
    ROLE: '',
    TYPE_LIMITS: '',
    ADMIN_KEYS: '',
    MAX_ACTIVE_JOBS_PER_TENANT: '',
  };
  const started = await Promise.allSettled([startService(env), startService(env)]);
  for (const outcome of started) if (outcome.status === 'fulfilled') services.push(outcome.value);
  const failed = started.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  [a, b] = services.map((service) => Api.of(service)) as [Api, Api];
});

afterAll(async () => {
  await Promise.all(services.splice(0).map((service) => service.kill('SIGKILL')));
});

beforeEach((context) => {
  context.onTestFailed(() => console.error(dumpServiceOutput(services)));
});

const list = (api: Api, key: string): Promise<HttpAnswer> =>
  api.request('GET', '/v1/jobs', { headers: { authorization: `Bearer ${key}` }, timeoutMs: 3000 });

const remaining = (answer: HttpAnswer): number =>
  Number(/remaining=(\d+)/.exec(answer.headers.get('ratelimit') ?? '')?.[1]);

function expectRefused(answer: HttpAnswer): void {
  expect(answer.status).toBe(429);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ status: 429, code: 'rate-limited' });
  const retryAfter = Number(answer.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(answer.headers.get('ratelimit-policy')).toBe(`${PER_MIN};w=60`);
  expect(answer.headers.get('ratelimit')).toMatch(new RegExp(`^limit=${PER_MIN}, remaining=0, reset=\\d+$`));
}

describe('RATE_LIMIT_PER_MIN across two instances sharing Redis', () => {
  it(
    '6 requests to A and 6 to B with one key: exactly 10 pass, the 11th and 12th answer 429; another tenant is unaffected',
    { timeout: 20_000 },
    async () => {
      const answers: HttpAnswer[] = [];
      for (let i = 0; i < 6; i++) answers.push(await list(a, ACME));
      for (let i = 0; i < 6; i++) answers.push(await list(b, ACME));

      expect(answers.map((answer) => answer.status)).toEqual([...Array<number>(10).fill(200), 429, 429]);
      // One count for both instances: B goes on from where A stopped.
      expect(answers.slice(0, 10).map(remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      for (const answer of answers.slice(0, 10)) expect(answer.headers.get('ratelimit-policy')).toBe(`${PER_MIN};w=60`);
      for (const answer of answers.slice(10)) expectRefused(answer);
      // A is refused too now: the budget is spent fleet-wide.
      expectRefused(await list(a, ACME));

      // Another tenant's budget is its own, untouched, and shared the same way.
      const other = [await list(a, GLOBEX), await list(b, GLOBEX)];
      expect(other.map((answer) => answer.status)).toEqual([200, 200]);
      expect(other.map(remaining)).toEqual([PER_MIN - 1, PER_MIN - 2]);
    },
  );

  it(
    '12 concurrent requests split over A and B: exactly 10 pass (the shared count is atomic)',
    { timeout: 20_000 },
    async () => {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => list(i % 2 === 0 ? a : b, INITECH)));
      const passed = answers.filter((answer) => answer.status === 200);
      const refused = answers.filter((answer) => answer.status !== 200);
      expect(passed).toHaveLength(10);
      expect(refused).toHaveLength(2);
      for (const answer of refused) expectRefused(answer);
      expect(passed.map(remaining).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    },
  );
});
