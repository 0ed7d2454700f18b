import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ADMIN_ROLES, keyDigest, type AdminRole, type ConfiguredKey } from '../config.js';
import { HttpProblem } from '../errors.js';

export type { AdminRole } from '../config.js';

/** Who is calling an admin route: the role its key grants and a short, non-secret label of that key. */
export interface AdminIdentity {
  role: AdminRole;
  /** The first 8 hex digits of the key's SHA-256 (`loopback` when no admin keys are configured): safe to log. */
  keyId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on /admin routes once the guard let the request through; null elsewhere. */
    admin: AdminIdentity | null;
  }
  interface FastifyContextConfig {
    /** The least role an admin route needs; by default `viewer` for GET/HEAD, `operator` for writes. */
    adminRole?: AdminRole;
  }
  interface FastifyInstance {
    /** Signs and checks the dashboard's session cookie (set by buildApp); without it the guard takes Bearer keys only. */
    adminSessions?: AdminSessions;
  }
}

/** One admin key: its SHA-256 (the only form kept) and what it grants. */
export interface AdminKey {
  digest: Buffer;
  identity: AdminIdentity;
}

/** A role's rank: its place in ADMIN_ROLES (least to most). */
const rank = (role: AdminRole): number => ADMIN_ROLES.indexOf(role);
const readMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether a socket's address is the loopback one (never X-Forwarded-For, which a client can write). */
export const isLoopback = (address: string | undefined): boolean =>
  address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * The admin keys from ADMIN_KEYS (`key:role`, parsed and validated by the config) plus ADMIN_TOKEN, which
 * counts as an `admin` key; undefined when neither is set (admin routes then answer loopback clients only).
 */
export function adminKeyring(
  entries: (ConfiguredKey & { role: AdminRole })[] | undefined,
  adminToken: string | undefined,
): AdminKey[] | undefined {
  const all = [...(entries ?? []), ...(adminToken === undefined ? [] : [{ key: adminToken, role: 'admin' as const }])];
  if (all.length === 0) return undefined;
  return all.map((entry) => {
    const hex = keyDigest(entry);
    return { digest: Buffer.from(hex, 'hex'), identity: { role: entry.role, keyId: hex.slice(0, 8) } };
  });
}

/** The role a route needs: its `adminRole` config, never less than `operator` for a write. */
export function requiredAdminRole(request: FastifyRequest): AdminRole {
  const configured = request.routeOptions.config.adminRole;
  const floor: AdminRole = readMethods.has(request.method) ? 'viewer' : 'operator';
  return configured !== undefined && rank(configured) > rank(floor) ? configured : floor;
}

/**
 * The identity of the admin key `presented` (the key itself), or undefined. Digests are compared, each in
 * constant time, and every key is looked at: no timing says which matched.
 */
export function matchAdminKey(keys: AdminKey[], presented: string | undefined): AdminIdentity | undefined {
  const presentedDigest = presented === undefined ? undefined : digest(presented);
  let found: AdminIdentity | undefined;
  for (const key of keys) {
    if (presentedDigest !== undefined && timingSafeEqual(presentedDigest, key.digest) && found === undefined)
      found = key.identity;
  }
  return found;
}

/** The dashboard's session cookie: HttpOnly, SameSite=Strict, Path=/admin, 12 hours. */
export const ADMIN_SESSION_COOKIE = 'ajs_admin';
export const ADMIN_SESSION_TTL_S = 12 * 60 * 60;

/**
 * Session tokens for the dashboard's cookie, so the cookie never holds the admin key:
 * `base64url({"k":keyId,"r":role,"e":expiry s})` `.` HMAC-SHA256 of it (domain-separated from every other
 * use of the secret). A token is good until its expiry while a key with that id and role is still configured.
 */
export class AdminSessions {
  constructor(private readonly secret: Buffer) {}

  issue(identity: AdminIdentity, now = Date.now()): { token: string; expiresAt: Date } {
    const expiresS = Math.floor(now / 1000) + ADMIN_SESSION_TTL_S;
    const payload = Buffer.from(JSON.stringify({ k: identity.keyId, r: identity.role, e: expiresS })).toString(
      'base64url',
    );
    return { token: `${payload}.${this.sign(payload)}`, expiresAt: new Date(expiresS * 1000) };
  }

  /** The identity a token grants (now, with these keys), or undefined. */
  verify(token: string, keys: AdminKey[], now = Date.now()): (AdminIdentity & { expiresAt: Date }) | undefined {
    const [payload, signature, extra] = token.split('.');
    if (!payload || !signature || extra !== undefined) return undefined;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: { k?: unknown; r?: unknown; e?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return undefined;
    }
    if (claims === null || typeof claims !== 'object' || typeof claims.e !== 'number' || claims.e * 1000 <= now)
      return undefined;
    const key = keys.find((candidate) => candidate.identity.keyId === claims.k && candidate.identity.role === claims.r);
    return key ? { ...key.identity, expiresAt: new Date(claims.e * 1000) } : undefined;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(`ajs-admin-session:${payload}`).digest('base64url');
  }
}

/** One cookie's value from a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

/**
 * Where a browser says a request comes from: `same-origin` when `Sec-Fetch-Site: same-origin` or (without
 * that header) `Origin` names this request's own host; `cross-site` when either says otherwise; `unknown`
 * when neither header is there (not a browser).
 */
export function requestSite(request: FastifyRequest): 'same-origin' | 'cross-site' | 'unknown' {
  const fetchSite = request.headers['sec-fetch-site'];
  if (typeof fetchSite === 'string') return fetchSite === 'same-origin' ? 'same-origin' : 'cross-site';
  const origin = request.headers.origin;
  if (typeof origin !== 'string') return 'unknown';
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'cross-site';
    // Parsed with the Origin's scheme, so a default port (`host:80`) compares equal to none.
    const host = request.headers.host;
    return host !== undefined && new URL(`${url.protocol}//${host}`).host === url.host ? 'same-origin' : 'cross-site';
  } catch {
    return 'cross-site';
  }
}

/** The identity of a request's valid dashboard session cookie; undefined without one, 'invalid' for a bad or expired one. */
export function adminSessionOf(
  request: FastifyRequest,
  keys: AdminKey[],
): (AdminIdentity & { expiresAt: Date }) | 'invalid' | undefined {
  const token = readCookie(request.headers.cookie, ADMIN_SESSION_COOKIE);
  if (token === undefined) return undefined;
  const sessions = (request.server as FastifyInstance | undefined)?.adminSessions;
  return sessions?.verify(token, keys) ?? 'invalid';
}

const csrfRefusal = (request: FastifyRequest) =>
  new HttpProblem(
    'forbidden',
    `${request.method} refused (CSRF protection): a write made with the dashboard's session cookie must come from the dashboard itself (Sec-Fetch-Site: same-origin, or an Origin naming this host). Scripts send Authorization: Bearer <admin key> instead.`,
  );

/**
 * Admin routes: with admin keys (ADMIN_KEYS and/or ADMIN_TOKEN), `Authorization: Bearer <key>` or the
 * dashboard's session cookie (401 otherwise), and the key's role must reach the route's (403 otherwise);
 * without any, only clients on the loopback address (the socket's, never X-Forwarded-For, which a client
 * can write), with every right. A write with the cookie (or, without keys, one a browser marks as sent from
 * another site) must come from the same origin (403 otherwise): that is the CSRF defence; Bearer requests
 * are not checked, a browser never adds that header by itself. Sets `request.admin`.
 */
export function adminGuard(keys: AdminKey[] | undefined): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const write = !readMethods.has(request.method);
    if (keys === undefined) {
      if (!isLoopback(request.socket.remoteAddress)) {
        throw new HttpProblem(
          'forbidden',
          'Admin routes answer only loopback clients while neither ADMIN_KEYS nor ADMIN_TOKEN is set.',
        );
      }
      if (write && requestSite(request) === 'cross-site') throw csrfRefusal(request);
      request.admin = { role: 'admin', keyId: 'loopback' };
      return;
    }
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    let found: AdminIdentity | undefined;
    if (request.headers.authorization === undefined) {
      // No Authorization header: the dashboard's session cookie, if any.
      const session = adminSessionOf(request, keys);
      if (session === 'invalid') {
        throw new HttpProblem(
          'unauthorized',
          'The dashboard session is not valid or has expired: sign in again at /admin.',
          {
            headers: { 'www-authenticate': 'Bearer realm="admin"' },
          },
        );
      }
      if (session !== undefined) {
        if (write && requestSite(request) !== 'same-origin') throw csrfRefusal(request);
        found = { role: session.role, keyId: session.keyId };
      }
    }
    found ??= matchAdminKey(keys, match ? match[1]!.trim() : undefined);
    if (found === undefined) {
      throw new HttpProblem(
        'unauthorized',
        match
          ? 'The admin key is not valid.'
          : 'Admin routes need `Authorization: Bearer <admin key>` (ADMIN_KEYS or ADMIN_TOKEN).',
        {
          headers: {
            'www-authenticate': match ? 'Bearer realm="admin", error="invalid_token"' : 'Bearer realm="admin"',
          },
        },
      );
    }
    request.admin = found;
    const required = requiredAdminRole(request);
    if (rank(found.role) < rank(required)) {
      throw new HttpProblem(
        'forbidden',
        `${request.method} ${request.routeOptions.url ?? request.url} needs the ${required} role; this key has the ${found.role} role.`,
        {
          headers: { 'www-authenticate': `Bearer realm="admin", error="insufficient_scope", scope="${required}"` },
        },
      );
    }
  };
}
