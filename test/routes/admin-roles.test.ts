import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { adminGuard, adminKeyring, requiredAdminRole, type AdminRole } from '../../src/http/admin-auth.js';
import { createJob, expectProblem, harnessScope } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef';
const HASHED_OPERATOR = 'hashed-operator-key-0123456789';
const TOKEN = 'test-admin-token-0123456789';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The keys as the service would get them from ADMIN_KEYS (parsed and validated by the config). */
const adminKeys = loadConfig({
  ADMIN_KEYS: `${VIEWER}:viewer, ${OPERATOR}:operator,${ADMIN}:admin,sha256:${sha256(HASHED_OPERATOR).toUpperCase()}:operator`,
}).ADMIN_KEYS!;

const call = (app: FastifyInstance, method: InjectOptions['method'], url: string, key?: string) =>
  app.inject({ method, url, headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });

/** A canceled job: retryable, so an allowed retry answers 200. */
async function canceledJob(app: FastifyInstance): Promise<string> {
  const job = await createJob(app, { type: 'echo' });
  await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
  return job.id;
}

describe('admin roles (ADMIN_KEYS)', () => {
  it('viewer: reads jobs and stats, but every write answers 403 forbidden naming the role it needs', async () => {
    const { app } = await scope.open({ adminKeys });
    expect((await call(app, 'GET', '/admin/jobs', VIEWER)).statusCode).toBe(200);
    expect((await call(app, 'GET', '/admin/stats', VIEWER)).statusCode).toBe(200);
    expect((await call(app, 'GET', '/admin/jobs?stuck=true', VIEWER)).statusCode).toBe(200);

    const id = await canceledJob(app);
    const retry = await call(app, 'POST', `/admin/jobs/${id}/retry`, VIEWER);
    expect(expectProblem(retry, 403, 'forbidden').detail).toMatch(
      /needs the operator role; this key has the viewer role/,
    );
    expect(retry.headers['www-authenticate']).toMatch(/^Bearer .*error="insufficient_scope"/);
    const purge = await call(app, 'DELETE', '/admin/jobs?older_than_s=0', VIEWER);
    expect(expectProblem(purge, 403, 'forbidden').detail).toMatch(/needs the admin role/);
    // Refused writes did nothing: the job is still canceled.
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json<{ status: string }>().status).toBe(
      'canceled',
    );
  });

  it('operator: retries, but purging answers 403 naming the admin role', async () => {
    const { app } = await scope.open({ adminKeys });
    expect((await call(app, 'GET', '/admin/stats', OPERATOR)).statusCode).toBe(200);
    const id = await canceledJob(app);
    const retry = await call(app, 'POST', `/admin/jobs/${id}/retry`, OPERATOR);
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.json<{ status: string }>().status).toBe('queued');
    const purge = await call(app, 'DELETE', '/admin/jobs?older_than_s=0', OPERATOR);
    expect(expectProblem(purge, 403, 'forbidden').detail).toMatch(
      /DELETE \/admin\/jobs needs the admin role; this key has the operator role/,
    );
  });

  it('admin: reads, retries and purges', async () => {
    const { app } = await scope.open({ adminKeys });
    expect((await call(app, 'GET', '/admin/jobs', ADMIN)).statusCode).toBe(200);
    const id = await canceledJob(app);
    expect((await call(app, 'POST', `/admin/jobs/${id}/retry`, ADMIN)).statusCode).toBe(200);
    const other = await canceledJob(app);
    const purge = await call(app, 'DELETE', '/admin/jobs?status=canceled&older_than_s=0', ADMIN);
    expect(purge.statusCode, purge.body).toBe(200);
    expect(purge.json()).toEqual({ deleted: 1 });
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${other}` }), 410, 'job-gone');
  });

  it('ADMIN_TOKEN acts as an admin key, beside ADMIN_KEYS or alone', async () => {
    for (const deps of [{ adminKeys, adminToken: TOKEN }, { adminToken: TOKEN }]) {
      const { app } = await scope.open(deps);
      expect((await call(app, 'GET', '/admin/stats', TOKEN)).statusCode).toBe(200);
      expect((await call(app, 'POST', `/admin/jobs/${await canceledJob(app)}/retry`, TOKEN)).statusCode).toBe(200);
      expect((await call(app, 'DELETE', '/admin/jobs?older_than_s=3600', TOKEN)).statusCode).toBe(200);
    }
  });

  it('a key configured as sha256:<hex> (any case) is matched by its hash and gets its role', async () => {
    const { app } = await scope.open({ adminKeys });
    expect((await call(app, 'POST', `/admin/jobs/${await canceledJob(app)}/retry`, HASHED_OPERATOR)).statusCode).toBe(
      200,
    );
    expectProblem(await call(app, 'DELETE', '/admin/jobs', HASHED_OPERATOR), 403, 'forbidden');
    // The hash itself is not a key.
    expectProblem(await call(app, 'GET', '/admin/stats', sha256(HASHED_OPERATOR)), 401, 'unauthorized');
  });

  it('no key or a wrong one: 401 with WWW-Authenticate, on reads and writes, from any address', async () => {
    const { app } = await scope.open({ adminKeys });
    for (const [method, url] of [
      ['GET', '/admin/stats'],
      ['GET', '/admin/jobs'],
      ['DELETE', '/admin/jobs'],
    ] as const) {
      for (const key of [undefined, 'wrong-key-0123456789abcdef', `${ADMIN}x`, TOKEN]) {
        const response = await call(app, method, url, key);
        expectProblem(response, 401, 'unauthorized');
        expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="admin"/);
      }
    }
    // Loopback alone is not enough once keys are configured.
    expectProblem(
      await app.inject({ method: 'GET', url: '/admin/stats', remoteAddress: '127.0.0.1' }),
      401,
      'unauthorized',
    );
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/admin/stats',
          remoteAddress: '10.1.2.3',
          headers: { authorization: `bearer ${VIEWER}` },
        })
      ).statusCode,
    ).toBe(200);
  });

  it('neither ADMIN_KEYS nor ADMIN_TOKEN: loopback clients keep every right, others get 403', async () => {
    const { app } = await scope.open();
    expect((await call(app, 'POST', `/admin/jobs/${await canceledJob(app)}/retry`)).statusCode).toBe(200);
    expect((await call(app, 'DELETE', '/admin/jobs')).statusCode).toBe(200);
    expectProblem(
      await app.inject({ method: 'GET', url: '/admin/stats', remoteAddress: '10.1.2.3' }),
      403,
      'forbidden',
    );
  });

  it('decorates the request with the role and a short non-secret key id, never the key', async () => {
    const guard = adminGuard(adminKeyring(adminKeys, TOKEN));
    const identityOf = async (key: string) => {
      const request = fakeRequest('GET', { authorization: `Bearer ${key}` });
      await guard(request);
      return request.admin;
    };
    expect(await identityOf(OPERATOR)).toEqual({ role: 'operator', keyId: sha256(OPERATOR).slice(0, 8) });
    expect(await identityOf(HASHED_OPERATOR)).toEqual({ role: 'operator', keyId: sha256(HASHED_OPERATOR).slice(0, 8) });
    expect(await identityOf(TOKEN)).toEqual({ role: 'admin', keyId: sha256(TOKEN).slice(0, 8) });
    const open = fakeRequest('GET', {});
    await adminGuard(undefined)(open);
    expect(open.admin).toEqual({ role: 'admin', keyId: 'loopback' });
    // What the guard keeps: digests and identities, no key.
    expect(JSON.stringify(adminKeyring(adminKeys, TOKEN))).not.toMatch(new RegExp(`${OPERATOR}|${TOKEN}|${VIEWER}`));
  });

  it('any write needs at least operator, whatever a route asks for; a read needs what the route asks for', () => {
    expect(requiredAdminRole(fakeRequest('GET', {}))).toBe('viewer');
    expect(requiredAdminRole(fakeRequest('HEAD', {}))).toBe('viewer');
    expect(requiredAdminRole(fakeRequest('GET', {}, 'admin'))).toBe('admin');
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      expect(requiredAdminRole(fakeRequest(method, {}))).toBe('operator');
      expect(requiredAdminRole(fakeRequest(method, {}, 'viewer'))).toBe('operator');
      expect(requiredAdminRole(fakeRequest(method, {}, 'admin'))).toBe('admin');
    }
  });
});

/** Just what the guard reads of a request, for unit checks of the guard itself. */
function fakeRequest(method: string, headers: Record<string, string>, adminRole?: AdminRole): FastifyRequest {
  return {
    method,
    url: '/admin/x',
    headers,
    socket: { remoteAddress: '127.0.0.1' },
    routeOptions: { url: '/admin/x', config: adminRole === undefined ? {} : { adminRole } },
    admin: null,
  } as unknown as FastifyRequest;
}
