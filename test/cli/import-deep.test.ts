import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';

/* `npm run jobs -- import` of a file nobody exported: a line nested absurdly deep is skipped, not fatal. */

const cli = fileURLToPath(new URL('../../dist/cli/jobs.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ajs-cli-deep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], prefix: string): Promise<{ code: number; stderr: string }> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first (npm test does)`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { ...process.env, REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: prefix }, timeout: 20_000 },
      (error, _stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr }),
    );
  });
}

const line = (id: string, input: string): string => {
  const now = Date.now();
  return `{"format":"ajs-job/1","job":{"id":"${id}","type":"echo","tenant":"acme","status":"queued","input":${input},"metadata":{},"priority":0,"maxAttempts":1,"attemptBudget":1,"timeoutS":null,"createdAt":${now},"runAt":${now},"progress":{"percent":null,"step":null,"message":null,"updatedAt":null},"result":null,"error":null,"attempt":0,"version":1,"startedAt":null,"updatedAt":${now},"completedAt":null,"expiresAt":null,"lease":null,"cancelRequested":false,"webhook":null,"webhookDelivery":null,"cachedFrom":null,"workerId":null,"attempts":[]},"logs":[]}`;
};

describe('npm run jobs -- import, hostile lines', () => {
  it('skips a line nested deeper than it can store, naming where, and imports the rest', async () => {
    const prefix = `cli-deep-${randomUUID().slice(0, 6)}`;
    const deepId = newJobId(Date.now());
    const fineId = newJobId(Date.now() + 1);
    const file = join(dir, 'deep.ndjson');
    writeFileSync(
      file,
      `${line(deepId, `{"value":${'['.repeat(300_000)}${']'.repeat(300_000)}}`)}\n${line(fineId, '{"value":[[[1]]]}')}\n`,
    );
    const result = await run(['import', file], prefix);
    expect(result.stderr).toMatch(
      /line 1: not an exported job \(nested deeper than 512 levels at \/job\/input\/value(\/0)+\); skipped/,
    );
    expect(result.stderr).toMatch(/imported 1 jobs/);
    expect(result.code).toBe(1);
    const store = await RedisJobStore.connect({
      url: inject('redisUrl'),
      keyPrefix: prefix,
      jobTtlMs: 3_600_000,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 2000,
    });
    try {
      expect(await store.get(deepId)).toBeUndefined();
      expect((await store.get(fineId))?.input).toEqual({ value: [[[1]]] });
    } finally {
      await store.close();
    }
  });
});
