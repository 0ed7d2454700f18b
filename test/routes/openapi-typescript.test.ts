import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * A client a new user would write against types generated from openapi.yaml. It must type-check in strict
 * mode, and each `@ts-expect-error` line must really be an error (else tsc reports the directive unused):
 * the types are real, not `any` or `unknown` everywhere.
 */
const client = `
import type { components, paths } from './api.js';

type CreateJob = paths['/v1/jobs']['post']['requestBody']['content']['application/json'];
type Accepted = paths['/v1/jobs']['post']['responses'][202]['content']['application/json'];
type Polled = paths['/v1/jobs/{id}']['get']['responses'][200]['content']['application/json'];
type Job = components['schemas']['Job'];
type JsonValue = components['schemas']['JsonValue'];

export const create: CreateJob = {
  type: 'echo',
  input: { value: { nested: { list: [1, 2.5, -3, null, true, 'four', [], {}] }, empty: null, count: 0 } },
  metadata: { order: '42' },
};
// What the service fills in (input, priority, ...) may be left out.
export const minimal: CreateJob = { type: 'echo' };
export const headers: paths['/v1/jobs']['post']['parameters']['header'] = { 'idempotency-key': 'order-42', prefer: 'wait=10' };

export function read(accepted: Accepted, polled: Polled): string {
  const job: Job = polled;
  const status: 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled' = accepted.status;
  const percent: number | null = job.progress.percent;
  // Any JSON: unknown, so the client narrows it.
  const result: JsonValue = job.result;
  const input: JsonValue = job.input;
  const code: string | undefined = job.error?.code;
  const retryable: boolean | undefined = job.error?.retryable;
  const first: unknown = Array.isArray(result) ? (result as unknown[])[0] : result !== null && typeof result === 'object' ? (result as Record<string, unknown>)['key'] : result;
  return [status, percent, code, retryable, JSON.stringify(first), JSON.stringify(input)].join(' ');
}

export function wrong(job: Job): void {
  // @ts-expect-error progress.percent is a number (or null)
  job.progress.percent = 'half';
  // @ts-expect-error not a status
  job.status = 'done';
  // @ts-expect-error a result is unknown until narrowed (it would not be an error were it any)
  void job.result.key;
  // @ts-expect-error type is required
  const missing: CreateJob = { input: {} };
  // @ts-expect-error metadata values are strings
  const labels: CreateJob = { type: 'echo', metadata: { n: 1 } };
  void missing;
  void labels;
}
`;

const dir = mkdtempSync(join(tmpdir(), 'openapi-ts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TypeScript types generated from openapi.yaml (openapi-typescript)', () => {
  it('type-check a client that submits any JSON input and reads result, progress and error', async () => {
    const document = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Parameters<
      typeof openapiTS
    >[0];
    // openapi-typescript's default settings, as a new user runs it: fields the service fills in must stay optional.
    const api = astToString(await openapiTS(document));
    expect(api).not.toMatch(/__shared/);
    writeFileSync(join(dir, 'api.ts'), api);
    writeFileSync(join(dir, 'client.ts'), client);

    const program = ts.createProgram([join(dir, 'client.ts')], {
      strict: true,
      noUncheckedIndexedAccess: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: [],
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
      const where =
        diagnostic.file && diagnostic.start !== undefined
          ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
          : undefined;
      const file = diagnostic.file ? diagnostic.file.fileName.slice(dir.length + 1) : '';
      return `${file}${where ? `:${where.line + 1}:${where.character + 1}` : ''} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
    expect(diagnostics).toEqual([]);
  });
});
