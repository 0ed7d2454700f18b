import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { keyDigest, type AdminRole, type ConfiguredKey } from '../config.js';
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
}

/** One admin key: its SHA-256 (the only form kept) and what it grants. */
export interface AdminKey {
  digest: Buffer;
  identity: AdminIdentity;
}

const rank: Record<AdminRole, number> = { viewer: 0, operator: 1, admin: 2 };
const readMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

const isLoopback = (address: string | undefined): boolean =>
  address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * The admin keys from ADMIN_KEYS (`key:role`, parsed and validated by the config) plus ADMIN_TOKEN, which
 * counts as an `admin` key; undefined when neither is set (admin routes then answer loopback clients only).
 */
export function adminKeyring(entries: (ConfiguredKey & { role: AdminRole })[] | undefined, adminToken: string | undefined): AdminKey[] | undefined {
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
  return configured !== undefined && rank[configured] > rank[floor] ? configured : floor;
}

/**
 * Admin routes: with admin keys (ADMIN_KEYS and/or ADMIN_TOKEN), `Authorization: Bearer <key>` (401
 * otherwise), and the key's role must reach the route's (403 otherwise); without any, only clients on the
 * loopback address (the socket's, never X-Forwarded-For, which a client can write), with every right.
 * Sets `request.admin`.
 */
export function adminGuard(keys: AdminKey[] | undefined): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    if (keys === undefined) {
      if (!isLoopback(request.socket.remoteAddress)) {
        throw new HttpProblem('forbidden', 'Admin routes answer only loopback clients while neither ADMIN_KEYS nor ADMIN_TOKEN is set.');
      }
      request.admin = { role: 'admin', keyId: 'loopback' };
      return;
    }
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    const presented = match ? digest(match[1]!.trim()) : undefined;
    // Digests are compared, each in constant time, and every key is looked at: no timing says which matched.
    let found: AdminIdentity | undefined;
    for (const key of keys) {
      if (presented !== undefined && timingSafeEqual(presented, key.digest) && found === undefined) found = key.identity;
    }
    if (found === undefined) {
      throw new HttpProblem('unauthorized', match ? 'The admin key is not valid.' : 'Admin routes need `Authorization: Bearer <admin key>` (ADMIN_KEYS or ADMIN_TOKEN).', {
        headers: { 'www-authenticate': match ? 'Bearer realm="admin", error="invalid_token"' : 'Bearer realm="admin"' },
      });
    }
    request.admin = found;
    const required = requiredAdminRole(request);
    if (rank[found.role] < rank[required]) {
      throw new HttpProblem('forbidden', `${request.method} ${request.routeOptions.url ?? request.url} needs the ${required} role; this key has the ${found.role} role.`, {
        headers: { 'www-authenticate': `Bearer realm="admin", error="insufficient_scope", scope="${required}"` },
      });
    }
  };
}
