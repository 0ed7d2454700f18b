import { afterEach, describe, expect, it } from 'vitest';
import { harnessScope, parseJob } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

const ORIGIN = 'https://app.example.com';

describe('CORS', () => {
  it('answers a preflight for the /v1 API with the allowed headers, for an allowed origin only', async () => {
    const { app } = await scope.open({ corsOrigins: [ORIGIN] });
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/v1/jobs',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, idempotency-key, prefer',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(ORIGIN);
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase();
    for (const header of [
      'authorization',
      'content-type',
      'idempotency-key',
      'prefer',
      'if-none-match',
      'last-event-id',
    ])
      expect(allowed).toContain(header);
    const other = await app.inject({
      method: 'OPTIONS',
      url: '/v1/jobs',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('exposes Location, Retry-After, ETag and the other headers a browser client reads', async () => {
    const { app } = await scope.open({ corsOrigins: [ORIGIN] });
    const created = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { origin: ORIGIN },
      payload: { type: 'echo' },
    });
    expect(created.headers['access-control-allow-origin']).toBe(ORIGIN);
    const exposed = String(created.headers['access-control-expose-headers']).toLowerCase();
    for (const header of [
      'location',
      'content-location',
      'retry-after',
      'etag',
      'preference-applied',
      'idempotent-replayed',
      'ratelimit',
      'ratelimit-policy',
    ]) {
      expect(exposed).toContain(header);
    }
    const read = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${parseJob(created).id}`,
      headers: { origin: ORIGIN },
    });
    expect(read.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('sends no CORS headers on /admin and /health, nor anywhere when CORS_ORIGINS is unset', async () => {
    const withCors = await scope.open({ corsOrigins: '*' });
    for (const url of ['/admin/stats', '/health', '/health/live']) {
      const response = await withCors.app.inject({ method: 'GET', url, headers: { origin: ORIGIN } });
      expect(response.headers['access-control-allow-origin'], url).toBeUndefined();
    }
    expect(
      (await withCors.app.inject({ method: 'GET', url: '/v1/jobs', headers: { origin: ORIGIN } })).headers[
        'access-control-allow-origin'
      ],
    ).toBe('*');
    const without = await scope.open();
    const response = await without.app.inject({ method: 'GET', url: '/v1/jobs', headers: { origin: ORIGIN } });
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });
});
