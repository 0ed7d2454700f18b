import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HttpProblem } from '../errors.js';

const isLoopback = (address: string | undefined): boolean =>
  address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Admin routes: with ADMIN_TOKEN set, `Authorization: Bearer <ADMIN_TOKEN>`; without it, only clients on
 * the loopback address (the socket's, never X-Forwarded-For, which a client can write).
 */
export function adminGuard(adminToken: string | undefined): (request: FastifyRequest) => Promise<void> {
  const expected = adminToken === undefined ? undefined : digest(adminToken);
  return async (request) => {
    if (expected === undefined) {
      if (!isLoopback(request.socket.remoteAddress)) {
        throw new HttpProblem('forbidden', 'Admin routes answer only loopback clients while ADMIN_TOKEN is not set.');
      }
      return;
    }
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    // Comparing digests keeps the comparison constant-time whatever the token's length.
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
      throw new HttpProblem('unauthorized', 'Admin routes need `Authorization: Bearer <ADMIN_TOKEN>`.', {
        headers: { 'www-authenticate': 'Bearer realm="admin"' },
      });
    }
  };
}
