import { randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { DeclaredTypes } from '../../src/job-types/declared-types.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import type { OpsStore } from '../../src/ops/ops-store.js';
import { RedisOpsStore } from '../../src/ops/redis-ops-store.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import { waitFor } from '../helpers/wait-for.js';
import { createJob, expectProblem, harnessScope } from './helpers.js';

const scope = harnessScope();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await scope.closeAll();
  while (closers.length > 0) await closers.pop()!();
});

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef';
const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator,${ADMIN}:admin` }).ADMIN_KEYS!;

const call = (app: FastifyInstance, method: InjectOptions['method'], url: string, key: string, payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
  });

const reportSchema = {
  type: 'object',
  properties: {
    url: { type: 'string', format: 'uri' },
    pages: { type: 'integer', minimum: 1 },
    'a/b': { type: 'string' },
  },
  required: ['url'],
  additionalProperties: false,
};
const declaration = {
  input_schema: reportSchema,
  description: 'Builds a PDF report',
  timeout_s: 90,
  max_attempts: 7,
  rate: { max: 10, per_s: 2 },
};

interface JobTypeItem {
  type: string;
  served_by: 'in-process' | 'remote';
  description: string | null;
  input_schema: Record<string, unknown>;
  timeout_s: number | null;
  max_attempts: number;
}
const jobTypes = async (app: FastifyInstance): Promise<Record<string, JobTypeItem>> => {
  const response = await app.inject({ method: 'GET', url: '/v1/job-types' });
  expect(response.statusCode, response.body).toBe(200);
  return Object.fromEntries(response.json<{ data: JobTypeItem[] }>().data.map((item) => [item.type, item]));
};

/** Two stores on one key base, as two instances of the service have (Redis only: memory stores share nothing). */
interface Backend {
  name: string;
  stores(): Promise<{ store: JobStore; ops: OpsStore }>;
  /** Another instance's stores over the same data; undefined when the backend cannot share. */
  sibling?: () => Promise<{ store: JobStore; ops: OpsStore }>;
}

const memory: Backend = {
  name: 'memory',
  async stores() {
    return { store: new MemoryJobStore({ jobTtlMs: 60_000 }), ops: new MemoryOpsStore() };
  },
};

function redisBackend(): Backend {
  const keyPrefix = `t${randomUUID().slice(0, 8)}`;
  const connect = async () => {
    const store = await RedisJobStore.connect({
      url: inject('redisUrl'),
      keyPrefix,
      jobTtlMs: 60_000,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 1000,
    });
    return { store, ops: new RedisOpsStore(store.redis, store.keys.base) };
  };
  return { name: 'redis', stores: connect, sibling: connect };
}

describe.each([{ backend: () => memory }, { backend: redisBackend }])(
  'declared job types ($backend.name)',
  ({ backend: makeBackend }) => {
    const open = async () => {
      const backend = makeBackend();
      const harness = await scope.open({ adminKeys, ...(await backend.stores()) });
      return { ...harness, backend };
    };

    it('admins declare, replace and remove a type; viewers read it; every write is audited', async () => {
      const { app } = await open();
      expectProblem(await call(app, 'PUT', '/admin/job-types/report', VIEWER, declaration), 403, 'forbidden');
      expectProblem(await call(app, 'PUT', '/admin/job-types/report', OPERATOR, declaration), 403, 'forbidden');

      const created = await call(app, 'PUT', '/admin/job-types/report', ADMIN, declaration);
      expect(created.statusCode, created.body).toBe(201);
      expect(created.headers.location).toBe('/admin/job-types/report');
      const first = created.json<Record<string, unknown>>();
      expect(first).toEqual({
        type: 'report',
        input_schema: reportSchema,
        description: 'Builds a PDF report',
        timeout_s: 90,
        max_attempts: 7,
        max_concurrency: null,
        rate: { max: 10, per_s: 2 },
        lease_s: null,
        key_concurrency: null,
        fair_by: null,
        created_at: expect.any(String) as string,
        updated_at: first.created_at,
      });

      const replaced = await call(app, 'PUT', '/admin/job-types/report', ADMIN, {
        input_schema: { type: 'object' },
        lease_s: 60,
        key_concurrency: 2,
        fair_by: 'key',
      });
      expect(replaced.statusCode, replaced.body).toBe(200);
      const second = replaced.json<Record<string, unknown>>();
      expect(second).toMatchObject({
        input_schema: { type: 'object' },
        description: null,
        timeout_s: null,
        rate: null,
        lease_s: 60,
        key_concurrency: 2,
        fair_by: 'key',
        created_at: first.created_at,
      });
      expect(Date.parse(second.updated_at as string)).toBeGreaterThanOrEqual(Date.parse(first.created_at as string));

      const read = await call(app, 'GET', '/admin/job-types/report', VIEWER);
      expect(read.statusCode, read.body).toBe(200);
      expect(read.json()).toEqual(second);

      expectProblem(await call(app, 'DELETE', '/admin/job-types/report', OPERATOR), 403, 'forbidden');
      const removed = await call(app, 'DELETE', '/admin/job-types/report', ADMIN);
      expect(removed.statusCode, removed.body).toBe(204);
      expectProblem(await call(app, 'GET', '/admin/job-types/report', VIEWER), 404, 'job-type-not-declared');
      expectProblem(await call(app, 'DELETE', '/admin/job-types/report', ADMIN), 404, 'job-type-not-declared');

      const audit = await call(app, 'GET', '/admin/audit', VIEWER);
      expect(
        audit
          .json<{ data: { action: string; target: string; detail: unknown }[] }>()
          .data.map(({ action, target, detail }) => ({ action, target, detail })),
      ).toEqual([
        { action: 'type.undeclare', target: 'report', detail: {} },
        { action: 'type.declare', target: 'report', detail: { created: false } },
        { action: 'type.declare', target: 'report', detail: { created: true } },
      ]);
    });

    it('refuses schemas that do not compile, too large ones, remote $refs, bad bodies and bad names', async () => {
      const { app } = await open();
      const refused = async (body: unknown, pointer: string, detail: RegExp) => {
        const problem = expectProblem(
          await call(app, 'PUT', '/admin/job-types/report', ADMIN, body),
          422,
          'validation-failed',
        );
        expect(problem.errors).toEqual([{ pointer, detail: expect.stringMatching(detail) as string }]);
      };
      await refused(
        { input_schema: { type: 'object', properties: { n: { type: 'nmber' } } } },
        '/input_schema',
        /type/,
      );
      await refused(
        { input_schema: { type: 'string', minLenght: 3 } },
        '/input_schema',
        /unknown keyword: "minLenght"/,
      );
      await refused(
        { input_schema: { $ref: 'https://schemas.example.com/report.json' } },
        '/input_schema',
        /can't resolve reference/,
      );
      await refused({ input_schema: { type: 'string', format: 'no-such-format' } }, '/input_schema', /unknown format/);
      await refused(
        { input_schema: { enum: Array.from({ length: 7000 }, (_, i) => `value-${i}`) } },
        '/input_schema',
        /larger than 65536 bytes/,
      );
      await refused({ input_schema: [] }, '/input_schema', /.+/);
      await refused({ input_schema: {}, max_attempts: 0 }, '/max_attempts', /.+/);
      const unknownField = expectProblem(
        await call(app, 'PUT', '/admin/job-types/report', ADMIN, { input_schema: {}, retries: 3 }),
        422,
        'validation-failed',
      );
      expect(unknownField.errors).toEqual([{ pointer: '/retries', detail: expect.any(String) as string }]);
      expectProblem(
        await call(app, 'PUT', '/admin/job-types/Not_A_Type', ADMIN, { input_schema: {} }),
        400,
        'bad-request',
      );
      // Nothing was stored by any of them.
      expectProblem(await call(app, 'GET', '/admin/job-types/report', VIEWER), 404, 'job-type-not-declared');
    });

    it('refuses the name of a type an in-process handler serves (409)', async () => {
      const { app } = await open();
      const clash = expectProblem(
        await call(app, 'PUT', '/admin/job-types/echo', ADMIN, { input_schema: {} }),
        409,
        'job-type-served-in-process',
      );
      expect(clash.detail).toMatch(/"echo"/);
      expect((await jobTypes(app)).echo).toMatchObject({ served_by: 'in-process' });
    });

    it('clients submit jobs of a declared type, checked against its JSON Schema, with its defaults; the listing shows it as remote', async () => {
      const { app, store } = await open();
      expect((await call(app, 'PUT', '/admin/job-types/report', ADMIN, declaration)).statusCode).toBe(201);

      const types = await jobTypes(app);
      expect(types.echo).toMatchObject({ served_by: 'in-process', description: null });
      expect(types.report).toEqual({
        type: 'report',
        served_by: 'remote',
        description: 'Builds a PDF report',
        input_schema: reportSchema,
        timeout_s: 90,
        max_attempts: 7,
      });

      const job = await createJob(app, { type: 'report', input: { url: 'https://example.com/q3', pages: 2 } });
      expect(job).toMatchObject({
        type: 'report',
        status: 'queued',
        input: { url: 'https://example.com/q3', pages: 2 },
        max_attempts: 7,
      });
      expect((await store.get(job.id))?.timeoutS).toBe(90);
      const own = await createJob(app, {
        type: 'report',
        input: { url: 'https://example.com' },
        max_attempts: 2,
        timeout_s: 5,
      });
      expect(own.max_attempts).toBe(2);
      expect((await store.get(own.id))?.timeoutS).toBe(5);

      const invalid = await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { type: 'report', input: { pages: 0, extra: true, 'a/b': 1 } },
      });
      const problem = expectProblem(invalid, 422, 'validation-failed');
      expect(problem.detail).toBe('The input does not fit job type "report".');
      expect(problem.errors).toEqual(
        expect.arrayContaining([
          { pointer: '/input/url', detail: 'required' },
          { pointer: '/input/pages', detail: 'must be >= 1' },
          { pointer: '/input/extra', detail: 'unknown field' },
          { pointer: '/input/a~1b', detail: 'must be string' },
        ]),
      );
      expect(problem.errors).toHaveLength(4);
      const badFormat = expectProblem(
        await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'report', input: { url: 'not a uri' } } }),
        422,
        'validation-failed',
      );
      expect(badFormat.errors).toEqual([{ pointer: '/input/url', detail: 'must match format "uri"' }]);
      const notAnObject = expectProblem(
        await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'report', input: 'x' } }),
        422,
        'validation-failed',
      );
      expect(notAnObject.errors).toEqual([{ pointer: '/input', detail: 'must be object' }]);

      const unknown = expectProblem(
        await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'nope', input: {} } }),
        422,
        'unknown-job-type',
      );
      expect(unknown.known_types).toEqual(expect.arrayContaining(['echo', 'sleep', 'report']));
    });

    it('refuses to remove a type while jobs of it are queued, and removes it once they are canceled', async () => {
      const { app } = await open();
      expect((await call(app, 'PUT', '/admin/job-types/report', ADMIN, declaration)).statusCode).toBe(201);
      const job = await createJob(app, { type: 'report', input: { url: 'https://example.com' } });
      const inUse = expectProblem(await call(app, 'DELETE', '/admin/job-types/report', ADMIN), 409, 'job-type-in-use');
      expect(inUse.active).toBe(1);
      expect((await jobTypes(app)).report).toBeDefined();

      const canceled = await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
      expect(canceled.json()).toMatchObject({ status: 'canceled' });
      expect((await call(app, 'DELETE', '/admin/job-types/report', ADMIN)).statusCode).toBe(204);
      expect((await jobTypes(app)).report).toBeUndefined();
      expectProblem(
        await app.inject({
          method: 'POST',
          url: '/v1/jobs',
          payload: { type: 'report', input: { url: 'https://example.com' } },
        }),
        422,
        'unknown-job-type',
      );
      // The canceled job is still readable.
      expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).statusCode).toBe(200);
    });
  },
);

// Only a store two instances can share (Redis) has another instance to tell: memory stores share nothing.
describe('declared job types across instances (redis)', () => {
  it('another instance on the same store hears of a declaration, and it survives a restart', async () => {
    const backend = redisBackend();
    const sibling = backend.sibling!;
    const { app } = await scope.open({ adminKeys, ...(await backend.stores()) });
    const other = await scope.open({ adminKeys, ...(await sibling()) });
    expect((await jobTypes(other.app)).report).toBeUndefined();

    expect((await call(app, 'PUT', '/admin/job-types/report', ADMIN, declaration)).statusCode).toBe(201);
    // The control message reaches the other instance's cache: it lists the type and checks inputs against it.
    await waitFor(async () => (await jobTypes(other.app)).report, {
      what: 'the other instance to list the declared type',
    });
    await createJob(other.app, { type: 'report', input: { url: 'https://example.com' } });
    expectProblem(
      await other.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'report', input: {} } }),
      422,
      'validation-failed',
    );

    // A restarted instance (a new load over the same Redis) finds it.
    const restarted = await sibling();
    closers.push(
      () => restarted.store.close(),
      () => restarted.ops.close(),
    );
    const loaded = await DeclaredTypes.load(restarted.ops);
    closers.push(() => loaded.close());
    expect(loaded.get('report')).toMatchObject({
      type: 'report',
      input_schema: reportSchema,
      max_attempts: 7,
      timeout_s: 90,
    });
    expect(loaded.limits()).toEqual({ report: { rate: { max: 10, perMs: 2000 } } });
    expect(loaded.validate('report', { url: 'https://example.com' })).toEqual([]);

    // And a removal reaches the other instance too.
    expect((await call(app, 'PUT', '/admin/job-types/other', ADMIN, { input_schema: {} })).statusCode).toBe(201);
    expect((await call(app, 'DELETE', '/admin/job-types/other', ADMIN)).statusCode).toBe(204);
    await waitFor(() => loaded.get('other') === undefined && loaded.get('report') !== undefined, {
      what: 'the removal to reach the restarted instance',
    });
    await waitFor(async () => !(await jobTypes(other.app)).other, { what: 'the removal to reach the other instance' });
  });
});
