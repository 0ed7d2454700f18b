import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import type { NewJob } from '../../src/jobs/job.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';

/* `npm run jobs -- export|import`: the built command, run as an operator would, between two key prefixes. */

const cli = fileURLToPath(new URL('../../dist/cli/jobs.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ajs-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const stores: RedisJobStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

const open = async (prefix: string) => {
  const store = await RedisJobStore.connect({
    url: inject('redisUrl'),
    keyPrefix: prefix,
    jobTtlMs: 3_600_000,
    connectTimeoutMs: 2000,
    commandTimeoutMs: 2000,
  });
  stores.push(store);
  return store;
};

function run(args: string[], prefix: string): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first (npm test does)`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { ...process.env, REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: prefix }, timeout: 20_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

let n = 0;
const job = (overrides: Partial<NewJob> = {}): NewJob => {
  const now = Date.now() + n++;
  return {
    id: newJobId(now),
    type: 'echo',
    tenant: 'acme',
    input: { n },
    metadata: { team: 'search' },
    priority: 0,
    maxAttempts: 1,
    timeoutS: null,
    createdAt: now,
    runAt: now,
    ...overrides,
  };
};
const claim = (store: RedisJobStore) =>
  store
    .claim({ types: ['echo'], max: 1, workerId: 'w1', leaseId: randomUUID(), leaseMs: 30_000, now: Date.now() })
    .then(([claimed]) => claimed!);

describe('npm run jobs -- export / import', () => {
  it('moves jobs to another store keeping ids, states, attempts, results and logs; running ones arrive queued', async () => {
    const from = `cli-a-${randomUUID().slice(0, 6)}`;
    const to = `cli-b-${randomUUID().slice(0, 6)}`;
    const source = await open(from);
    await source.create(job());
    const succeeded = await claim(source);
    await source.finish(
      { jobId: succeeded.id, leaseId: succeeded.lease!.id },
      { kind: 'succeeded', result: { big: 'x'.repeat(20_000) } },
      Date.now(),
    );
    await source.appendLogs([{ jobId: succeeded.id, lines: [{ at: 1, attempt: 1, level: 'info', message: 'hello' }] }]);
    await source.create(job());
    const failed = await claim(source);
    await source.finish(
      { jobId: failed.id, leaseId: failed.lease!.id },
      { kind: 'failed', error: { code: 'boom', message: 'no', retryable: false } },
      Date.now(),
    );
    await source.create(job());
    const running = await claim(source);
    const delayed = await source.create(job({ runAt: Date.now() + 3_600_000, tenant: 'globex', metadata: {} }));

    const file = join(dir, 'all.ndjson');
    const exported = await run(['export', '--out', file], from);
    expect(exported.stderr).toContain('exported 4 jobs');
    expect(exported.code).toBe(0);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(4);

    const imported = await run(['import', file], to);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toContain('imported 4 jobs');
    const target = await open(to);
    for (const id of [succeeded.id, failed.id]) expect(await target.get(id)).toEqual(await source.get(id));
    expect(await target.logs(succeeded.id)).toEqual([{ at: 1, attempt: 1, level: 'info', message: 'hello' }]);
    expect(await target.get(running.id)).toMatchObject({ status: 'queued', attempt: 1, lease: null });
    expect(await target.get(delayed.id)).toEqual(await source.get(delayed.id));

    const again = await run(['import', file], to);
    expect(again.stderr).toContain('imported 0 jobs; 4 already there');
  });

  it('exports only what the filters match, to stdout too', async () => {
    const from = `cli-c-${randomUUID().slice(0, 6)}`;
    const source = await open(from);
    await source.create(job());
    const failed = await claim(source);
    await source.finish(
      { jobId: failed.id, leaseId: failed.lease!.id },
      { kind: 'failed', error: { code: 'boom', message: 'no', retryable: false } },
      Date.now(),
    );
    const other = await source.create(job({ metadata: { team: 'ads' } }));
    const byStatus = await run(['export', '--out', '-', '--status', 'failed'], from);
    expect(
      byStatus.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { job: { id: string } }).job.id),
    ).toEqual([failed.id]);
    const byMetadata = await run(
      ['export', '--out', '-', '--metadata.team', 'ads', '--created-after', new Date(0).toISOString()],
      from,
    );
    expect(
      byMetadata.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { job: { id: string } }).job.id),
    ).toEqual([other.id]);
  });

  it('refuses bad usage with exit code 2, and reports lines that are not exported jobs', async () => {
    const prefix = `cli-d-${randomUUID().slice(0, 6)}`;
    const noOut = await run(['export'], prefix);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/--out/);
    expect((await run(['export', '--out', '-', '--colour', 'red'], prefix)).code).toBe(2);
    expect((await run(['frobnicate'], prefix)).code).toBe(2);
    const file = join(dir, 'bad.ndjson');
    writeFileSync(file, 'not json\n{"format":"ajs-job/1","job":{"id":"x"}}\n');
    const bad = await run(['import', file], prefix);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/line 1: not an exported job/);
    expect(bad.stderr).toMatch(/2 invalid lines/);
  });
});
