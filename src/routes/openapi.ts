import type { SwaggerTransformObject } from '@fastify/swagger';
import { jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { ADMIN_SESSION_COOKIE } from '../http/admin-auth.js';

/**
 * What the OpenAPI document says that zod cannot: security schemes, the response headers handlers set
 * with reply.header, and the headers every request and response has. Bodies, params, queries and the
 * request headers a route reads stay in the routes' zod schemas.
 */

export const securitySchemes = {
  apiKey: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API key (API_KEYS); its tenant owns the jobs. Only when API_KEYS is set: the /v1 API is open otherwise.',
  },
  adminToken: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An admin key (ADMIN_KEYS, or ADMIN_TOKEN, an admin-role key). With neither set, /admin answers loopback clients only.',
  },
  adminSession: {
    type: 'apiKey',
    in: 'cookie',
    name: ADMIN_SESSION_COOKIE,
    description:
      "The dashboard's session cookie, set by POST /admin/session. Writes made with it must come from the same origin.",
  },
  metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN; /metrics is open while it is unset.' },
  workerKey: {
    type: 'http',
    scheme: 'bearer',
    description:
      'A worker key (WORKER_KEYS), for the worker endpoints (/v1/workers, /v1/leases) only. Without WORKER_KEYS they are open while API_KEYS is unset too, closed otherwise.',
  },
} as const;

const stringHeader = (description: string) => ({ description, schema: { type: 'string' as const } });

export const responseHeaders = {
  Location: stringHeader('The Job (poll it here), or the Schedule'),
  'Content-Location': stringHeader('The Job the body is'),
  'Retry-After': {
    description: 'Seconds to wait before polling (or retrying) again',
    schema: { type: 'integer' as const, minimum: 0 },
  },
  ETag: stringHeader('`"v<version>"`: send it in If-None-Match to get 304 while nothing changed'),
  'Preference-Applied': stringHeader("`wait=<N>` when the request's `Prefer: wait=N` was honoured"),
  'Idempotent-Replayed': {
    description: '`true` when this answers an earlier request with the same Idempotency-Key',
    schema: { type: 'string' as const, enum: ['true'] },
  },
  RateLimit: stringHeader('When RATE_LIMIT_PER_MIN is set: `limit=<n>, remaining=<n>, reset=<seconds>` (IETF draft)'),
  'RateLimit-Policy': stringHeader('When RATE_LIMIT_PER_MIN is set: `<limit>;w=60` (IETF draft)'),
  'WWW-Authenticate': stringHeader(
    'The credentials the route takes: `Bearer realm="<realm>"`, with `error="invalid_token"` for a wrong one',
  ),
  'Set-Cookie': stringHeader(
    `The \`${ADMIN_SESSION_COOKIE}\` session cookie (HttpOnly, SameSite=Strict, Path=/admin); cleared on sign-out`,
  ),
  'X-Request-Id': stringHeader(
    "This request's id, as in the service's logs (the client's own X-Request-Id when it sent a sane one)",
  ),
};

type ResponseHeader = keyof typeof responseHeaders;

export const parameters = {
  'X-Request-Id': {
    name: 'X-Request-Id',
    in: 'header' as const,
    required: false,
    description:
      'Your id for this request (1 to 128 of `A-Z a-z 0-9 _ . : -`), kept in the logs and echoed back; one is made otherwise',
    schema: { type: 'string' as const, pattern: '^[\\w.:-]{1,128}$' },
  },
};

/** Headers the handlers set themselves, by operation and status. */
const handlerHeaders: Record<string, Record<string, ResponseHeader[]>> = {
  'post /v1/jobs': {
    200: ['Location', 'Content-Location', 'Preference-Applied', 'Idempotent-Replayed'],
    202: ['Location', 'Content-Location', 'Retry-After', 'Preference-Applied', 'Idempotent-Replayed'],
  },
  'get /v1/jobs/{id}': {
    200: ['ETag', 'Retry-After', 'Preference-Applied'],
    304: ['ETag', 'Retry-After', 'Preference-Applied'],
  },
  'get /v1/jobs/{id}/result': { 202: ['Location', 'Retry-After'] },
  'post /v1/schedules': { 200: ['Location'], 201: ['Location'] },
  'put /v1/schedules/{id}': { 201: ['Location'] },
  'post /v1/schedules/{id}/trigger': { 201: ['Location'] },
  'post /admin/jobs/{id}/clone': { 201: ['Location'] },
  'post /v1/workers/{worker_id}/leases': { 200: ['Preference-Applied'] },
  'post /admin/session': { 200: ['Set-Cookie'] },
  'delete /admin/session': { 204: ['Set-Cookie'] },
};

/** The pull-worker protocol's paths: their own scope, guarded by worker keys, not rate-limited. */
export const isWorkerPath = (path: string): boolean => /^\/v1\/(?:workers|leases)(?:[/:]|$)/.test(path);

/** Headers set outside the handlers (hooks, the error handler), by the response they go on. */
function hookHeaders(path: string, status: string, response: ResponseObject): ResponseHeader[] {
  const names: ResponseHeader[] = [];
  // The sign-in routes answer a wrong key, not a missing credential: no challenge.
  if (status === '401' && !path.startsWith('/admin/session')) names.push('WWW-Authenticate');
  const problem = response.content?.['application/problem+json'] !== undefined;
  if (status === '429' || (status === '503' && problem)) names.push('Retry-After');
  // The rate limit runs after the API key check, so a 401 carries none; the worker endpoints have none.
  if (path.startsWith('/v1/') && !isWorkerPath(path) && status !== '401') names.push('RateLimit', 'RateLimit-Policy');
  names.push('X-Request-Id');
  return names;
}

interface ResponseObject {
  content?: Record<string, unknown>;
  headers?: Record<string, unknown>;
}
interface Operation {
  parameters?: unknown[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, ResponseObject>;
}
interface Document {
  paths?: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** Every `$ref` string under `value`. */
function collectRefs(value: unknown, into: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) collectRefs(item, into);
  else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === '$ref' && typeof child === 'string') into.push(child);
      else collectRefs(child, into);
    }
  }
  return into;
}

/**
 * Drops schemas nothing references: the zod provider emits an input and an output variant of every
 * registered schema (JobInput beside Job), and most are used one way only.
 */
function pruneSchemas(document: Document): void {
  const schemas = document.components?.schemas;
  if (!schemas) return;
  const prefix = '#/components/schemas/';
  const reachable = new Set<string>();
  const visit = (refs: string[]) => {
    for (const ref of refs) {
      const name = ref.startsWith(prefix) ? ref.slice(prefix.length) : undefined;
      if (name === undefined || reachable.has(name)) continue;
      reachable.add(name);
      visit(collectRefs(schemas[name]));
    }
  };
  visit(collectRefs({ ...document, components: { ...document.components, schemas: {} } }));
  for (const name of Object.keys(schemas)) if (!reachable.has(name)) delete schemas[name];
}

/** Adds the headers and the X-Request-Id parameter to every operation; fails on a stale handlerHeaders entry. */
function documentHeaders(document: Document): void {
  const seen = new Set<string>();
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      if (!methods.has(method)) continue;
      operation.parameters = [...(operation.parameters ?? []), { $ref: '#/components/parameters/X-Request-Id' }];
      const own = handlerHeaders[`${method} ${path}`] ?? {};
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (own[status]) seen.add(`${method} ${path} ${status}`);
        const names = [...new Set([...(own[status] ?? []), ...hookHeaders(path, status, response)])];
        response.headers = {
          ...response.headers,
          ...Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }])),
        };
      }
    }
  }
  for (const [operation, byStatus] of Object.entries(handlerHeaders)) {
    for (const status of Object.keys(byStatus)) {
      if (!seen.has(`${operation} ${status}`))
        throw new Error(`openapi: handler headers listed for ${operation} ${status}, which the document does not have`);
    }
  }
}

/**
 * In request bodies a `default` is what the service fills in when a field is left out, but client
 * generators (openapi-typescript's default settings among them) read a property with a default as always
 * present and make callers send it. There the default is said in the description instead.
 */
function requestDefaultsAsText(document: Document): void {
  const schemas = document.components?.schemas ?? {};
  const done = new Set<unknown>();
  const visit = (schema: unknown): void => {
    if (schema === null || typeof schema !== 'object' || done.has(schema)) return;
    done.add(schema);
    const node = schema as Record<string, unknown>;
    const ref = node.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/components/schemas/'))
      visit(schemas[ref.slice('#/components/schemas/'.length)]);
    if ('default' in node) {
      const said = `Default: \`${JSON.stringify(node.default)}\`.`;
      node.description = typeof node.description === 'string' ? `${node.description}. ${said}` : said;
      delete node.default;
    }
    for (const [key, child] of Object.entries(node)) {
      if (key === 'properties' && child && typeof child === 'object') Object.values(child).forEach(visit);
      else if (['items', 'additionalProperties', 'anyOf', 'oneOf', 'allOf'].includes(key))
        [child].flat().forEach(visit);
    }
  };
  for (const item of Object.values(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      if (!methods.has(method)) continue;
      for (const media of Object.values(operation.requestBody?.content ?? {})) visit(media.schema);
    }
  }
}

/** The zod components, then what zod cannot describe; the result is what /openapi.json and openapi.yaml show. */
export const openApiTransformObject: SwaggerTransformObject = (input) => {
  const document = jsonSchemaTransformObject(input) as Document;
  documentHeaders(document);
  requestDefaultsAsText(document);
  pruneSchemas(document);
  return document;
};
