import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { healthSchema } from '../../src/routes/schemas.js';
import { expectProblem, harnessScope, parseJob } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

const ACME_KEY = 'acme-key-0123456789abcdef';
const GLOBEX_KEY = 'globex-key-0123456789abcdef';
const apiKeys = parseApiKeys([
  { key: ACME_KEY, tenant: 'acme' },
  // Stored as its SHA-256 only, as `sha256:<hex>` in API_KEYS.
  { sha256: createHash('sha256').update(GLOBEX_KEY).digest('hex'), tenant: 'globex' },
]);
const as = (key: string) => ({ authorization: `Bearer ${key}` });

describe('API keys and tenants', () => {
  it('asks for a key (401 with WWW-Authenticate) and refuses a wrong one', async () => {
    const { app } = await scope.open({ apiKeys });
    const missing = await app.inject({ method: 'GET', url: '/v1/jobs' });
    expectProblem(missing, 401, 'unauthorized');
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    const wrong = await app.inject({ method: 'GET', url: '/v1/jobs', headers: as('not-a-key-at-all-really') });
    expectProblem(wrong, 401, 'unauthorized');
    expect(wrong.headers['www-authenticate']).toContain('invalid_token');
    expect((await app.inject({ method: 'GET', url: '/v1/jobs', headers: as(ACME_KEY) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/jobs', headers: as(GLOBEX_KEY) })).statusCode).toBe(200);
    const health = healthSchema.parse((await app.inject({ method: 'GET', url: '/health' })).json());
    expect(health.checks.auth.mode).toBe('keys');
  });

  it("lets no tenant read, wait on, cancel, delete or list another's jobs: they answer as unknown ids", async () => {
    const { app } = await scope.open({ apiKeys });
    const mine = parseJob(
      await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: as(ACME_KEY),
        payload: { type: 'echo', input: { value: 'acme' } },
      }),
    );
    const theirs = parseJob(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers: as(GLOBEX_KEY), payload: { type: 'echo' } }),
    );
    for (const [method, url] of [
      ['GET', `/v1/jobs/${mine.id}`],
      ['GET', `/v1/jobs/${mine.id}/result`],
      ['POST', `/v1/jobs/${mine.id}/cancel`],
      ['GET', `/v1/jobs/${mine.id}/events`],
      ['GET', `/v1/events?job_id=${mine.id}`],
    ] as const) {
      expectProblem(await app.inject({ method, url, headers: as(GLOBEX_KEY) }), 404, 'job-not-found');
    }
    expect(
      (await app.inject({ method: 'DELETE', url: `/v1/jobs/${mine.id}`, headers: as(GLOBEX_KEY) })).statusCode,
    ).toBe(204);
    expect(
      parseJob(await app.inject({ method: 'GET', url: `/v1/jobs/${mine.id}`, headers: as(ACME_KEY) })).status,
    ).toBe('queued'); // untouched
    const acmeList = (await app.inject({ method: 'GET', url: '/v1/jobs', headers: as(ACME_KEY) })).json<{
      data: { id: string }[];
    }>();
    expect(acmeList.data.map((job) => job.id)).toEqual([mine.id]);
    const globexList = (await app.inject({ method: 'GET', url: '/v1/jobs', headers: as(GLOBEX_KEY) })).json<{
      data: { id: string }[];
    }>();
    expect(globexList.data.map((job) => job.id)).toEqual([theirs.id]);
    // Deleted by its owner: 410 to the owner, still 404 to anyone else.
    await app.inject({ method: 'DELETE', url: `/v1/jobs/${mine.id}`, headers: as(ACME_KEY) });
    expectProblem(
      await app.inject({ method: 'GET', url: `/v1/jobs/${mine.id}`, headers: as(ACME_KEY) }),
      410,
      'job-gone',
    );
    expectProblem(
      await app.inject({ method: 'GET', url: `/v1/jobs/${mine.id}`, headers: as(GLOBEX_KEY) }),
      404,
      'job-not-found',
    );
  });

  it('keeps idempotency keys per tenant', async () => {
    const { app } = await scope.open({ apiKeys });
    const post = (key: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { ...as(key), 'idempotency-key': 'same' },
        payload: { type: 'echo' },
      });
    const acme = parseJob(await post(ACME_KEY));
    const globex = parseJob(await post(GLOBEX_KEY));
    expect(globex.id).not.toBe(acme.id);
    expect(parseJob(await post(ACME_KEY)).id).toBe(acme.id);
  });
});

describe('signed events links', () => {
  it("let an EventSource (no Authorization header) open that job's stream, and nothing else", async () => {
    const harness = await scope.open({
      apiKeys,
      workers: true,
      linkSigningSecret: 'a-secret-of-at-least-32-characters!!',
    });
    const base = await harness.app.listen({ port: 0, host: '127.0.0.1' });
    const job = parseJob(
      await harness.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: as(ACME_KEY),
        payload: { type: 'echo', input: { value: 1 } },
      }),
    );
    expect(job.links.events).toMatch(new RegExp(`^/v1/jobs/${job.id}/events\\?access=`));
    const stream = await fetch(`${base}${job.links.events}`);
    expect(stream.status).toBe(200);
    const text = await stream.text();
    expect(text).toContain('event: snapshot');
    expect(text).toContain('event: done');
    // The token opens only that stream: not the job itself, not another job's stream, not once tampered with.
    const token = new URL(`${base}${job.links.events}`).searchParams.get('access')!;
    expect((await fetch(`${base}/v1/jobs/${job.id}?access=${token}`)).status).toBe(401);
    const other = parseJob(
      await harness.app.inject({ method: 'POST', url: '/v1/jobs', headers: as(ACME_KEY), payload: { type: 'echo' } }),
    );
    expect((await fetch(`${base}/v1/jobs/${other.id}/events?access=${token}`)).status).toBe(401);
    // Its last character changed, always to a different one (a fixed "xx" would be no change 1 time in 4096).
    const tampered = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    expect(tampered).not.toBe(token);
    expect((await fetch(`${base}/v1/jobs/${job.id}/events?access=${tampered}`)).status).toBe(401);
  });
});
