import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from '../errors.js';
import { ANONYMOUS_TENANT } from '../jobs/job.js';
import type { EventLinkSigner } from './event-links.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Whose jobs this request may see and touch: the API key's tenant, or '-' when the API runs open. */
    tenant: string;
  }
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * API keys for the /v1 routes registered in `scope`: with `keys` (SHA-256 of each key → its tenant),
 * every request needs `Authorization: Bearer <key>` (401 otherwise) and acts as that key's tenant;
 * without, the API is open and every request is the one anonymous tenant. A worker key (digests in
 * `workerKeys`) is refused either way (403 `worker-key-not-allowed`): workers neither read nor submit jobs.
 */
export function registerApiKeyAuth(
  scope: FastifyInstance,
  keys: Map<string, string> | undefined,
  eventLinks?: EventLinkSigner,
  workerKeys?: ReadonlyMap<string, unknown>,
): void {
  scope.decorateRequest('tenant', ANONYMOUS_TENANT);
  if (!keys && !workerKeys?.size) return;
  scope.addHook('onRequest', async (request) => {
    if (!keys) {
      // The API is open: only a worker key's Bearer is refused.
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (bearer && workerKeys?.has(sha256(bearer[1]!))) throw workerKeyRefused();
      return;
    }
    // A signed events link (links.events) opens that one job's stream without a key.
    const signed = /^\/v1\/jobs\/([^/?]+)\/events\?(?:.*&)?access=([^&]+)/.exec(request.url);
    if (signed && eventLinks && request.method === 'GET') {
      const tenant = eventLinks.verify(decodeURIComponent(signed[1]!), decodeURIComponent(signed[2]!));
      if (tenant !== undefined) {
        request.tenant = tenant;
        return;
      }
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    // Keys are looked up by their digest: nothing compares a secret byte by byte.
    const digest = match ? sha256(match[1]!) : undefined;
    const tenant = digest === undefined ? undefined : keys.get(digest);
    if (tenant === undefined && digest !== undefined && workerKeys?.has(digest)) throw workerKeyRefused();
    if (tenant === undefined) {
      throw new HttpProblem(
        'unauthorized',
        match ? 'The API key is not valid.' : 'This API needs `Authorization: Bearer <API key>`.',
        {
          headers: { 'www-authenticate': match ? 'Bearer realm="jobs", error="invalid_token"' : 'Bearer realm="jobs"' },
        },
      );
    }
    request.tenant = tenant;
  });
}

const workerKeyRefused = (): HttpProblem =>
  new HttpProblem(
    'worker-key-not-allowed',
    'This is a worker key: it calls the worker endpoints (/v1/workers, /v1/leases) only, and cannot read or submit jobs.',
  );

/** API_KEYS entries: `key:tenant` or `sha256:<hex of the key's SHA-256>:tenant` → digest → tenant. */
export function parseApiKeys(entries: { key?: string; sha256?: string; tenant: string }[]): Map<string, string> {
  return new Map(entries.map((entry) => [entry.sha256 ?? sha256(entry.key!), entry.tenant]));
}
