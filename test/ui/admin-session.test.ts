import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ADMIN_SESSION_TTL_S, AdminSessions, adminKeyring } from '../../src/http/admin-auth.js';
import { ADMIN_UI_CSP } from '../../src/routes/admin-ui.js';
import { createJob, expectProblem, harnessScope } from '../routes/helpers.js';

/*
 * The dashboard's sign-in and its security model, through app.inject: the session cookie, CSRF checks on
 * cookie writes (Bearer writes unaffected), roles, the sign-in brake, and the page's headers (CSP).
 */

const scope = harnessScope();
afterEach(() => scope.closeAll());

const VIEWER = 'viewer-key-0123456789abcdef';
const OPERATOR = 'operator-key-0123456789abcdef';
const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator` }).ADMIN_KEYS!;

async function signIn(
  app: FastifyInstance,
  key: string,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/admin/session', payload: { key }, headers });
}

/** The `ajs_admin=<token>` pair of a sign-in's Set-Cookie, ready for a Cookie header. */
function sessionCookie(response: LightMyRequestResponse): string {
  const header = response.headers['set-cookie'];
  const cookie = (Array.isArray(header) ? header[0] : header) ?? '';
  return cookie.split(';')[0]!;
}

/** A canceled job: retryable, so an allowed retry answers 200. */
async function canceledJob(app: FastifyInstance): Promise<string> {
  const job = await createJob(app, { type: 'echo' });
  await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
  return job.id;
}

const retry = (app: FastifyInstance, id: string, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url: `/admin/jobs/${id}/retry`, headers } satisfies InjectOptions);

describe('dashboard sign-in (POST /admin/session)', () => {
  it('a right key sets an HttpOnly, SameSite=Strict, Path=/admin cookie holding a signed token, not the key', async () => {
    const { app } = await scope.open({ adminKeys });
    const response = await signIn(app, OPERATOR);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<{ role: string; key_id: string; expires_at: string; via: string }>();
    expect(body).toMatchObject({ role: 'operator', via: 'session' });
    expect(body.key_id).toMatch(/^[0-9a-f]{8}$/);
    expect(Date.parse(body.expires_at) - Date.now()).toBeGreaterThan((ADMIN_SESSION_TTL_S - 60) * 1000);

    const setCookie = String(response.headers['set-cookie']);
    expect(setCookie).toMatch(/^ajs_admin=[\w-]+\.[\w-]+;/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\/admin;/);
    expect(setCookie).toMatch(/; Max-Age=43200;/);
    expect(setCookie).not.toMatch(/Secure/); // plain http here; over https (or behind a TLS proxy) it is Secure:
    const behindTls = await signIn(app, OPERATOR, { 'x-forwarded-proto': 'https' });
    expect(String(behindTls.headers['set-cookie'])).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    expect(setCookie).not.toContain(OPERATOR);
    expect(response.headers['cache-control']).toBe('no-store');

    // The cookie alone authenticates reads, with the key's role.
    const cookie = sessionCookie(response);
    expect((await app.inject({ method: 'GET', url: '/admin/stats', headers: { cookie } })).statusCode).toBe(200);
    const me = await app.inject({ method: 'GET', url: '/admin/session', headers: { cookie } });
    expect(me.json()).toMatchObject({ role: 'operator', key_id: body.key_id, via: 'session' });
  });

  it('a wrong key answers 401 unauthorized and sets no cookie; a malformed body answers 422', async () => {
    const { app } = await scope.open({ adminKeys });
    const response = await signIn(app, 'wrong-key-0123456789abcdef');
    expect(expectProblem(response, 401, 'unauthorized').detail).toMatch(/not valid/);
    expect(response.headers['set-cookie']).toBeUndefined();
    expectProblem(await app.inject({ method: 'POST', url: '/admin/session', payload: {} }), 422, 'validation-failed');
    expectProblem(await app.inject({ method: 'GET', url: '/admin/session' }), 401, 'unauthorized');
  });

  it('a tampered, foreign or expired token is refused with 401, even for reads', async () => {
    const { app } = await scope.open({ adminKeys });
    const cookie = sessionCookie(await signIn(app, VIEWER));
    const [payload, signature] = cookie.slice('ajs_admin='.length).split('.');
    // Claiming the operator role with the viewer's signature:
    const forged = Buffer.from(Buffer.from(payload!, 'base64url').toString().replace('viewer', 'operator')).toString(
      'base64url',
    );
    expect(forged).not.toBe(payload);
    // The signature with its first character changed, always to a different one (setting it to a fixed
    // character would leave it unchanged whenever the signature already starts with that character).
    const tampered = `${payload}.${signature!.startsWith('A') ? 'B' : 'A'}${signature!.slice(1)}`;
    expect(tampered).not.toBe(`${payload}.${signature}`);
    for (const value of [`${forged}.${signature}`, tampered, 'garbage', '']) {
      const response = await app.inject({
        method: 'GET',
        url: '/admin/stats',
        headers: { cookie: `ajs_admin=${value}` },
      });
      expect(expectProblem(response, 401, 'unauthorized').detail).toMatch(/sign in again/);
    }
    // Another instance with its own random secret does not take this instance's tokens...
    const other = await scope.open({ adminKeys });
    expectProblem(
      await other.app.inject({ method: 'GET', url: '/admin/stats', headers: { cookie } }),
      401,
      'unauthorized',
    );
    // ...while instances sharing LINK_SIGNING_SECRET do.
    const secret = 'shared-link-signing-secret-0123456789';
    const first = await scope.open({ adminKeys, linkSigningSecret: secret });
    const second = await scope.open({ adminKeys, linkSigningSecret: secret });
    const shared = sessionCookie(await signIn(first.app, VIEWER));
    expect(
      (await second.app.inject({ method: 'GET', url: '/admin/stats', headers: { cookie: shared } })).statusCode,
    ).toBe(200);

    // Tokens end at their expiry, and with their key.
    const keys = adminKeyring(adminKeys, undefined)!;
    const sessions = new AdminSessions(Buffer.alloc(32, 7));
    const viewer = keys.find((key) => key.identity.role === 'viewer')!.identity;
    const { token } = sessions.issue(viewer, Date.now() - (ADMIN_SESSION_TTL_S + 1) * 1000);
    expect(sessions.verify(token, keys)).toBeUndefined();
    const fresh = sessions.issue(viewer).token;
    expect(sessions.verify(fresh, keys)).toMatchObject(viewer);
    expect(
      sessions.verify(
        fresh,
        keys.filter((key) => key.identity.role !== 'viewer'),
      ),
    ).toBeUndefined();
  });

  it('DELETE /admin/session clears the cookie', async () => {
    const { app } = await scope.open({ adminKeys });
    const response = await app.inject({ method: 'DELETE', url: '/admin/session' });
    expect(response.statusCode).toBe(204);
    expect(String(response.headers['set-cookie'])).toMatch(
      /^ajs_admin=; Path=\/admin; Max-Age=0; HttpOnly; SameSite=Strict/,
    );
  });

  it('after 10 failed sign-ins a minute from one address, every sign-in from it answers 429 with Retry-After', async () => {
    const { app } = await scope.open({ adminKeys });
    for (let i = 0; i < 10; i += 1)
      expectProblem(await signIn(app, `wrong-${i}-0123456789abcdef`), 401, 'unauthorized');
    const limited = await signIn(app, OPERATOR);
    expectProblem(limited, 429, 'rate-limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another address is not held back.
    const elsewhere = await app.inject({
      method: 'POST',
      url: '/admin/session',
      payload: { key: OPERATOR },
      remoteAddress: '10.9.8.7',
    });
    expect(elsewhere.statusCode, elsewhere.body).toBe(200);
  });

  it('a sign-in posted from another site is refused (login CSRF)', async () => {
    const { app } = await scope.open({ adminKeys });
    expectProblem(await signIn(app, OPERATOR, { 'sec-fetch-site': 'cross-site' }), 403, 'forbidden');
    expectProblem(await signIn(app, OPERATOR, { origin: 'https://evil.example' }), 403, 'forbidden');
    expect((await signIn(app, OPERATOR, { 'sec-fetch-site': 'same-origin' })).statusCode).toBe(200);
  });
});

describe('CSRF: writes made with the session cookie', () => {
  it('are refused with 403 forbidden (naming CSRF) unless Sec-Fetch-Site or Origin say same-origin; Bearer writes are not checked', async () => {
    const { app } = await scope.open({ adminKeys });
    const cookie = sessionCookie(await signIn(app, OPERATOR));
    const id = await canceledJob(app);

    const refusedHeaders: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site', origin: 'http://localhost:80' },
      { origin: 'https://evil.example' },
      { origin: 'null' },
      {}, // neither header: not a browser, so not a cookie client either
    ];
    for (const headers of refusedHeaders) {
      const refused = await retry(app, id, { cookie, ...headers });
      expect(expectProblem(refused, 403, 'forbidden').detail).toMatch(/CSRF/);
    }
    expectProblem(
      await app.inject({
        method: 'DELETE',
        url: `/admin/jobs/${id}`,
        headers: { cookie, 'sec-fetch-site': 'cross-site' },
      }),
      403,
      'forbidden',
    );
    // Nothing happened: the job is still canceled.
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json<{ status: string }>().status).toBe(
      'canceled',
    );

    // A script's Bearer write is unaffected by these headers.
    const bearer = await retry(app, id, {
      authorization: `Bearer ${OPERATOR}`,
      'sec-fetch-site': 'cross-site',
      origin: 'https://evil.example',
    });
    expect(bearer.statusCode, bearer.body).toBe(200);

    // The dashboard's own writes: Sec-Fetch-Site: same-origin, or (older browsers) an Origin naming this host.
    const again = await canceledJob(app);
    expect((await retry(app, again, { cookie, 'sec-fetch-site': 'same-origin' })).statusCode).toBe(200);
    const third = await canceledJob(app);
    expect((await retry(app, third, { cookie, origin: 'http://localhost:80' })).statusCode).toBe(200);
  });

  it("keeps roles: a viewer's same-origin cookie write answers 403 naming the role it needs", async () => {
    const { app } = await scope.open({ adminKeys });
    const cookie = sessionCookie(await signIn(app, VIEWER));
    const id = await canceledJob(app);
    const refused = await retry(app, id, { cookie, 'sec-fetch-site': 'same-origin' });
    expect(expectProblem(refused, 403, 'forbidden').detail).toMatch(
      /needs the operator role; this key has the viewer role/,
    );
  });

  it('without admin keys (loopback only), a write a browser marks as cross-site is refused; curl-like writes are not', async () => {
    const { app } = await scope.open();
    expectProblem(await signIn(app, OPERATOR), 403, 'forbidden');
    expect((await app.inject({ method: 'GET', url: '/admin/session' })).json()).toMatchObject({
      role: 'admin',
      via: 'loopback',
    });
    const id = await canceledJob(app);
    expectProblem(await retry(app, id, { 'sec-fetch-site': 'cross-site' }), 403, 'forbidden');
    expectProblem(await retry(app, id, { origin: 'https://evil.example' }), 403, 'forbidden');
    expect((await retry(app, id, {})).statusCode).toBe(200);
  });
});

describe('the dashboard page', () => {
  it('/admin redirects to /admin/ui; every view path is the page, with a strict CSP and no inline script or style', async () => {
    const { app } = await scope.open({ adminKeys });
    const redirect = await app.inject({ method: 'GET', url: '/admin' });
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toBe('/admin/ui');

    expect(ADMIN_UI_CSP).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    for (const url of [
      '/admin/ui',
      '/admin/ui/',
      '/admin/ui/jobs?status=failed&type=sleep',
      '/admin/ui/jobs/01JD3M5W6SX1T4KQ8V0ZC2N7GH',
    ]) {
      const page = await app.inject({ method: 'GET', url });
      expect(page.statusCode, url).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toBe(ADMIN_UI_CSP);
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      expect(page.headers['x-frame-options']).toBe('DENY');
      expect(page.body).toContain('<script type="module" src="/admin/ui/assets/app.js"></script>');
      expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
    }
    // The page needs no key; the API behind it does.
    expectProblem(await app.inject({ method: 'GET', url: '/admin/jobs' }), 401, 'unauthorized');
  });

  it('serves its script and styles with their types and the CSP, revalidated by ETag; nothing else', async () => {
    const { app } = await scope.open({ adminKeys });
    const script = await app.inject({ method: 'GET', url: '/admin/ui/assets/app.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['content-security-policy']).toBe(ADMIN_UI_CSP);
    // Data reaches the page as text only.
    expect(script.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    // The page's pure functions, an ES module app.js imports from beside it.
    const format = await app.inject({ method: 'GET', url: '/admin/ui/assets/format.js' });
    expect(format.statusCode).toBe(200);
    expect(format.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(format.headers['content-security-policy']).toBe(ADMIN_UI_CSP);
    expect(format.body).toContain('export function fmtDuration');
    expect(format.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    // Every other module app.js imports, directly or not: test/ui/admin-ui-assets.test.ts.
    const styles = await app.inject({ method: 'GET', url: '/admin/ui/assets/app.css' });
    expect(styles.headers['content-type']).toBe('text/css; charset=utf-8');
    const etag = String(styles.headers.etag);
    expect(
      (await app.inject({ method: 'GET', url: '/admin/ui/assets/app.css', headers: { 'if-none-match': etag } }))
        .statusCode,
    ).toBe(304);
    for (const url of [
      '/admin/ui/assets/index.html',
      '/admin/ui/assets/nope.js',
      '/admin/ui/assets/format.d.ts',
      '/admin/ui/assets/..%2Fapp-ui.ts',
    ]) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(404);
    }
  });

  it('the build copies the page beside the compiled routes (dist/admin-ui)', () => {
    if (!existsSync(new URL('../../dist/server.js', import.meta.url))) return; // not built: npm test builds before it runs the tests
    const modules = readdirSync(new URL('../../src/admin-ui/', import.meta.url), {
      recursive: true,
      encoding: 'utf8',
    }).filter((name) => name.endsWith('.js'));
    expect(modules).toContain(join('views', 'jobs.js'));
    for (const name of ['index.html', 'app.css', ...modules]) {
      expect(
        existsSync(new URL(`../../dist/admin-ui/${name}`, import.meta.url)),
        `dist/admin-ui/${name} (npm run build copies src/admin-ui)`,
      ).toBe(true);
    }
    // Not the type checker's files: the page never loads them.
    for (const name of ['format.d.ts', 'api-types.d.ts', 'tsconfig.json'])
      expect(existsSync(new URL(`../../dist/admin-ui/${name}`, import.meta.url)), name).toBe(false);
  });
});
