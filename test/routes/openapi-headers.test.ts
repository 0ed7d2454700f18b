import { readFileSync } from 'node:fs';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ADMIN_SESSION_COOKIE } from '../../src/http/admin-auth.js';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { startHarness, type Harness } from './helpers.js';

interface Ref {
  $ref: string;
}
interface Parameter {
  name: string;
  in: string;
}
interface Response {
  headers?: Record<string, Ref>;
  content?: Record<string, unknown>;
}
interface Operation {
  parameters?: (Parameter | Ref)[];
  security?: Record<string, string[]>[];
  responses: Record<string, Response>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: {
    securitySchemes: Record<string, Record<string, string>>;
    headers: Record<string, { description?: string; schema?: unknown }>;
    parameters: Record<string, Parameter>;
  };
}

const document = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Document;
const operations = Object.entries(document.paths).flatMap(([path, byMethod]) =>
  Object.entries(byMethod).map(([method, operation]) => ({ path, method, key: `${method} ${path}`, operation })),
);
const operation = (key: string): Operation => {
  const found = operations.find((each) => each.key === key);
  if (!found) throw new Error(`${key} is not in the document`);
  return found.operation;
};
const headerNames = (response: Response | undefined): string[] =>
  Object.keys(response?.headers ?? {}).map((name) => name.toLowerCase());
const parameterNames = (op: Operation, where: string): string[] =>
  (op.parameters ?? [])
    .map((parameter) =>
      '$ref' in parameter ? document.components.parameters[parameter.$ref.split('/').at(-1)!]! : parameter,
    )
    .filter((parameter) => parameter.in === where)
    .map((parameter) => parameter.name.toLowerCase());

const optionalApiKey = [{ apiKey: [] }, {}];
const optionalWorkerKey = [{ workerKey: [] }, {}];
/** The pull-worker protocol: a scope of its own (worker keys, no rate limit). */
const isWorkerPath = (path: string): boolean => /^\/v1\/(?:workers|leases)(?:[/:]|$)/.test(path);
const adminCredentials = [{ adminToken: [] }, { adminSession: [] }];

/** The security each operation must carry, from how buildApp applies auth (by scope). */
function expectedSecurity(method: string, path: string): unknown {
  if (isWorkerPath(path)) return optionalWorkerKey;
  if (path.startsWith('/v1/')) return optionalApiKey;
  if (path === '/admin/session') return method === 'get' ? adminCredentials : []; // sign-in and sign-out take no credential
  if (path.startsWith('/admin/')) return adminCredentials;
  if (path === '/metrics') return [{ metricsToken: [] }, {}];
  return []; // health and problem descriptions: said to need none (strict linters want every operation to say)
}

describe('OpenAPI: security, request headers and response headers', () => {
  it.each([
    ['apiKey', { type: 'http', scheme: 'bearer' }],
    ['adminToken', { type: 'http', scheme: 'bearer' }],
    ['adminSession', { type: 'apiKey', in: 'cookie', name: ADMIN_SESSION_COOKIE }],
    ['metricsToken', { type: 'http', scheme: 'bearer' }],
    ['workerKey', { type: 'http', scheme: 'bearer' }],
  ])('declares the %s security scheme', (name, scheme) => {
    expect(document.components.securitySchemes[name]).toMatchObject(scheme);
  });

  it('gives every operation the security its scope applies', () => {
    const wrong = operations
      .filter(
        ({ method, path, operation: op }) =>
          JSON.stringify(op.security) !== JSON.stringify(expectedSecurity(method, path)),
      )
      .map(({ key, operation: op }) => `${key}: ${JSON.stringify(op.security)}`);
    expect(wrong).toEqual([]);
  });

  it.each([
    ['post /v1/jobs', ['Idempotency-Key', 'Prefer', 'Cache-Control']],
    ['get /v1/jobs/{id}', ['If-None-Match', 'Prefer']],
    ['get /v1/jobs/{id}/events', ['Last-Event-ID']],
  ])('%s documents the request headers it reads: %j', (key, names) => {
    expect(parameterNames(operation(key), 'header')).toEqual(
      expect.arrayContaining(names.map((name) => name.toLowerCase())),
    );
  });

  it('every operation documents X-Request-Id, and every response echoes it', () => {
    for (const { key, operation: op } of operations) {
      expect(parameterNames(op, 'header'), key).toContain('x-request-id');
      for (const [status, response] of Object.entries(op.responses))
        expect(headerNames(response), `${key} ${status}`).toContain('x-request-id');
    }
  });

  it.each([
    [
      'post /v1/jobs',
      '202',
      ['Location', 'Content-Location', 'Retry-After', 'Preference-Applied', 'Idempotent-Replayed'],
    ],
    ['post /v1/jobs', '200', ['Location', 'Content-Location', 'Preference-Applied', 'Idempotent-Replayed']],
    ['get /v1/jobs/{id}', '200', ['ETag', 'Retry-After', 'Preference-Applied']],
    ['get /v1/jobs/{id}', '304', ['ETag', 'Retry-After', 'Preference-Applied']],
    ['get /v1/jobs/{id}/result', '202', ['Location', 'Retry-After']],
    ['post /admin/jobs/{id}/clone', '201', ['Location']],
    ['post /admin/session', '200', ['Set-Cookie']],
    ['delete /admin/session', '204', ['Set-Cookie']],
  ])('%s %s documents the headers %j', (key, status, names) => {
    expect(headerNames(operation(key).responses[status])).toEqual(
      expect.arrayContaining(names.map((name) => name.toLowerCase())),
    );
  });

  it('every /v1 operation documents 401 with WWW-Authenticate, 429 with Retry-After, and the RateLimit headers', () => {
    for (const { key, path, operation: op } of operations.filter(
      (each) => each.path.startsWith('/v1/') && !isWorkerPath(each.path),
    )) {
      expect(headerNames(op.responses['401']), `${key} 401`).toContain('www-authenticate');
      expect(headerNames(op.responses['429']), `${key} 429`).toEqual(
        expect.arrayContaining(['retry-after', 'ratelimit', 'ratelimit-policy']),
      );
      for (const [status, response] of Object.entries(op.responses)) {
        if (status !== '401')
          expect(headerNames(response), `${key} ${status} (${path})`).toEqual(
            expect.arrayContaining(['ratelimit', 'ratelimit-policy']),
          );
      }
    }
  });

  it('every worker operation documents 401 with WWW-Authenticate and 403, and no rate limit', () => {
    const worker = operations.filter((each) => isWorkerPath(each.path));
    expect(worker.map((each) => each.key).sort()).toEqual(
      [
        'post /v1/workers',
        'post /v1/workers/{worker_id}/leases',
        'post /v1/workers/{worker_id}/heartbeat',
        'delete /v1/workers/{worker_id}',
        'post /v1/leases/{lease_id}/complete',
        'post /v1/leases/{lease_id}/fail',
        'post /v1/leases/{lease_id}/release',
        'post /v1/leases/{lease_id}/logs',
        'post /v1/leases:complete',
      ].sort(),
    );
    for (const { key, operation: op } of worker) {
      expect(headerNames(op.responses['401']), `${key} 401`).toContain('www-authenticate');
      expect(op.responses['403'], `${key} 403`).toBeDefined();
      for (const [status, response] of Object.entries(op.responses))
        expect(headerNames(response), `${key} ${status}`).not.toContain('ratelimit');
    }
    expect(headerNames(operation('post /v1/workers/{worker_id}/leases').responses['200'])).toContain(
      'preference-applied',
    );
  });

  it('every guarded 401 has WWW-Authenticate; every 429 and problem 503 has Retry-After', () => {
    for (const { key, path, operation: op } of operations) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (status === '401' && path !== '/admin/session')
          expect(headerNames(response), `${key} 401`).toContain('www-authenticate');
        if (status === '429' || (status === '503' && response.content?.['application/problem+json']))
          expect(headerNames(response), `${key} ${status}`).toContain('retry-after');
      }
    }
  });

  it('every header reference names a documented header with a schema', () => {
    for (const { key, operation: op } of operations) {
      for (const [status, response] of Object.entries(op.responses)) {
        for (const [name, header] of Object.entries(response.headers ?? {})) {
          expect(header.$ref, `${key} ${status} ${name}`).toBe(`#/components/headers/${name}`);
          expect(document.components.headers[name], name).toMatchObject({
            description: expect.any(String) as string,
            schema: expect.any(Object) as object,
          });
        }
      }
    }
  });
});

/** Every header of a real answer that clients rely on must be documented on that operation and status. */
describe('OpenAPI response headers match what the service sends', () => {
  const watched = [
    'location',
    'content-location',
    'retry-after',
    'etag',
    'preference-applied',
    'idempotent-replayed',
    'ratelimit',
    'ratelimit-policy',
    'www-authenticate',
    'set-cookie',
    'x-request-id',
  ];
  const apiKey = 'k-0123456789abcdef0123456789abcdef';
  const adminToken = 'admin-token-0123456789abcdef';
  let harness: Harness;
  let limited: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      apiKeys: parseApiKeys([{ key: apiKey, tenant: 'acme' }]),
      adminToken,
      metricsToken: 'metrics-token-0123456789',
      rateLimitPerMin: 1000,
    });
    limited = await startHarness({ rateLimitPerMin: 1 });
  });
  afterAll(async () => {
    await harness.close();
    await limited.close();
  });

  const undocumented = (key: string, answer: LightMyRequestResponse): string[] => {
    const documented = headerNames(operation(key).responses[String(answer.statusCode)]);
    return watched
      .filter((name) => answer.headers[name] !== undefined && !documented.includes(name))
      .map((name) => `${key} ${answer.statusCode} ${name}`);
  };

  it('for submits, polls, results, auth failures, rate limits, clones and sign-ins', async () => {
    const { app } = harness;
    const auth = { authorization: `Bearer ${apiKey}` };
    const admin = { authorization: `Bearer ${adminToken}` };
    const answers: [string, LightMyRequestResponse][] = [];
    const send = async (
      key: string,
      request: InjectOptions,
      on: FastifyInstance = app,
    ): Promise<LightMyRequestResponse> => {
      const answer = await on.inject(request);
      answers.push([key, answer]);
      return answer;
    };
    const submit: InjectOptions = {
      method: 'POST',
      url: '/v1/jobs',
      headers: { ...auth, 'idempotency-key': 'headers-1', prefer: 'wait=0' },
      payload: { type: 'echo', input: { value: [1, { a: null }] } },
    };
    const created = await send('post /v1/jobs', submit);
    expect(created.statusCode, created.body).toBe(202);
    expect((await send('post /v1/jobs', submit)).headers['idempotent-replayed']).toBe('true');
    const { id } = created.json<{ id: string }>();
    const polled = await send('get /v1/jobs/{id}', { method: 'GET', url: `/v1/jobs/${id}`, headers: auth });
    expect(polled.statusCode).toBe(200);
    const etag = polled.headers.etag as string;
    expect(
      (
        await send('get /v1/jobs/{id}', {
          method: 'GET',
          url: `/v1/jobs/${id}`,
          headers: { ...auth, 'if-none-match': etag, prefer: 'wait=0' },
        })
      ).statusCode,
    ).toBe(304);
    expect(
      (await send('get /v1/jobs/{id}/result', { method: 'GET', url: `/v1/jobs/${id}/result`, headers: auth }))
        .statusCode,
    ).toBe(202);
    await send('get /v1/jobs', { method: 'GET', url: '/v1/jobs', headers: auth });
    expect(
      (await send('get /v1/jobs', { method: 'GET', url: '/v1/jobs', headers: { authorization: 'Bearer wrong' } }))
        .statusCode,
    ).toBe(401);
    expect((await send('get /v1/job-types', { method: 'GET', url: '/v1/job-types' })).statusCode).toBe(401);
    expect(
      (await send('post /admin/jobs/{id}/clone', { method: 'POST', url: `/admin/jobs/${id}/clone`, headers: admin }))
        .statusCode,
    ).toBe(201);
    expect((await send('get /admin/stats', { method: 'GET', url: '/admin/stats' })).statusCode).toBe(401);
    expect((await send('get /metrics', { method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    expect(
      (await send('post /admin/session', { method: 'POST', url: '/admin/session', payload: { key: adminToken } }))
        .statusCode,
    ).toBe(200);
    expect((await send('delete /admin/session', { method: 'DELETE', url: '/admin/session' })).statusCode).toBe(204);
    expect(
      (await send('delete /v1/jobs/{id}', { method: 'DELETE', url: `/v1/jobs/${id}`, headers: auth })).statusCode,
    ).toBe(204);
    await send('get /v1/jobs', { method: 'GET', url: '/v1/jobs' }, limited.app);
    expect((await send('get /v1/jobs', { method: 'GET', url: '/v1/jobs' }, limited.app)).statusCode).toBe(429);
    // The worker endpoints: closed here (API keys, no worker keys), open on the rate-limited harness (no keys at all).
    expect(
      (
        await send('post /v1/workers', {
          method: 'POST',
          url: '/v1/workers',
          payload: { name: 'w', types: ['x'], slots: 1 },
        })
      ).statusCode,
    ).toBe(401);
    expect(
      (
        await send(
          'post /v1/workers/{worker_id}/leases',
          { method: 'POST', url: '/v1/workers/unknown/leases', headers: { prefer: 'wait=0' }, payload: { max: 1 } },
          limited.app,
        )
      ).statusCode,
    ).toBe(404);

    expect(answers.flatMap(([key, answer]) => undocumented(key, answer))).toEqual([]);
  });
});
