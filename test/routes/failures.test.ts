import type { InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import type { JobRecord, NewJob } from '../../src/jobs/job.js';
import { newJobId } from '../../src/jobs/job-id.js';
import type { JobStore, ListPage, StoreStats } from '../../src/store/job-store.js';
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
    const { app } = await scope.open({ store: failingStore(() => new StoreUnavailableError('redis: connection refused to 10.0.0.5:6379')) });
    const response = await app.inject(request);
    const problem = expectProblem(response, 503, 'store-unavailable');
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(problem.detail).not.toContain('10.0.0.5');
  });

  it('still validates before touching the store', async () => {
    const { app } = await scope.open({ store: failingStore(() => new StoreUnavailableError('down')) });
    expectProblem(await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'nope' } }), 422, 'unknown-job-type');
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
    expect((await app.inject({ method: 'GET', url: '/problems/job-error' })).json()).toMatchObject({ code: 'job-error' });
    expectProblem(await app.inject({ method: 'GET', url: '/problems/nope' }), 404, 'not-found');
  });
});

describe('GET /problems/{code} with inherited property names', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('%s is not a problem type: 404', async (code) => {
    const { app } = await scope.open();
    expectProblem(await app.inject({ method: 'GET', url: `/problems/${code}` }), 404, 'not-found');
  });
});
