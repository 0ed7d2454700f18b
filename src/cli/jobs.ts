import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError, loadConfig, maskRedisUrl } from '../config.js';
import { findTooDeepValue, tooDeepPointer } from '../http/json-depth.js';
import { isJobId } from '../jobs/job-id.js';
import { JobStatus, type JobLogLine, type JobRecord } from '../jobs/job.js';
import { RedisScheduleStore } from '../schedules/redis-schedule-store.js';
import type { ScheduleStore } from '../schedules/schedule-store.js';
import { adminSearchFilter, searchPages } from '../search/job-search.js';
import type { JobStore } from '../store/job-store.js';
import { redisStoreOptions } from '../store/create-job-store.js';
import { RedisJobStore } from '../store/redis-job-store.js';
import { allSchedules, importSchedule, SCHEDULE_FORMAT, scheduleLine } from './schedule-lines.js';

/**
 * `npm run jobs -- export --out FILE [filters]` and `npm run jobs -- import FILE`: moves jobs between stores
 * (one Redis to another, or to a Cluster) as NDJSON, one `{"format":"ajs-job/1","job":…,"logs":[…]}` per line,
 * keeping ids, states, attempts, results and log lines; then the recurring schedules, one
 * `{"format":"ajs-schedule/1","schedule":…}` per line (schedule-lines.ts). Both stream: memory stays flat
 * whatever the count.
 */

const USAGE = `Usage:
  npm run jobs -- export --out FILE|- [--status failed,canceled] [--type T] [--tenant T] [--created-after ISO]
                         [--created-before ISO] [--finished-after ISO] [--finished-before ISO] [--error TEXT]
                         [--min-attempts N] [--worker ID] [--concurrency-key KEY] [--schedule-id ID]
                         [--metadata.KEY VALUE]... [--no-schedules]
  npm run jobs -- import FILE|-
Export writes the jobs the filters match, then every recurring schedule (of --tenant and --type when given;
none with --no-schedules). Import skips jobs and schedules (per tenant) whose ids are already there.
The store is the one the service would use: REDIS_URL, REDIS_KEY_PREFIX, REDIS_CLUSTER, … (see README).`;

const FORMAT = 'ajs-job/1';
const lineSchema = z.object({
  format: z.literal(FORMAT),
  job: z
    .object({
      id: z.string().refine(isJobId, 'not a job id'),
      type: z.string(),
      tenant: z.string(),
      status: JobStatus,
      // Exports made before concurrency keys existed have none.
      concurrencyKey: z.string().nullable().default(null),
    })
    .loose(),
  logs: z.array(z.object({ at: z.number(), attempt: z.number(), level: z.string(), message: z.string() })).default([]),
});

/** Whole pages of jobs per call: a longer Redis command timeout than the service's (at least this), which answers requests. */
const MIN_COMMAND_TIMEOUT_MS = 5000;

/** Deepest nesting an import line may have: far above what the API accepts (MAX_JSON_DEPTH, for inputs), far below what JSON.stringify can take. */
const MAX_LINE_DEPTH = 512;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'export' && command !== 'import')
    throw new UsageError(command ? `unknown command: ${command}` : 'no command');
  const { store, schedules } = await openStores();
  try {
    return command === 'export' ? await exportJobs(store, schedules, rest) : await importJobs(store, schedules, rest);
  } finally {
    await schedules.close();
    await store.close();
  }
}

/** The jobs' Redis store, and the schedules beside them (same connection and key base, as the service has them). */
async function openStores(): Promise<{ store: JobStore; schedules: ScheduleStore }> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  if (!config.REDIS_URL)
    throw new UsageError(
      'REDIS_URL is not set: export and import work on a Redis (an in-memory store lives only inside its service process).',
    );
  process.stderr.write(`store: ${maskRedisUrl(config.REDIS_URL)} prefix ${config.REDIS_KEY_PREFIX}\n`);
  const options = redisStoreOptions(config, config.REDIS_URL);
  const commandTimeoutMs = Math.max(options.commandTimeoutMs, MIN_COMMAND_TIMEOUT_MS);
  const store = await RedisJobStore.connect({ ...options, commandTimeoutMs });
  return { store, schedules: new RedisScheduleStore(store.redis, store.keys.base, { commandTimeoutMs }) };
}

async function exportJobs(store: JobStore, schedules: ScheduleStore, args: string[]): Promise<number> {
  const { out, filter, withSchedules } = exportOptions(args);
  const sink: Writable = out === '-' ? process.stdout : createWriteStream(out);
  const write = async (line: string) => {
    if (!sink.write(line)) await once(sink, 'drain'); // stream: never more than a page in memory
  };
  let count = 0;
  for await (const page of searchPages(store, filter)) {
    const logs = await Promise.all(page.jobs.map((job) => store.logs(job.id)));
    for (let i = 0; i < page.jobs.length; i++) {
      await write(`${JSON.stringify({ format: FORMAT, job: page.jobs[i], logs: logs[i] })}\n`);
      count++;
    }
  }
  // After the jobs: an import then has a schedule's last job before the schedule.
  let scheduleCount = 0;
  if (withSchedules) {
    for await (const schedule of allSchedules(schedules, { tenant: filter.tenant, type: filter.type })) {
      await write(`${JSON.stringify({ format: SCHEDULE_FORMAT, schedule })}\n`);
      scheduleCount++;
    }
  }
  if (sink !== process.stdout) {
    sink.end();
    await once(sink, 'finish');
  }
  process.stderr.write(`exported ${count} jobs and ${scheduleCount} schedules${out === '-' ? '' : ` to ${out}`}\n`);
  return 0;
}

/**
 * `--out FILE`, the search filters, as `--created-after` or `--created_after`, `--metadata.KEY VALUE`, and
 * `--no-schedules`.
 */
function exportOptions(args: string[]): {
  out: string;
  filter: z.infer<typeof adminSearchFilter>;
  withSchedules: boolean;
} {
  const names = Object.keys(adminSearchFilter.shape).filter((name) => name !== 'metadata' && name !== 'stuck');
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    out: { type: 'string' },
    'no-schedules': { type: 'boolean' },
  };
  for (const name of names) {
    options[name] = { type: 'string' };
    options[name.replaceAll('_', '-')] = { type: 'string' };
  }
  const metadata: Record<string, string> = {};
  const plain: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const match = /^--metadata\.(.+)$/.exec(args[i]!);
    if (!match) plain.push(args[i]!);
    else if (args[i + 1] === undefined) throw new UsageError(`${args[i]} needs a value`);
    else metadata[match[1]!] = args[++i]!;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: plain, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (typeof values.out !== 'string' || !values.out)
    throw new UsageError('export needs --out FILE (or --out - for stdout)');
  const raw: Record<string, unknown> = {};
  for (const name of names) {
    const value = values[name] ?? values[name.replaceAll('_', '-')];
    if (value !== undefined) raw[name] = value;
  }
  if (Object.keys(metadata).length > 0) raw.metadata = metadata;
  const parsed = adminSearchFilter.safeParse(raw);
  if (!parsed.success)
    throw new UsageError(parsed.error.issues.map((issue) => `--${issue.path.join('.')}: ${issue.message}`).join('; '));
  return { out: values.out, filter: parsed.data, withSchedules: values['no-schedules'] !== true };
}

async function importJobs(store: JobStore, schedules: ScheduleStore, args: string[]): Promise<number> {
  const [file, ...extra] = args;
  if (!file || extra.length > 0) throw new UsageError('import needs exactly one FILE (or - for stdin)');
  const lines = createInterface({ input: file === '-' ? process.stdin : createReadStream(file), crlfDelay: Infinity });
  const counts = { imported: 0, exists: 0, expired: 0, invalid: 0 };
  const scheduleCounts = { imported: 0, exists: 0 };
  let number = 0;
  for await (const text of lines) {
    number++;
    if (text.trim() === '') continue;
    let value: unknown;
    let why: string | undefined;
    try {
      value = JSON.parse(text);
      // JSON.parse takes any depth; storing it (JSON.stringify) would overflow the stack: refuse the line instead.
      const tooDeep = findTooDeepValue(value, MAX_LINE_DEPTH);
      if (tooDeep) why = `nested deeper than ${MAX_LINE_DEPTH} levels at ${tooDeepPointer(tooDeep) || '/'}`;
    } catch {
      why = 'not JSON';
    }
    const isSchedule = (value as { format?: unknown } | null | undefined)?.format === SCHEDULE_FORMAT;
    const parsed =
      why !== undefined ? undefined : isSchedule ? scheduleLine.safeParse(value) : lineSchema.safeParse(value);
    if (!parsed?.success) {
      counts.invalid++;
      const issue = parsed?.error.issues[0];
      const reason = issue ? `${issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue.message}` : why;
      process.stderr.write(`line ${number}: not an exported ${isSchedule ? 'schedule' : 'job'} (${reason}); skipped\n`);
      continue;
    }
    if ('schedule' in parsed.data) scheduleCounts[await importSchedule(schedules, parsed.data.schedule)]++;
    else
      counts[
        await store.importJob(parsed.data.job as unknown as JobRecord, parsed.data.logs as JobLogLine[], Date.now())
      ]++;
  }
  process.stderr.write(
    `imported ${counts.imported} jobs; ${counts.exists} already there (kept as they were), ${counts.expired} past their expiry, ${counts.invalid} invalid lines\n` +
      `imported ${scheduleCounts.imported} schedules; ${scheduleCounts.exists} already there (kept as they were)\n`,
  );
  return counts.invalid > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`${error.message}\n\n${USAGE}\n`);
    else process.stderr.write(`jobs: ${(error as Error).message}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
