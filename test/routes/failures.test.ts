import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { problemCatalog } from '../../src/errors.js';
import { defineHandler } from '../../src/handlers/handler.js';
import { MAX_JSON_DEPTH } from '../../src/http/json-depth.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { rawRequest } from '../helpers/raw-http.js';
import type { JobRecord, NewJob } from '../../src/jobs/job.js';
import { newJobId } from '../../src/jobs/job-id.js';
import { StoreUnavailableError, type JobStore, type ListPage, type StoreStats } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { expectProblem, harnessScope } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

/** A store whose every API-facing method throws what `makeError` makes. */
function failingStore(makeError: () => Error): JobStore {
  return new (class extends MemoryJobStore {
    override async create(_job: NewJob): Promise<JobRecord> {
      throw makeError();
    }
    override async get(_id: string): Promise<JobRecord | undefined> {
      throw makeError();
    }
    override async list(): Promise<ListPage> {
      throw makeError();
    }
    override async cancel(): ReturnType<JobStore['cancel']> {
      throw makeError();
    }
    override async delete(): Promise<boolean> {
      throw makeError();
    }
    override async retry(): ReturnType<JobStore['retry']> {
      throw makeError();
    }
    override async purge(): Promise<number> {
      throw makeError();
    }
    override async stats(): Promise<StoreStats> {
      throw makeError();
    }
  })({ jobTtlMs: 60_000 });
}

const id = newJobId(Date.now());
const storeRoutes: InjectOptions[] = [
  { method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } },
  { method: 'GET', url: '/v1/jobs' },
  { method: 'GET', url: `/v1/jobs/${id}` },
  { method: 'GET', url: `/v1/jobs/${id}/result` },
  { method: 'POST', url: `/v1/jobs/${id}/cancel` },
  { method: 'DELETE', url: `/v1/jobs/${id}` },
  { method: 'GET', url: '/admin/jobs' },
  { method: 'GET', url: '/admin/stats' },
  { method: 'POST', url: `/admin/jobs/${id}/retry` },
  { method: 'DELETE', url: '/admin/jobs' },
];

describe('store outage', () => {
  it.each(storeRoutes)('$method $url → 503 store-unavailable with Retry-After', async (request) => {
    const { app } = await scope.open({
      store: failingStore(() => new StoreUnavailableError('redis: connection refused to 10.0.0.5:6379')),
    });
    const response = await app.inject(request);
    const problem = expectProblem(response, 503, 'store-unavailable');
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(problem.detail).not.toContain('10.0.0.5');
  });

  it('still validates before touching the store', async () => {
    const { app } = await scope.open({ store: failingStore(() => new StoreUnavailableError('down')) });
    expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'nope' } }),
      422,
      'unknown-job-type',
    );
    expectProblem(await app.inject({ method: 'GET', url: '/v1/jobs/abc' }), 404, 'job-not-found');
  });
});

describe('unexpected exceptions', () => {
  const secret = 'redis://:hunter2@db.internal:6379 exploded';

  it.each(storeRoutes)('$method $url → 500 internal-error without the exception message', async (request) => {
    const { app } = await scope.open({ store: failingStore(() => new Error(secret)) });
    const response = await app.inject({ ...request, headers: { 'x-request-id': 'trace-1' } });
    const problem = expectProblem(response, 500, 'internal-error');
    expect(problem.detail).not.toContain('hunter2');
    expect(problem.detail).not.toContain('exploded');
    expect(problem.detail).toContain('trace-1');
    expect(response.body).not.toContain('hunter2');
    expect(response.body).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });

  it.each([
    ['TypeError', () => new TypeError(secret)],
    // A corrupt stored record (JSON.parse in a store) is the service's fault, not the client's malformed JSON.
    ['SyntaxError', () => new SyntaxError(`Unexpected token in JSON: ${secret}`)],
    ['RangeError', () => new RangeError(secret)],
  ])('a %s thrown by the store is a 500 that does not leak its message', async (_name, makeError) => {
    const { app } = await scope.open({ store: failingStore(makeError) });
    const response = await app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
    const problem = expectProblem(response, 500, 'internal-error');
    expect(response.body).not.toContain('hunter2');
    expect(problem.detail).not.toContain('exploded');
  });
});

describe('docs', () => {
  it('GET /docs serves the Swagger UI', async () => {
    const { app } = await scope.open();
    let response = await app.inject({ method: 'GET', url: '/docs' });
    for (let hops = 0; hops < 3 && response.statusCode >= 300 && response.statusCode < 400; hops++) {
      const location = response.headers.location;
      expect(location).toEqual(expect.any(String));
      response = await app.inject({ method: 'GET', url: new URL(location!, 'http://localhost/docs').pathname });
    }
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body.toLowerCase()).toContain('swagger');
  });

  it('GET /openapi.json serves the document', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const document = response.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toContain('/v1/jobs');
    expect(Object.keys(document.paths)).not.toContain('/openapi.json');
  });

  it('GET /problems/{code} explains a problem type, 404 for an unknown one', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'GET', url: '/problems/job-not-found' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ code: 'job-not-found', status: 404, title: 'Job not found' });
    expect((await app.inject({ method: 'GET', url: '/problems/job-error' })).json()).toMatchObject({
      code: 'job-error',
    });
    expectProblem(await app.inject({ method: 'GET', url: '/problems/nope' }), 404, 'not-found');
  });
});

describe('GET /problems/{code} with inherited property names', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('%s is not a problem type: 404', async (code) => {
    const { app } = await scope.open();
    expectProblem(await app.inject({ method: 'GET', url: `/problems/${code}` }), 404, 'not-found');
  });
});

/* Issue #9: nothing a client sends answers 5xx. JSON nesting is limited at the door (MAX_JSON_DEPTH). */

const nested = (arrays: number, leaf = '1'): string => '['.repeat(arrays) + leaf + ']'.repeat(arrays);
/** A create body whose deepest array is at level `depth` of the body (the body is level 1, `input` level 2). */
const createNested = (depth: number): string => `{"type":"echo","input":{"value":${nested(depth - 2)}}}`;
const json = { 'content-type': 'application/json' };

async function deepRoundTrip(app: FastifyInstance): Promise<void> {
  // Exactly at the limit: accepted, stored, and read back unchanged (also with an Idempotency-Key: canonical JSON).
  for (const headers of [json, { ...json, 'idempotency-key': 'deep-1' }]) {
    const created = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers,
      payload: createNested(MAX_JSON_DEPTH),
    });
    expect(created.statusCode, created.body).toBe(202);
    const read = await app.inject({ method: 'GET', url: `/v1/jobs/${created.json<{ id: string }>().id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json<{ input: unknown }>().input).toEqual(
      (JSON.parse(createNested(MAX_JSON_DEPTH)) as { input: unknown }).input,
    );
  }
  // One level more: 422 json-too-deep, naming the array that is too deep.
  const problem = expectProblem(
    await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: createNested(MAX_JSON_DEPTH + 1) }),
    422,
    'json-too-deep',
  );
  expect(problem.errors).toEqual([
    {
      pointer: `/input/value${'/0'.repeat(MAX_JSON_DEPTH - 2)}`,
      detail: `nested deeper than ${MAX_JSON_DEPTH} levels`,
    },
  ]);
  // Far deeper (it used to overflow the stack: 500): still 422, with the idempotency key too.
  for (const headers of [json, { ...json, 'idempotency-key': 'deep-2' }]) {
    expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers, payload: createNested(200_000) }),
      422,
      'json-too-deep',
    );
  }
}

describe('JSON nesting limit', () => {
  it("is 64 levels, well below Lua cjson's 1000", () => {
    expect(MAX_JSON_DEPTH).toBe(64);
  });

  it('accepts a body exactly at the limit and refuses one level more (memory store)', async () => {
    const { app } = await scope.open();
    await deepRoundTrip(app);
  });

  it('accepts a body exactly at the limit and refuses one level more (Redis store, compressed input)', async () => {
    const store = await RedisJobStore.connect({
      url: inject('redisUrl'),
      keyPrefix: `deep${randomUUID().slice(0, 8)}`,
      jobTtlMs: 60_000,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 2000,
      compressThresholdBytes: 64,
    });
    const { app } = await scope.open({ store, workers: true });
    await deepRoundTrip(app);
    // A worker runs the deepest input the API takes: the result (stored through Lua) comes back whole.
    const created = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { ...json, prefer: 'wait=10' },
      payload: createNested(MAX_JSON_DEPTH),
    });
    expect(created.statusCode, created.body).toBe(200);
    expect(created.json<{ result: unknown }>().result).toEqual({
      value: JSON.parse(nested(MAX_JSON_DEPTH - 2)) as unknown,
    });
  });

  it('names where in an object the nesting went too deep, escaping the pointer, and keeps long pointers short', async () => {
    const { app } = await scope.open();
    const keyed = `{"type":"echo","input":{"value":{"a/b":{"~k":${nested(MAX_JSON_DEPTH)}}}}}`;
    const problem = expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: keyed }),
      422,
      'json-too-deep',
    );
    expect(problem.errors![0]!.pointer).toBe(`/input/value/a~1b/~0k${'/0'.repeat(MAX_JSON_DEPTH - 4)}`);
    const longKeys = `{"type":"echo","input":${'{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":'.repeat(100)}1${'}'.repeat(100)}}`;
    const long = expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: longKeys }),
      422,
      'json-too-deep',
    );
    expect(long.errors![0]!.pointer.length).toBeLessThanOrEqual(512);
    expect(long.errors![0]!.pointer).toMatch(/^\/input(\/k+)+$/);
    const top = expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: nested(100_000) }),
      422,
      'json-too-deep',
    );
    expect(top.errors![0]!.pointer).toBe('/0'.repeat(MAX_JSON_DEPTH));
  });

  it('applies to every JSON body (admin routes too), and unterminated nesting is refused as well', async () => {
    const { app } = await scope.open();
    expectProblem(
      await app.inject({
        method: 'POST',
        url: '/admin/bulk',
        headers: json,
        payload: `{"action":"retry","ids":${nested(10_000)}}`,
      }),
      422,
      'json-too-deep',
    );
    expectProblem(
      await app.inject({ method: 'POST', url: '/admin/session', headers: json, payload: `{"key":${nested(100)}}` }),
      422,
      'json-too-deep',
    );
    expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: '['.repeat(500_000) }),
      422,
      'json-too-deep',
    );
    expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: '['.repeat(10) }),
      400,
      'malformed-json',
    );
    // Brackets inside strings are text, not nesting.
    const created = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: json,
      payload: `{"type":"echo","input":{"value":"${'[{'.repeat(1000)}\\"["}}`,
    });
    expect(created.statusCode, created.body).toBe(202);
  });

  it('reuses results for deep (allowed) inputs: canonical JSON never recurses', async () => {
    const { app } = await scope.open({
      extraHandlers: [
        defineHandler({
          type: 'lookup',
          input: z.object({ q: z.json() }).strict(),
          cache: { ttl_s: 60 },
          run: async () => ({ ok: true }),
        }),
      ],
    });
    const body = `{"type":"lookup","input":{"q":${nested(MAX_JSON_DEPTH - 2)}}}`;
    const first = await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: body });
    const second = await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: body });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json<{ cached_from: string | null }>().cached_from).toBe(first.json<{ id: string }>().id);
  });
});

describe('refusals before a route runs are problem+json too', () => {
  it('bad percent-encoding and over-long path parameters: 400 bad-request naming the path', async () => {
    const { app } = await scope.open();
    for (const url of ['/v1/jobs/%ZZ', '/v1/jobs/%', '/v1/jobs/%E2%82', `/v1/jobs/${'a'.repeat(5000)}`]) {
      const problem = expectProblem(await app.inject({ method: 'GET', url }), 400, 'bad-request');
      expect(problem.errors).toEqual([expect.objectContaining({ pointer: 'path' })]);
      expect(problem.detail.length).toBeLessThan(300);
    }
  });

  it('unknown methods and routes: 404 not-found, with the request line clipped', async () => {
    const { app } = await scope.open();
    for (const method of ['TRACE', 'PATCH', 'PROPFIND', 'OPTIONS', 'PUT'] as const) {
      expectProblem(await app.inject({ method, url: '/v1/jobs/x/result/y' }), 404, 'not-found');
    }
    const long = expectProblem(
      await app.inject({ method: 'GET', url: `/nowhere/${'x'.repeat(5000)}` }),
      404,
      'not-found',
    );
    expect(long.detail.length).toBeLessThan(300);
  });

  it('a CORS preflight without Origin or Access-Control-Request-Method: 400 invalid-preflight', async () => {
    const { app } = await scope.open({ corsOrigins: ['https://app.example.com'] });
    for (const headers of [{}, { origin: 'https://app.example.com' }, { 'access-control-request-method': 'GET' }]) {
      expectProblem(await app.inject({ method: 'OPTIONS', url: '/v1/jobs/abc', headers }), 400, 'invalid-preflight');
    }
    const ok = await app.inject({
      method: 'OPTIONS',
      url: '/v1/jobs/abc',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
    });
    expect(ok.statusCode).toBe(204);
    expectProblem(await app.inject({ method: 'OPTIONS', url: '/admin/jobs' }), 404, 'not-found');
  });

  it('bodies where none belongs: parsed and ignored, or 415 / 400 as problems', async () => {
    const { app } = await scope.open();
    const deleted = await app.inject({ method: 'DELETE', url: '/v1/jobs/abc', headers: json, payload: '{"a":1}' });
    expect(deleted.statusCode).toBe(204);
    expectProblem(
      await app.inject({
        method: 'DELETE',
        url: '/v1/jobs/abc',
        headers: { 'content-type': 'text/plain' },
        payload: 'x',
      }),
      415,
      'unsupported-media-type',
    );
    expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs/abc/cancel', headers: json, payload: '{bad' }),
      400,
      'malformed-json',
    );
    expectProblem(
      await app.inject({ method: 'POST', url: '/v1/jobs', headers: json, payload: '{"__proto__":{"x":1}}' }),
      400,
      'malformed-json',
    );
  });

  it('every problem code the service answers with is explained at /problems/{code}', async () => {
    const { app } = await scope.open();
    for (const code of [
      'json-too-deep',
      'malformed-request',
      'headers-too-large',
      'request-timeout',
      'invalid-preflight',
      'expectation-failed',
    ]) {
      const response = await app.inject({ method: 'GET', url: `/problems/${code}` });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        code,
        status: problemCatalog[code as keyof typeof problemCatalog].status,
      });
    }
  });
});

describe('HEAD of an event stream', () => {
  it("answers the stream's headers and ends, instead of holding the connection without a word", async () => {
    const harness = await scope.open();
    const job = await harness.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } });
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (harness.app.server.address() as AddressInfo).port;
    for (const path of [
      `/v1/jobs/${job.json<{ id: string }>().id}/events`,
      `/v1/events?job_id=${job.json<{ id: string }>().id}`,
      '/admin/events',
    ]) {
      const outcome = await rawRequest(port, `HEAD ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, {
        head: true,
        timeoutMs: 5000,
      });
      expect(outcome.error, path).toBeUndefined();
      expect(outcome.response?.status).toBe(200);
      expect(outcome.response?.headers['content-type']).toMatch(/^text\/event-stream/);
    }
  });
});
