import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { keyDigest, type ConfiguredKey } from '../config.js';
import { HttpProblem } from '../errors.js';

/** Who calls a worker endpoint: a worker key's name, and the job types it may serve (null: any). */
export interface WorkerKey {
  name: string;
  types: ReadonlySet<string> | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on the worker endpoints once the guard let the request through; null elsewhere. */
    workerKey: WorkerKey | null;
  }
}

/** The one worker of an open service (neither WORKER_KEYS nor API_KEYS set). */
export const ANONYMOUS_WORKER: WorkerKey = { name: 'anonymous', types: null };

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** WORKER_KEYS entries (`key:name[:type1|type2]`, parsed by the config) → SHA-256 of each key → what it grants. */
export function workerKeyring(entries: (ConfiguredKey & { name: string; types?: string[] })[]): Map<string, WorkerKey> {
  return new Map(
    entries.map((entry) => [keyDigest(entry), { name: entry.name, types: entry.types ? new Set(entry.types) : null }]),
  );
}

export interface WorkerAuthOptions {
  /** WORKER_KEYS (digest → key); undefined when none are configured. */
  workerKeys: ReadonlyMap<string, WorkerKey> | undefined;
  /** The client API needs keys (API_KEYS is set): then, without worker keys, the worker endpoints are closed. */
  apiNeedsKeys: boolean;
  /** Digests of the API and admin keys: told apart from a wrong key (403 instead of 401). */
  otherKeyDigests: ReadonlySet<string>;
}

/**
 * The guard of the worker endpoints (/v1/workers, /v1/leases), in their own scope: with WORKER_KEYS, every
 * request needs `Authorization: Bearer <worker key>` (401 otherwise; an API or admin key answers 403
 * `not-a-worker-key`). Without WORKER_KEYS, the endpoints are open exactly when the client API is (no
 * API_KEYS), every caller being the one worker key `anonymous`; closed (401) otherwise.
 */
export function registerWorkerAuth(
  scope: FastifyInstance,
  { workerKeys, apiNeedsKeys, otherKeyDigests }: WorkerAuthOptions,
): void {
  scope.decorateRequest('workerKey', null);
  scope.addHook('onRequest', async (request) => {
    if (!workerKeys) {
      if (apiNeedsKeys) {
        throw new HttpProblem(
          'unauthorized',
          'No worker keys are configured (WORKER_KEYS) while the API needs keys: the worker endpoints are closed.',
          {
            headers: { 'www-authenticate': 'Bearer realm="workers"' },
          },
        );
      }
      request.workerKey = ANONYMOUS_WORKER;
      return;
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    const digest = match ? sha256(match[1]!) : undefined;
    // Keys are looked up by their digest: nothing compares a secret byte by byte.
    const key = digest === undefined ? undefined : workerKeys.get(digest);
    if (key) {
      request.workerKey = key;
      return;
    }
    if (digest !== undefined && otherKeyDigests.has(digest)) {
      throw new HttpProblem(
        'not-a-worker-key',
        'This is an API or admin key: the worker endpoints take a worker key (WORKER_KEYS).',
      );
    }
    throw new HttpProblem(
      'unauthorized',
      match ? 'The worker key is not valid.' : 'The worker endpoints need `Authorization: Bearer <worker key>`.',
      {
        headers: {
          'www-authenticate': match ? 'Bearer realm="workers", error="invalid_token"' : 'Bearer realm="workers"',
        },
      },
    );
  });
}

/** The caller's worker key (the guard ran), for the routes of the worker scope. */
export function workerKeyOf(request: FastifyRequest): WorkerKey {
  if (!request.workerKey) throw new Error('the worker guard did not run for this route');
  return request.workerKey;
}

/** 403 `type-not-allowed` when the key is scoped and `type` is outside its scope. */
export function assertTypeAllowed(key: WorkerKey, type: string, pointer?: string): void {
  if (key.types === null || key.types.has(type)) return;
  throw new HttpProblem(
    'type-not-allowed',
    `The worker key "${key.name}" may not serve job type "${type}"; it may serve: ${[...key.types].join(', ')}.`,
    {
      ...(pointer ? { errors: [{ pointer, detail: "outside the worker key's types" }] } : {}),
    },
  );
}
