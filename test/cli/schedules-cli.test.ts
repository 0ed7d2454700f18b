import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import { scheduleRecord, storePair, type StorePair } from '../schedules/schedule-fixtures.js';

/* `npm run jobs -- export|import` carries the recurring schedules of every tenant, as the store keeps them. */

const cli = fileURLToPath(new URL('../../dist/cli/jobs.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ajs-cli-schedules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pairs: StorePair[] = [];
afterEach(async () => {
  for (const pair of pairs.splice(0)) await pair.close();
});

const open = async (prefix: string) => {
  const pair = await storePair('redis', inject('redisUrl'), prefix);
  pairs.push(pair);
  return pair;
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

const prefix = (name: string) => `cli-${name}-${randomUUID().slice(0, 6)}`;
const formats = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { format: string }).format);

describe('npm run jobs -- export / import, schedules', () => {
  it('moves the schedules of every tenant after the jobs, as stored; skips ids a tenant already has, with a count', async () => {
    const from = prefix('sa');
    const to = prefix('sb');
    const source = await open(from);
    const now = Date.now();
    // A job a schedule made, and the schedule pointing at it as its last.
    const made = await source.jobs.create({
      id: newJobId(now),
      type: 'echo',
      tenant: 'acme',
      input: {},
      metadata: {},
      priority: 0,
      maxAttempts: 1,
      timeoutS: null,
      createdAt: now,
      runAt: now,
      scheduleId: 'nightly',
      scheduledFor: now - 1000,
    });
    const nightly = scheduleRecord({
      id: 'nightly',
      tenant: 'acme',
      cron: '0 3 * * *',
      everyS: null,
      timezone: 'Europe/Paris',
      lastRunAt: now - 1000,
      lastJobId: made.id,
      nextRunAt: now + 3_600_000,
      fires: { created: 7, skipped: 1, missed: 2 },
      version: 12,
      webhook: { url: 'https://hooks.example.com/x', events: ['job.failed'] },
    });
    const paused = scheduleRecord({ id: 'hourly', tenant: 'acme', everyS: 3600, paused: true, nextRunAt: null });
    const globex = scheduleRecord({ id: 'nightly', tenant: 'globex', type: 'sleep', nextRunAt: now + 60_000 });
    for (const record of [nightly, paused, globex]) expect(await source.schedules.save(record, 0)).toBe('saved');

    const file = join(dir, 'with-schedules.ndjson');
    const exported = await run(['export', '--out', file], from);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toContain('exported 1 jobs and 3 schedules');
    expect(formats(readFileSync(file, 'utf8'))).toEqual([
      'ajs-job/1',
      'ajs-schedule/1',
      'ajs-schedule/1',
      'ajs-schedule/1',
    ]);

    // The target already has acme/hourly (another one): it is kept, and counted.
    const target = await open(to);
    const theirs = scheduleRecord({ id: 'hourly', tenant: 'acme', everyS: 60, version: 3 });
    expect(await target.schedules.save(theirs, 0)).toBe('saved');
    const imported = await run(['import', file], to);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toContain('imported 1 jobs');
    expect(imported.stderr).toContain('imported 2 schedules; 1 already there (kept as they were)');
    expect(await target.schedules.get('acme', 'nightly')).toEqual(nightly);
    expect(await target.schedules.get('globex', 'nightly')).toEqual(globex);
    expect(await target.schedules.get('acme', 'hourly')).toEqual(theirs);
    expect((await target.jobs.get(made.id))?.scheduleId).toBe('nightly');
    // They are due in the target as they were in the source: the scheduler there fires them.
    expect(await target.schedules.nextDueAt()).toBe(Math.min(now + 60_000, theirs.nextRunAt!));
    expect((await target.schedules.due(now + 3_600_000, 10)).map((record) => record.id).sort()).toEqual([
      'hourly',
      'nightly',
      'nightly',
    ]);

    const again = await run(['import', file], to);
    expect(again.stderr).toContain('imported 0 schedules; 3 already there');

    // The jobs a schedule made, by --schedule-id (the search's schedule_id filter).
    const bySchedule = await run(['export', '--out', '-', '--schedule-id', 'nightly', '--no-schedules'], from);
    expect(
      bySchedule.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { job: { id: string } }).job.id),
    ).toEqual([made.id]);
    expect((await run(['export', '--out', '-', '--schedule-id', 'hourly', '--no-schedules'], from)).stdout).toBe('');
  });

  it('exports the schedules of --tenant and --type only, none with --no-schedules', async () => {
    const from = prefix('sc');
    const source = await open(from);
    await source.schedules.save(scheduleRecord({ id: 'a', tenant: 'acme' }), 0);
    await source.schedules.save(scheduleRecord({ id: 'b', tenant: 'acme', type: 'sleep' }), 0);
    await source.schedules.save(scheduleRecord({ id: 'a', tenant: 'globex' }), 0);
    const ids = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const { schedule } = JSON.parse(line) as { schedule: { tenant: string; id: string } };
          return `${schedule.tenant}/${schedule.id}`;
        });
    expect(ids((await run(['export', '--out', '-'], from)).stdout)).toEqual(['acme/a', 'acme/b', 'globex/a']);
    expect(ids((await run(['export', '--out', '-', '--tenant', 'acme'], from)).stdout)).toEqual(['acme/a', 'acme/b']);
    expect(ids((await run(['export', '--out', '-', '--type', 'sleep'], from)).stdout)).toEqual(['acme/b']);
    const none = await run(['export', '--out', '-', '--no-schedules'], from);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('exported 0 jobs and 0 schedules');
  });

  it('refuses a schedule line the scheduler could not fire, naming the field, and imports the rest', async () => {
    const to = prefix('sd');
    const good = scheduleRecord({ id: 'good', tenant: 'acme' });
    const lines = [
      { format: 'ajs-schedule/1', schedule: { ...good, id: 'bad-cron', cron: 'every day', everyS: null } },
      { format: 'ajs-schedule/1', schedule: { ...good, id: 'both', cron: '* * * * *' } },
      { format: 'ajs-schedule/1', schedule: { ...good, id: 'zone', timezone: 'Mars/Olympus' } },
      { format: 'ajs-schedule/1', schedule: { ...good, fires: undefined } },
      { format: 'ajs-schedule/1', schedule: good },
    ];
    const file = join(dir, 'bad-schedules.ndjson');
    writeFileSync(file, lines.map((line) => JSON.stringify(line)).join('\n'));
    const result = await run(['import', file], to);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/line 1: not an exported schedule \(schedule\.cron: .+\); skipped/);
    expect(result.stderr).toMatch(/line 2: not an exported schedule \(schedule\.cron: exactly one of cron and everyS/);
    expect(result.stderr).toMatch(/line 3: not an exported schedule \(schedule\.timezone: not a known IANA timezone/);
    expect(result.stderr).toMatch(/line 4: not an exported schedule \(schedule\.fires: /);
    expect(result.stderr).toContain('4 invalid lines');
    expect(result.stderr).toContain('imported 1 schedules; 0 already there');
    const target = await open(to);
    expect(await target.schedules.get('acme', 'good')).toEqual(good);
    expect(await target.schedules.get('acme', 'bad-cron')).toBeUndefined();
  });
});
