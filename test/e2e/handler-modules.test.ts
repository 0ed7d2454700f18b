import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Api, spawnService, startService, useServiceCleanup } from './helpers.js';

/* Job types loaded at start-up from compiled JS modules (HANDLER_MODULES), as a Docker user mounts them. */

useServiceCleanup();

const dir = mkdtempSync(join(tmpdir(), 'ajs-handlers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A module outside the app: it imports nothing and gets defineHandler, JobFailure and z from its factory.
const shout = join(dir, 'shout.mjs');
writeFileSync(
  shout,
  `export default ({ defineHandler, JobFailure, z }) => defineHandler({
  type: 'shout',
  input: z.object({ text: z.string().min(1) }),
  max_attempts: 1,
  async run(input, ctx) {
    if (input.text === 'fail') throw new JobFailure('asked to fail', { code: 'asked', retryable: false });
    ctx.progress(50, { step: 'shouting' });
    return { text: input.text.toUpperCase(), attempt: ctx.attempt };
  },
});
`,
);
const broken = join(dir, 'broken.mjs');
writeFileSync(broken, `export default { type: 'broken' };\n`);

describe('HANDLER_MODULES', () => {
  it(
    'enables the types of the modules it names, with their input schema, without naming them in JOB_TYPES',
    { timeout: 30_000 },
    async () => {
      const service = await startService({ HANDLER_MODULES: shout });
      const api = new Api(service.baseUrl);
      const job = await api.submit({ type: 'shout', input: { text: 'hello' } });
      const done = await api.waitForJob(job.id, 'to succeed', (current) => current.status === 'succeeded');
      expect(done.result).toEqual({ text: 'HELLO', attempt: 1 });
      const invalid = await api.request<{ errors: { pointer: string }[] }>('POST', '/v1/jobs', {
        body: { type: 'shout', input: { text: '' } },
      });
      expect(invalid.status).toBe(422);
      expect(invalid.body.errors[0]!.pointer).toBe('/input/text');
      const types = await api.request<{
        data: { type: string; input_schema: { properties?: Record<string, unknown> } }[];
      }>('GET', '/v1/job-types');
      expect(types.body.data.map((entry) => entry.type).sort()).toEqual(['echo', 'shout', 'sleep']);
      expect(types.body.data.find((entry) => entry.type === 'shout')!.input_schema.properties).toHaveProperty('text');
    },
  );

  it(
    'stops the start-up when a module cannot be loaded, naming its path and the reason',
    { timeout: 20_000 },
    async () => {
      for (const [path, reason] of [
        [broken, 'no run'],
        [join(dir, 'missing.mjs'), 'missing.mjs'],
      ] as const) {
        const service = await spawnService({ HANDLER_MODULES: path });
        const exit = await service.waitForExit(8000);
        expect(exit.code).not.toBe(0);
        expect(service.stderr()).toContain('HANDLER_MODULES');
        expect(service.stderr()).toContain(path);
        expect(service.stderr()).toContain(reason);
      }
    },
  );
});
