import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis-server.js';
import { Api, randomPrefix, spawnService, startService, useServiceCleanup } from './helpers.js';

/*
 * Start-up: an unreachable Redis falls back to memory (loudly) unless REDIS_REQUIRED, and a bad
 * environment stops the process with a message naming the variable.
 */

useServiceCleanup();

/** A port nobody listens on: the OS handed it out and took it back. */
const closedRedisUrl = async (auth = ''): Promise<{ url: string; port: number }> => {
  const port = await freePort();
  return { url: `redis://${auth}127.0.0.1:${port}`, port };
};

describe('Redis unreachable at start-up', () => {
  it(
    'falls back to the in-memory store, warns on /health and in the log, and still runs jobs',
    { timeout: 30_000 },
    async () => {
      const { url } = await closedRedisUrl();
      const service = await startService({ REDIS_URL: url, REDIS_KEY_PREFIX: randomPrefix() });
      const api = Api.of(service);

      const health = await api.health();
      expect(health.status).toBe(200);
      expect(health.headers.get('content-type')).toMatch(/^application\/health\+json/);
      expect(health.body).toMatchObject({
        status: 'warn',
        checks: { store: { kind: 'memory', fallback: true, status: 'warn' } },
      });

      const fallbackLine = service
        .logs()
        .find((line) => line.level >= 50 && /falling back/i.test(line.msg ?? '') && /memory/i.test(line.msg ?? ''));
      expect(fallbackLine, `no error-level fallback line in:\n${service.stdout()}`).toBeDefined();
      expect(fallbackLine).toMatchObject({ level: 50, redis: url });

      const job = await api.submit({ type: 'echo', input: { value: 'still works' } });
      const done = await api.waitForJob(job.id, 'succeeded', (j) => j.done, 5000);
      expect(done).toMatchObject({ status: 'succeeded', result: { value: 'still works' } });
    },
  );

  it('exits non-zero with REDIS_REQUIRED=true, naming the URL', { timeout: 30_000 }, async () => {
    const { url } = await closedRedisUrl();
    const started = performance.now();
    const service = await spawnService({ REDIS_URL: url, REDIS_REQUIRED: 'true' });
    const exit = await service.waitForExit(8000);
    expect(performance.now() - started).toBeLessThan(8000);
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(service.output()).toContain(url);
    expect(service.output()).toMatch(/REDIS_REQUIRED/);
    expect(service.output()).not.toMatch(/listening|service ready/i);
  });

  it('never prints the password of REDIS_URL (masked as ***)', { timeout: 30_000 }, async () => {
    const { port } = await closedRedisUrl();
    const service = await spawnService({ REDIS_URL: `redis://:s3cret@127.0.0.1:${port}`, REDIS_REQUIRED: 'true' });
    const exit = await service.waitForExit(8000);
    expect(exit.code).not.toBe(0);
    expect(service.output()).toContain(`redis://:***@127.0.0.1:${port}`);
    expect(service.output()).not.toContain('s3cret');
  });

  it('never prints the password in the fallback warning either', { timeout: 30_000 }, async () => {
    const { port } = await closedRedisUrl();
    const service = await startService({ REDIS_URL: `redis://default:s3cret@127.0.0.1:${port}` });
    const health = await Api.of(service).health();
    expect(health.body.checks.store.fallback).toBe(true);
    await service.kill('SIGTERM');
    expect(service.output()).toContain(`127.0.0.1:${port}`);
    expect(service.output()).not.toContain('s3cret');
  });
});

describe('bad environment', () => {
  const cases: { name: string; env: Record<string, string>; mentions: string[]; secret?: string }[] = [
    { name: 'WORKER_CONCURRENCY=lots', env: { WORKER_CONCURRENCY: 'lots' }, mentions: ['WORKER_CONCURRENCY', 'lots'] },
    { name: 'LEASE_S=0', env: { LEASE_S: '0' }, mentions: ['LEASE_S'] },
    { name: 'PORT=70000', env: { PORT: '70000' }, mentions: ['PORT'] },
    { name: 'LOG_LEVEL=loud', env: { LOG_LEVEL: 'loud' }, mentions: ['LOG_LEVEL'] },
    { name: 'REDIS_REQUIRED=maybe', env: { REDIS_REQUIRED: 'maybe' }, mentions: ['REDIS_REQUIRED'] },
    { name: 'REDIS_KEY_PREFIX with a space', env: { REDIS_KEY_PREFIX: 'a b' }, mentions: ['REDIS_KEY_PREFIX'] },
    {
      name: 'REDIS_URL with another scheme (value not echoed)',
      env: { REDIS_URL: 'http://:hunter2pass@127.0.0.1:1' },
      mentions: ['REDIS_URL'],
      secret: 'hunter2pass',
    },
    {
      name: 'ADMIN_TOKEN too short (value not echoed)',
      env: { ADMIN_TOKEN: 'tiny-secret' },
      mentions: ['ADMIN_TOKEN'],
      secret: 'tiny-secret',
    },
  ];

  for (const { name, env, mentions, secret } of cases) {
    it(`${name}: exits non-zero, stderr names the variable`, { timeout: 20_000 }, async () => {
      const service = await spawnService(env);
      const exit = await service.waitForExit(8000);
      expect(exit.code).not.toBe(0);
      expect(exit.code).not.toBeNull();
      for (const word of mentions) expect(service.stderr()).toContain(word);
      if (secret) expect(service.output()).not.toContain(secret);
      expect(service.output()).not.toMatch(/Server listening/);
    });
  }

  it('JOB_TYPES=echo,nope: exits non-zero, naming the unknown type', { timeout: 20_000 }, async () => {
    const service = await spawnService({ JOB_TYPES: 'echo,nope' });
    const exit = await service.waitForExit(8000);
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(service.output()).toContain('nope');
    expect(service.output()).toContain('JOB_TYPES');
    expect(service.output()).not.toMatch(/Server listening/);
  });

  it('reports every bad variable at once', { timeout: 20_000 }, async () => {
    const service = await spawnService({ WORKER_CONCURRENCY: 'lots', LEASE_S: '-1' });
    const exit = await service.waitForExit(8000);
    expect(exit.code).not.toBe(0);
    expect(service.stderr()).toContain('WORKER_CONCURRENCY');
    expect(service.stderr()).toContain('LEASE_S');
  });
});
