import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ADMIN_SIGN_IN_MAX_FAILURES_PER_MIN } from '../config.js';
import { HttpProblem } from '../errors.js';
import {
  ADMIN_SESSION_COOKIE,
  ADMIN_SESSION_TTL_S,
  adminSessionOf,
  isLoopback,
  matchAdminKey,
  requestSite,
  type AdminKey,
  type AdminSessions,
} from '../http/admin-auth.js';
import { adminRole } from './admin-schemas.js';
import { adminSecurity, problemResponses } from './schemas.js';

export interface AdminSessionRoutesOptions {
  /** From ADMIN_KEYS and ADMIN_TOKEN (see adminKeyring); undefined = loopback clients only, no sign-in. */
  adminKeys: AdminKey[] | undefined;
  sessions: AdminSessions;
  /** Failed sign-ins one address may make per minute before every sign-in from it answers 429 (default ADMIN_SIGN_IN_MAX_FAILURES_PER_MIN). */
  maxFailuresPerMin?: number;
}

const sessionSchema = z
  .object({
    role: adminRole,
    key_id: z.string().describe("First 8 hex digits of the key's SHA-256 (`loopback` without admin keys)"),
    expires_at: z.string().nullable().describe('When the session cookie ends (null: not a cookie session)'),
    via: z.enum(['session', 'bearer', 'loopback']),
  })
  .meta({ id: 'AdminSession' });

const WINDOW_MS = 60_000;
const MAX_TRACKED_ADDRESSES = 10_000;

/**
 * The dashboard's sign-in, outside the admin guard: `POST /admin/session {key}` checks the key against the
 * admin keys and sets the `ajs_admin` cookie, an HMAC-signed session token (key id, role, expiry), never
 * the key; `GET` says who the cookie (or a Bearer key) is; `DELETE` clears the cookie.
 */
export const adminSessionRoutes: FastifyPluginAsync<AdminSessionRoutesOptions> = async (
  fastify,
  { adminKeys, sessions, maxFailuresPerMin = ADMIN_SIGN_IN_MAX_FAILURES_PER_MIN },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  // Crude guessing brake, per instance: failed sign-ins per address in fixed one-minute windows.
  const failures = new Map<string, { count: number; resetAt: number }>();
  const failuresOf = (address: string, now: number) => {
    const entry = failures.get(address);
    return entry !== undefined && entry.resetAt > now ? entry : undefined;
  };
  const recordFailure = (address: string, now: number) => {
    if (failures.size >= MAX_TRACKED_ADDRESSES) {
      for (const [key, entry] of failures) if (entry.resetAt <= now) failures.delete(key);
      if (failures.size >= MAX_TRACKED_ADDRESSES) failures.clear();
    }
    const entry = failuresOf(address, now);
    if (entry) entry.count += 1;
    else failures.set(address, { count: 1, resetAt: now + WINDOW_MS });
  };

  // Secure over https, also when a TLS-terminating proxy says so (X-Forwarded-Proto): a client that claims
  // https over plain http only gets a cookie its browser will not keep.
  const secure = (request: FastifyRequest) => {
    const forwarded = request.headers['x-forwarded-proto'];
    return (
      request.protocol === 'https' ||
      (typeof forwarded === 'string' && forwarded.split(',')[0]!.trim().toLowerCase() === 'https')
    );
  };
  const cookie = (request: FastifyRequest, value: string, maxAgeS: number) =>
    `${ADMIN_SESSION_COOKIE}=${value}; Path=/admin; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure(request) ? '; Secure' : ''}`;
  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store');

  app.post('/admin/session', {
    schema: {
      operationId: 'adminSignIn',
      summary: 'Sign in to the dashboard',
      description: `Checks \`key\` against the admin keys and sets the \`${ADMIN_SESSION_COOKIE}\` cookie (HttpOnly, SameSite=Strict, Path=/admin, ${ADMIN_SESSION_TTL_S / 3600} h): a signed session token, not the key. Writes made with the cookie must come from the same origin. ${maxFailuresPerMin} failed sign-ins a minute from one address, then 429.`,
      tags: ['admin'],
      security: [], // no credentials
      body: z
        .object({ key: z.string().min(1).max(1024).describe('An admin key (ADMIN_KEYS or ADMIN_TOKEN)') })
        .strict(),
      response: { 200: sessionSchema, ...problemResponses(401, 403, 422, 429) },
    },
    handler: async (request, reply) => {
      noStore(reply);
      if (requestSite(request) === 'cross-site') {
        throw new HttpProblem(
          'forbidden',
          "Sign-in refused (CSRF protection): it must come from the dashboard's own origin.",
        );
      }
      if (adminKeys === undefined) {
        throw new HttpProblem(
          'forbidden',
          'No admin keys are configured (ADMIN_KEYS, ADMIN_TOKEN): the admin routes answer loopback clients only, without signing in.',
        );
      }
      const now = Date.now();
      const address = request.socket.remoteAddress ?? 'unknown';
      const recent = failuresOf(address, now);
      if (recent !== undefined && recent.count >= maxFailuresPerMin) {
        const retryAfterS = Math.max(1, Math.ceil((recent.resetAt - now) / 1000));
        throw new HttpProblem(
          'rate-limited',
          `Too many failed sign-ins from this address; try again in ${retryAfterS} s.`,
          {
            headers: { 'retry-after': String(retryAfterS) },
          },
        );
      }
      const identity = matchAdminKey(adminKeys, request.body.key);
      if (identity === undefined) {
        recordFailure(address, now);
        request.log.warn({ address }, 'admin sign-in refused: wrong key');
        throw new HttpProblem('unauthorized', 'That admin key is not valid.');
      }
      const { token, expiresAt } = sessions.issue(identity, now);
      request.log.info({ keyId: identity.keyId, role: identity.role }, 'admin sign-in');
      reply.header('set-cookie', cookie(request, token, ADMIN_SESSION_TTL_S));
      return {
        role: identity.role,
        key_id: identity.keyId,
        expires_at: expiresAt.toISOString(),
        via: 'session' as const,
      };
    },
  });

  app.get('/admin/session', {
    schema: {
      operationId: 'adminGetSession',
      summary: 'Who the dashboard is signed in as',
      tags: ['admin'],
      security: adminSecurity,
      response: { 200: sessionSchema, ...problemResponses(401, 403) },
    },
    handler: async (request, reply) => {
      noStore(reply);
      if (adminKeys === undefined) {
        if (isLoopback(request.socket.remoteAddress)) {
          return { role: 'admin' as const, key_id: 'loopback', expires_at: null, via: 'loopback' as const };
        }
        throw new HttpProblem(
          'forbidden',
          'Admin routes answer only loopback clients while neither ADMIN_KEYS nor ADMIN_TOKEN is set.',
        );
      }
      const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
      if (bearer) {
        const identity = matchAdminKey(adminKeys, bearer[1]!.trim());
        if (identity === undefined) throw new HttpProblem('unauthorized', 'The admin key is not valid.');
        return { role: identity.role, key_id: identity.keyId, expires_at: null, via: 'bearer' as const };
      }
      const session = adminSessionOf(request, adminKeys);
      if (session === undefined || session === 'invalid') {
        throw new HttpProblem(
          'unauthorized',
          session === 'invalid'
            ? 'The dashboard session has expired or is not valid: sign in again.'
            : 'Not signed in.',
        );
      }
      return {
        role: session.role,
        key_id: session.keyId,
        expires_at: session.expiresAt.toISOString(),
        via: 'session' as const,
      };
    },
  });

  app.delete('/admin/session', {
    schema: {
      operationId: 'adminSignOut',
      summary: 'Sign out of the dashboard',
      description:
        'Clears the session cookie. The token itself stays valid until it expires (it is not stored anywhere); remove a key from ADMIN_KEYS to end every session made with it.',
      tags: ['admin'],
      security: [], // no credentials
      response: { 204: z.undefined().describe('Signed out') },
    },
    handler: async (request, reply) => {
      noStore(reply);
      reply.header('set-cookie', cookie(request, '', 0));
      return reply.code(204).send();
    },
  });
};
