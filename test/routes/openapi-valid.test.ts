import SwaggerParser from '@apidevtools/swagger-parser';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createHttpHandler } from '../../src/handlers/http.js';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { OutboundPolicy } from '../../src/outbound/outbound-policy.js';
import { startHarness, type Harness } from './helpers.js';

/** The document as strict tools see it: each of these must pass swagger-parser and the checks below. */
const committed = (): unknown => parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8'));

/** The value a local JSON Pointer reference names, or undefined when nothing is there. */
function resolvePointer(document: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = document;
  for (const raw of ref.slice(2).split('/')) {
    const token = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, token)) return undefined;
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

/** Walks every value of the document, with its JSON path. */
function* walk(value: unknown, path = '#'): Generator<[string, string, unknown]> {
  if (value === null || typeof value !== 'object') return;
  for (const [key, child] of Object.entries(value)) {
    yield [path, key, child];
    yield* walk(child, `${path}/${key}`);
  }
}

const jsonSchemaTypes = new Set(['string', 'number', 'integer', 'boolean', 'null', 'array', 'object']);

/** What swagger-parser leaves to other tools: refs it never follows, and keywords that are not OpenAPI 3.1. */
function problemsOf(document: unknown): string[] {
  const problems: string[] = [];
  for (const [path, key, value] of walk(document)) {
    if (key === '$ref') {
      if (typeof value !== 'string' || resolvePointer(document, value) === undefined)
        problems.push(`${path}: $ref ${String(value)} points at nothing`);
    }
    // Schemas sit under these keys; `nullable` is OpenAPI 3.0 (3.1 uses type arrays).
    if (key === 'nullable' || key === 'x-nullable') problems.push(`${path}: ${key} is not OpenAPI 3.1`);
    // A `type` key under `properties` is a property's name; security schemes have their own types.
    if (key === 'type' && !path.endsWith('/properties') && !path.includes('/securitySchemes/')) {
      const types: unknown[] = Array.isArray(value) ? value : [value];
      if (!types.every((type) => typeof type === 'string' && jsonSchemaTypes.has(type)))
        problems.push(`${path}: type ${JSON.stringify(value)}`);
    }
  }
  return problems;
}

describe('the OpenAPI document', () => {
  let harness: Harness;
  let configured: Harness;

  beforeAll(async () => {
    harness = await startHarness({ extraHandlers: [createHttpHandler(new OutboundPolicy())] });
    // Every optional feature on: the document must not depend on the configuration.
    configured = await startHarness({
      apiKeys: parseApiKeys([{ key: 'k-123456789012345678901234567890', tenant: 'acme' }]),
      adminToken: 'admin-token-0123456789abcdef',
      metricsToken: 'metrics-token-0123456789',
      rateLimitPerMin: 100,
      corsOrigins: '*',
    });
  });
  afterAll(async () => {
    await harness.close();
    await configured.close();
  });

  const served = async (app: Harness['app'], url: string): Promise<unknown> => {
    const response = await app.inject({ method: 'GET', url });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  it('openapi.yaml passes swagger-parser (which resolves every $ref)', async () => {
    await expect(SwaggerParser.validate(structuredClone(committed()) as never)).resolves.toBeDefined();
  });

  it('GET /openapi.json passes swagger-parser', async () => {
    await expect(
      SwaggerParser.validate(structuredClone(await served(harness.app, '/openapi.json')) as never),
    ).resolves.toBeDefined();
  });

  it('has no $ref to nothing and no OpenAPI 3.0 keywords (committed and served)', async () => {
    expect(problemsOf(committed())).toEqual([]);
    expect(problemsOf(await served(harness.app, '/openapi.json'))).toEqual([]);
  });

  it('names every operation with a unique operationId (generated clients name their methods after it) and has a server', () => {
    const document = committed() as {
      paths: Record<string, Record<string, { operationId?: string }>>;
      servers?: unknown[];
    };
    const ids = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => method !== 'parameters')
        .map(([method, operation]) => operation.operationId ?? `missing: ${method} ${path}`),
    );
    expect(ids.filter((id) => id.startsWith('missing'))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(document.servers).toHaveLength(1);
  });

  it('documents any-JSON fields with the JsonValue component', () => {
    const document = committed();
    expect(JSON.stringify(document)).not.toContain('__shared');
    const job = resolvePointer(document, '#/components/schemas/Job/properties') as Record<string, { $ref?: string }>;
    expect(job.input?.$ref).toBe('#/components/schemas/JsonValue');
    expect(job.result?.$ref).toBe('#/components/schemas/JsonValue');
    const create = resolvePointer(document, '#/components/schemas/CreateJobInput/properties/input') as {
      $ref?: string;
    };
    expect(create.$ref).toBe('#/components/schemas/JsonValueInput');
    // An empty schema (any value) with a description: every tool reads that as any JSON.
    expect(Object.keys(resolvePointer(document, '#/components/schemas/JsonValue') as object)).toEqual(['description']);
    expect(Object.keys(resolvePointer(document, '#/components/schemas/JsonValueInput') as object)).toEqual([
      'description',
    ]);
  });

  it('is the same whatever the configuration, and Swagger UI serves it', async () => {
    const document = await served(harness.app, '/openapi.json');
    expect(document).toEqual(committed());
    expect(await served(configured.app, '/openapi.json')).toEqual(document);
    expect(await served(harness.app, '/docs/json')).toEqual(document);
    let page = await harness.app.inject({ method: 'GET', url: '/docs' });
    for (let hops = 0; hops < 3 && page.statusCode >= 300 && page.statusCode < 400; hops++) {
      page = await harness.app.inject({
        method: 'GET',
        url: new URL(page.headers.location!, 'http://localhost/docs/').pathname,
      });
    }
    expect(page.statusCode).toBe(200);
    expect(page.body.toLowerCase()).toContain('swagger');
  });

  it('GET /v1/job-types serves input schemas whose $refs resolve within themselves (z.json() puts its recursion in $defs)', async () => {
    const { data } = (await served(harness.app, '/v1/job-types')) as {
      data: { type: string; input_schema: unknown }[];
    };
    expect(data.map((type) => type.type)).toEqual(expect.arrayContaining(['echo', 'http']));
    for (const { type, input_schema: schema } of data) expect(problemsOf(schema), type).toEqual([]);
  });

  it('the checks catch a dangling $ref and OpenAPI 3.0 nullable', async () => {
    const broken = structuredClone(committed()) as { components: { schemas: Record<string, unknown> } };
    broken.components.schemas.Broken = { $ref: '#/components/schemas/__shared#/$defs/schema0' };
    broken.components.schemas.Old = { nullable: true };
    expect(problemsOf(broken)).toEqual([
      '#/components/schemas/Broken: $ref #/components/schemas/__shared#/$defs/schema0 points at nothing',
      '#/components/schemas/Old: nullable is not OpenAPI 3.1',
    ]);
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow(/__shared/);
  });
});
