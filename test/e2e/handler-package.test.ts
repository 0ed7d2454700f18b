import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Api, repoRoot, startService, useServiceCleanup, type JobView } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * The package's entries used from a project OUTSIDE this one, as after `npm install /path/to/async-job-service`:
 * examples/handlers/word-count.js is copied into a temp directory whose node_modules/async-job-service is a
 * symlink to this repository (what npm makes for a directory install), so `async-job-service/handler` and
 * `async-job-service/client` resolve only through package.json "exports" and the built dist/.
 */

useServiceCleanup();

const outside = realpathSync(mkdtempSync(join(tmpdir(), 'ajs-outside-')));
afterAll(() => rmSync(outside, { recursive: true, force: true }));

writeFileSync(
  join(outside, 'package.json'),
  JSON.stringify(
    { name: 'my-job-types', private: true, type: 'module', dependencies: { 'async-job-service': `file:${repoRoot}` } },
    null,
    2,
  ),
);
mkdirSync(join(outside, 'node_modules'));
symlinkSync(repoRoot, join(outside, 'node_modules', 'async-job-service'), 'dir');
copyFileSync(join(repoRoot, 'examples/handlers/word-count.js'), join(outside, 'word-count.js'));
const wordCount = join(outside, 'word-count.js');

// A caller in the same outside project: both entries load there without starting anything (the process ends
// by itself), and the client submits a job and waits for its result.
writeFileSync(
  join(outside, 'count.js'),
  `// @ts-check
import * as handlerEntry from 'async-job-service/handler';
import { JobsClient } from 'async-job-service/client';

const [baseUrl, text] = process.argv.slice(2);
/** @type {unknown} */
let result = null;
if (baseUrl && text) {
  const jobs = new JobsClient({ baseUrl });
  const job = await jobs.submit('word-count', { text, top: 2 });
  result = await jobs.result(job.id, { timeoutMs: 10_000 });
}
console.log(JSON.stringify({ handlerEntry: Object.keys(handlerEntry).sort(), result }));
`,
);

// Types must come from the declarations, not fall back to \`any\`: each @ts-expect-error is an error only when they do.
writeFileSync(
  join(outside, 'types-probe.js'),
  `// @ts-check
import { defineHandler, z } from 'async-job-service/handler';
import { JobsClient } from 'async-job-service/client';

export const probe = defineHandler({
  type: 'probe',
  input: z.object({ n: z.number() }),
  async run(input, ctx) {
    // @ts-expect-error input.n is a number (the schema's output type reaches run)
    input.n.toUpperCase();
    // @ts-expect-error progress takes a percent (number or null)
    ctx.progress('half');
    ctx.signal.throwIfAborted();
    return { n: input.n };
  },
});

/**
 * The factory form, typed.
 * @param {import('async-job-service/handler').HandlerModuleApi} api
 */
export const factory = (api) =>
  api.defineHandler({
    type: 'probe-factory',
    input: api.z.object({ s: api.z.string() }),
    async run(input) {
      // @ts-expect-error input.s is a string
      return input.s.toFixed();
    },
  });

// @ts-expect-error submit needs at least a job type
void new JobsClient({ baseUrl: '' }).submit();
`,
);

writeFileSync(
  join(outside, 'tsconfig.json'),
  JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2023',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        // The outside project would install @types/node itself; this one borrows the repository's.
        typeRoots: [join(repoRoot, 'node_modules/@types')],
        types: ['node'],
        strict: true,
        allowJs: true,
        checkJs: true,
        noEmit: true,
        skipLibCheck: true,
      },
      include: ['*.js'],
    },
    null,
    2,
  ),
);

function run(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: outside, timeout: timeoutMs, env: { ...process.env, NODE_OPTIONS: '' } },
      (error, stdout, stderr) => {
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          stdout,
          stderr: stderr + (error?.killed ? '\n(killed: timeout)' : ''),
        });
      },
    );
  });
}

const lines = ['the cat and the hat', 'The cat sat.', '', "a cat's hat"];

describe('async-job-service/handler from a project outside this one', () => {
  it('sits outside the repository; the README shows the example file as it is', () => {
    expect(relative(repoRoot, outside).startsWith('..')).toBe(true);
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    expect(readme).toContain(
      '```js\n' + readFileSync(join(repoRoot, 'examples/handlers/word-count.js'), 'utf8') + '```',
    );
  });

  it(
    'runs examples/handlers/word-count.js via HANDLER_MODULES: schema, progress in steps, ctx.log, result, JobFailure',
    { timeout: 30_000 },
    async () => {
      const service = await startService({ HANDLER_MODULES: wordCount });
      const api = new Api(service.baseUrl);

      // z is the service's own zod: the JSON Schema of the input keeps the descriptions and defaults.
      const types = await api.request<{
        data: {
          type: string;
          input_schema: { properties: Record<string, { description?: string; default?: unknown }> };
        }[];
      }>('GET', '/v1/job-types');
      const schema = types.body.data.find((entry) => entry.type === 'word-count')!.input_schema;
      expect(Object.keys(schema.properties).sort()).toEqual(['lines_per_step', 'pause_ms', 'text', 'top']);
      expect(schema.properties.top).toMatchObject({
        default: 10,
        description: 'how many of the most frequent words to return',
      });

      const invalid = await api.request<{ errors: { pointer: string }[] }>('POST', '/v1/jobs', {
        body: { type: 'word-count', input: { text: 'x', top: 0 } },
      });
      expect(invalid.status).toBe(422);
      expect(invalid.body.errors[0]!.pointer).toBe('/input/top');

      // One line per step, 300 ms apart: the progress is seen moving while it runs.
      const job = await api.submit({
        type: 'word-count',
        input: { text: lines.join('\n'), top: 3, lines_per_step: 1, pause_ms: 300 },
      });
      const seen: JobView['progress'][] = [];
      const done = await api.waitForJob(job.id, 'to succeed', (current) => {
        if (current.status === 'running' && current.progress.percent !== null) seen.push(current.progress);
        return current.done;
      });
      expect(done.status).toBe('succeeded');
      // "cat's" is a word of its own; ties are in alphabetical order.
      expect(done.result).toEqual({
        words: 11,
        lines: 4,
        distinct: 7,
        top: [
          { word: 'the', count: 3 },
          { word: 'cat', count: 2 },
          { word: 'hat', count: 2 },
        ],
      });
      expect(done.progress).toMatchObject({ percent: 100, step: 'done', message: '11 words, 7 distinct' });
      const counting = seen.filter(
        (progress) => progress.step === 'counting' && progress.percent! > 0 && progress.percent! < 100,
      );
      expect(counting.length).toBeGreaterThan(0);
      expect(counting[0]!.message).toMatch(/^line [1-3]\/4$/);
      // ctx.log lines carry the job's id.
      const logged = await waitFor(
        () => service.logs().find((line) => line.msg === 'word count done' && line.jobId === job.id),
        { intervalMs: 50, what: 'the handler log line' },
      );
      expect(logged).toMatchObject({ words: 11, distinct: 7 });

      // JobFailure from the module is the service's own class (one copy of the package): its code and retryable hold.
      const empty = await api.submit({ type: 'word-count', input: { text: '... !!! ...' } });
      const failed = await api.waitForJob(empty.id, 'to fail', (current) => current.done);
      expect(failed).toMatchObject({
        status: 'failed',
        attempt: 1,
        max_attempts: 2,
        error: { code: 'no-words', retryable: false },
      });
    },
  );

  it('stops the handler through ctx.signal when the job is canceled', { timeout: 30_000 }, async () => {
    const service = await startService({ HANDLER_MODULES: wordCount });
    const api = new Api(service.baseUrl);
    const job = await api.submit({
      type: 'word-count',
      input: { text: lines.join('\n'), lines_per_step: 1, pause_ms: 30_000 },
    });
    await api.waitForJob(
      job.id,
      'to report its first step',
      (current) => current.status === 'running' && current.progress.step === 'counting',
    );
    const cancel = await api.request('POST', `/v1/jobs/${job.id}/cancel`);
    expect(cancel.status).toBe(202);
    const canceled = await api.waitForJob(job.id, 'to be canceled', (current) => current.done);
    expect(canceled.status).toBe('canceled');
    // The pause (30 s) ended at once: the handler saw the abort and logged why it stopped.
    const stopped = await waitFor(
      () => service.logs().find((line) => line.msg === 'word count stopped' && line.jobId === job.id),
      { timeoutMs: 5000, intervalMs: 50, what: 'the handler to log that it stopped' },
    );
    expect(stopped).toMatchObject({ reason: 'canceled', words: 5 });
    // The output has caught up: the line of a request sent now is in, so is every line the service wrote before it.
    const marker = 'after-the-stop-line';
    await api.request('GET', '/health/live', { headers: { 'x-request-id': marker } });
    await waitFor(() => service.logs().some((line) => line.reqId === marker && line.msg === 'request completed'), {
      intervalMs: 50,
      what: 'the log line of a request sent after the stop',
    });
    expect(service.logs().some((line) => line.msg === 'word count done' && line.jobId === job.id)).toBe(false);
  });

  it(
    'loads async-job-service/handler and /client without starting anything; the client submits and gets a result',
    { timeout: 30_000 },
    async () => {
      const imported = await run(['count.js'], 10_000);
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      expect(JSON.parse(imported.stdout)).toEqual({
        handlerEntry: ['JobFailure', 'defineHandler', 'jobTypePattern', 'z'],
        result: null,
      });

      const service = await startService({ HANDLER_MODULES: wordCount });
      const counted = await run(['count.js', service.baseUrl, 'b a b c'], 15_000);
      expect(counted.stderr).toBe('');
      expect(JSON.parse(counted.stdout)).toMatchObject({
        result: {
          words: 4,
          lines: 1,
          distinct: 3,
          top: [
            { word: 'b', count: 2 },
            { word: 'a', count: 1 },
          ],
        },
      });
    },
  );

  it(
    'also loads from inside the package folder (as /app/handlers in the image): the module resolves the package by its own name',
    { timeout: 20_000 },
    async () => {
      const service = await startService({ HANDLER_MODULES: join(repoRoot, 'examples/handlers/word-count.js') });
      const api = new Api(service.baseUrl);
      const job = await api.submit({ type: 'word-count', input: { text: 'to be or not to be', top: 1 } });
      const done = await api.waitForJob(job.id, 'to succeed', (current) => current.done);
      expect(done).toMatchObject({ status: 'succeeded', result: { words: 6, top: [{ word: 'be', count: 2 }] } });
    },
  );

  it('type-checks the example and its callers against the published declarations', { timeout: 60_000 }, async () => {
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const checked = await run([tsc, '-p', outside], 55_000);
    expect(checked.stdout + checked.stderr).toBe('');
    expect(checked.code).toBe(0);
  });
});
