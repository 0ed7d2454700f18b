import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { renderOpenApiYaml } from '../../scripts/openapi-document.js';

const committedPath = new URL('../../openapi.yaml', import.meta.url);

const responseSchema = z.object({
  description: z.string(),
  content: z.record(z.string(), z.object({ schema: z.unknown().optional() })).optional(),
});
const operationSchema = z.object({ responses: z.record(z.string(), responseSchema) }).passthrough();
const documentSchema = z.object({
  openapi: z.string(),
  paths: z.record(z.string(), z.record(z.string(), operationSchema)),
});

/** The HTTP contract: every operation and the statuses it must document. */
const contract: Record<string, number[]> = {
  'post /v1/jobs': [202, 400, 413, 415, 422, 503],
  'get /v1/jobs': [200, 400, 503],
  'get /v1/jobs/{id}': [200, 304, 404, 503],
  'get /v1/jobs/{id}/result': [200, 202, 404, 409, 503],
  'post /v1/jobs/{id}/cancel': [200, 202, 404, 503],
  'delete /v1/jobs/{id}': [204, 503],
  'get /v1/job-types': [200],
  'post /v1/schedules': [200, 201, 409, 422, 503],
  'get /v1/schedules': [200, 400, 503],
  'get /v1/schedules/{id}': [200, 404, 503],
  'put /v1/schedules/{id}': [200, 201, 409, 422, 503],
  'patch /v1/schedules/{id}': [200, 404, 422, 503],
  'delete /v1/schedules/{id}': [204, 503],
  'post /v1/schedules/{id}/pause': [200, 404, 503],
  'post /v1/schedules/{id}/resume': [200, 404, 503],
  'post /v1/schedules/{id}/trigger': [201, 404, 422, 503],
  'get /admin/jobs': [200, 400, 401, 403, 503],
  'delete /admin/jobs': [200, 400, 401, 403, 503],
  'get /admin/stats': [200, 401, 403, 503],
  'post /admin/jobs/{id}/retry': [200, 401, 403, 404, 409, 503],
  'get /health/live': [200],
  'get /health': [200, 503],
};

/** Responses that never have a body. */
const bodiless = new Set(['204', '304']);

describe('openapi.yaml', () => {
  it('is the document the code generates', async () => {
    const committed = readFileSync(committedPath, 'utf8');
    const rendered = await renderOpenApiYaml();
    expect(committed, 'openapi.yaml is stale: run npm run openapi').toBe(rendered);
  });

  it('declares a schema for every response that has a body', async () => {
    const document = documentSchema.parse(parse(await renderOpenApiYaml()));
    expect(document.openapi).toBe('3.1.0');
    const missing: string[] = [];
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (bodiless.has(status)) {
            if (response.content !== undefined)
              missing.push(`${method} ${path} ${status}: a ${status} must not have content`);
            continue;
          }
          const content = Object.entries(response.content ?? {});
          if (content.length === 0) missing.push(`${method} ${path} ${status}: no content`);
          for (const [type, media] of content)
            if (media.schema === undefined) missing.push(`${method} ${path} ${status} ${type}: no schema`);
          const wantsProblem = Number(status) >= 400 && !path.startsWith('/health');
          if (wantsProblem && !content.some(([type]) => type === 'application/problem+json')) {
            missing.push(`${method} ${path} ${status}: errors must be application/problem+json`);
          }
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('has every operation of the contract with its statuses', async () => {
    const document = documentSchema.parse(parse(await renderOpenApiYaml()));
    const operations = new Map<string, string[]>();
    for (const [path, byMethod] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(byMethod))
        operations.set(`${method} ${path}`, Object.keys(operation.responses));
    }
    for (const [operation, statuses] of Object.entries(contract)) {
      expect(operations.has(operation), `${operation} is missing from the OpenAPI document`).toBe(true);
      expect(operations.get(operation), `${operation} statuses`).toEqual(expect.arrayContaining(statuses.map(String)));
    }
  });

  it('documents the Job, Problem and JobList schemas as components', async () => {
    const document = z
      .object({ components: z.object({ schemas: z.record(z.string(), z.unknown()) }) })
      .parse(parse(await renderOpenApiYaml()));
    const names = Object.keys(document.components.schemas);
    for (const name of ['Job', 'JobList', 'CreateJob', 'Stats', 'Health', 'JobTypes']) {
      expect(
        names.some((n) => n === name || n.startsWith(name)),
        `component ${name}`,
      ).toBe(true);
    }
    expect(names.some((n) => n.startsWith('Problem'))).toBe(true);
  });
});
