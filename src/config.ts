import { createHash } from 'node:crypto';
import { z } from 'zod';
import { jobTypePattern } from './handlers/handler.js';
import { MAX_WAIT_S } from './http/prefer.js';
import { DEFAULT_POISON_AFTER, MAX_PARTITIONS, type ClaimLimit } from './store/job-store.js';
import { webhookSecretProblem } from './webhooks/webhook-signer.js';

/**
 * The environment, validated once at start-up. This schema is the home of defaults; README.md and
 * .env.example list the same names. A default that code built without a config also needs (buildApp in
 * tests) is named below and used by both.
 */
export const DEFAULT_BODY_LIMIT_BYTES = 1_048_576;
export const DEFAULT_IDEMPOTENCY_TTL_S = 86_400;
export const DEFAULT_LEASE_S = 30;
export const DEFAULT_RETRY_BACKOFF = { baseMs: 1000, maxMs: 300_000 } as const;
/** Longest `Prefer: wait` of a remote worker's claim (REMOTE_MAX_WAIT_S): below common proxy idle timeouts (30 s and more). */
export const DEFAULT_REMOTE_MAX_WAIT_S = 25;
/** Most jobs one remote claim may lease (REMOTE_MAX_CLAIM). */
export const DEFAULT_REMOTE_MAX_CLAIM = 100;
/** Most recurring schedules one tenant may have (MAX_SCHEDULES_PER_TENANT). */
export const DEFAULT_MAX_SCHEDULES_PER_TENANT = 1000;

/**
 * How long the (schedule, fire time) idempotency key of a schedule's job is kept: IDEMPOTENCY_TTL_S, but at least
 * 25 hours. A fire time stays due until the schedule is advanced past it (an instance stopped, or cut off from
 * Redis, between making the job and advancing leaves it due), and whichever instance fires it later must find that
 * job rather than make a second: a short IDEMPOTENCY_TTL_S, meant for clients' keys, must not shorten that.
 */
export const scheduleFireKeyTtlMs = (idempotencyTtlMs: number): number => Math.max(idempotencyTtlMs, 25 * 3_600_000);

/*
 * Settings an operator may want to change that have no environment variable: change them here. (Limits
 * that are part of a rule, and the HTTP contract's caps, are named beside the rule instead.)
 */
/** How long a readiness check (GET /health) or a metrics scrape waits on the store before it counts it as down. */
export const STORE_PROBE_TIMEOUT_MS = 1500;
/** `: ping` comments on open event streams, so proxies do not close an idle one. */
export const EVENT_STREAM_PING_INTERVAL_MS = 15_000;
/** Least time between two events of one job on GET /v1/jobs/{id}/events: progress is coalesced to a few a second. */
export const JOB_EVENT_MIN_INTERVAL_MS = 250;
/** How often the dashboard's event stream (GET /admin/events) reads the queue statistics. */
export const ADMIN_STATS_INTERVAL_MS = 2000;
/** How long a signed events link (a Job's `links.events` with API keys) opens its stream. */
export const EVENT_LINK_TTL_MS = 10 * 60_000;
/** Failed dashboard sign-ins one address may make per minute before every sign-in from it answers 429. */
export const ADMIN_SIGN_IN_MAX_FAILURES_PER_MIN = 10;
/** Webhook deliveries one instance sends at once. */
export const WEBHOOK_CONCURRENCY = 8;
/** A webhook receiver that has not answered 2xx within this is retried later. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longest wait between two attempts of a webhook delivery (the wait doubles from WEBHOOK_RETRY_BASE_S). */
export const WEBHOOK_MAX_RETRY_DELAY_MS = 2 * 3_600_000;
const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const positiveInt = z.coerce.number().int().positive();

/** A job type's name without its anchors, to build WORKER_KEYS' label from. */
const typeName = jobTypePattern.source.slice(1, -1);
/** WORKER_KEYS' label: `name`, or `name:type1|type2` (the types the key may claim). */
const workerKeyLabel = new RegExp(`^[A-Za-z0-9_.-]{1,64}(?::${typeName}(?:\\|${typeName})*)?$`);

/**
 * `type:max_concurrency=5:rate=20/1;docs:key_concurrency=1:fair_by=key` → per-type scheduling settings (the rate's
 * window in ms); each overrides the type's own.
 */
const typeLimitsSchema = z.string().transform((value, ctx) => {
  const limits: Record<string, ClaimLimit> = {};
  for (const entry of value
    .split(';')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [type, ...settings] = entry.split(':');
    if (!type || !jobTypePattern.test(type) || settings.length === 0) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" is not type:key=value[:key=value]` });
      return z.NEVER;
    }
    const limit: ClaimLimit = {};
    for (const setting of settings) {
      const concurrency = /^max_concurrency=(\d+)$/.exec(setting);
      const rate = /^rate=(\d+)\/(\d+(?:\.\d+)?)$/.exec(setting);
      const keyConcurrency = /^key_concurrency=(\d+)$/.exec(setting);
      const fairBy = /^fair_by=(tenant|key)$/.exec(setting);
      if (concurrency && Number(concurrency[1]) > 0) limit.maxConcurrency = Number(concurrency[1]);
      else if (rate && Number(rate[1]) > 0 && Number(rate[2]) > 0)
        limit.rate = { max: Number(rate[1]), perMs: Math.round(Number(rate[2]) * 1000) };
      else if (keyConcurrency && Number(keyConcurrency[1]) > 0) limit.keyConcurrency = Number(keyConcurrency[1]);
      else if (fairBy) limit.fairBy = fairBy[1] as 'tenant' | 'key';
      else {
        ctx.addIssue({
          code: 'custom',
          message: `"${setting}" in "${entry}": use max_concurrency=N, rate=MAX/PER_SECONDS, key_concurrency=N (positive numbers) or fair_by=tenant|key`,
        });
        return z.NEVER;
      }
    }
    limits[type] = limit;
  }
  return limits;
});

/** API_KEYS' tenant label, also what TENANT_WEIGHTS names. */
const tenantLabel = /^[A-Za-z0-9_.]{1,64}$/;
/** Highest TENANT_WEIGHTS weight: claims per fair round, so one tenant cannot take every claim for long. */
const MAX_TENANT_WEIGHT = 1000;

/** `acme:3,globex:2` → claims per fair round of each tenant (a tenant not named: 1). */
const tenantWeightsSchema = z.string().transform((value, ctx) => {
  const weights: Record<string, number> = {};
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const match = /^(.+):(\d+)$/.exec(entry);
    const weight = Number(match?.[2]);
    if (!match || !tenantLabel.test(match[1]!) || !(weight >= 1 && weight <= MAX_TENANT_WEIGHT)) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not tenant:weight (tenant: letters, digits, _ and ., at most 64; weight: an integer 1 to ${MAX_TENANT_WEIGHT})`,
      });
      return z.NEVER;
    }
    if (Object.hasOwn(weights, match[1]!)) {
      ctx.addIssue({ code: 'custom', message: `tenant "${match[1]}" is named twice` });
      return z.NEVER;
    }
    weights[match[1]!] = weight;
  }
  return weights;
});

/** A configured key: the key itself (16+ characters) or, written `sha256:<64 hex digits>`, only its SHA-256. */
export interface ConfiguredKey {
  key?: string;
  sha256?: string;
}

/** The hex SHA-256 a presented key is matched by: keys are only ever compared by their digest. */
export const keyDigest = (entry: ConfiguredKey): string =>
  entry.sha256 ?? createHash('sha256').update(entry.key!).digest('hex');

/** Admin roles, least to most: viewer reads; operator also acts on jobs (retry…); admin also purges. */
export const ADMIN_ROLES = ['viewer', 'operator', 'admin'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

/**
 * `key:label` pairs, comma-separated (API_KEYS, ADMIN_KEYS, WORKER_KEYS); a key written `sha256:<64 hex
 * digits>` is matched by its SHA-256, so the plain key need not sit in the environment. The label follows
 * the last colon, or, with `labelAfterKey` (a label that holds colons itself), the key's own end: then a
 * key cannot hold a colon. Messages name the entry by its position: they never echo a key.
 */
function keyPairs<L extends string>(
  usage: string,
  isLabel: (label: string) => label is L,
  { labelAfterKey = false } = {},
) {
  return z.string().transform((value, ctx) => {
    const entries: (ConfiguredKey & { label: L })[] = [];
    for (const entry of value
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)) {
      const colon = labelAfterKey
        ? (/^sha256:[0-9a-f]{64}(?=:)/i.exec(entry)?.[0].length ?? entry.indexOf(':'))
        : entry.lastIndexOf(':');
      const secret = entry.slice(0, colon);
      const label = entry.slice(colon + 1);
      if (colon < 0 || !isLabel(label)) {
        ctx.addIssue({ code: 'custom', message: `entry ${entries.length + 1}: use ${usage}` });
        return z.NEVER;
      }
      const hashed = /^sha256:([0-9a-f]{64})$/i.exec(secret);
      if (hashed) entries.push({ sha256: hashed[1]!.toLowerCase(), label });
      else if (secret.length >= 16) entries.push({ key: secret, label });
      else {
        ctx.addIssue({
          code: 'custom',
          message: `entry ${entries.length + 1}: a key needs at least 16 characters (or sha256:<64 hex digits>)`,
        });
        return z.NEVER;
      }
    }
    return entries;
  });
}

export const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  REDIS_URL: z
    .string()
    .regex(/^(redis|rediss):\/\//, 'must start with redis:// or rediss://')
    .optional(),
  REDIS_REQUIRED: booleanFlag.default(false),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits and _ . : - only (1-64 characters)')
    .default('ajs'),
  REDIS_CLUSTER: booleanFlag.default(false),
  /** Unset: 1 on a single Redis, PARTITIONS_PER_MASTER per master on a Cluster (partition-table.ts). */
  REDIS_PARTITIONS: z.coerce.number().int().min(1).max(MAX_PARTITIONS).optional(),
  REDIS_SENTINELS: z
    .string()
    .regex(/^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$/, 'comma-separated host:port list')
    .optional(),
  REDIS_SENTINEL_MASTER: z.string().min(1).default('mymaster'),
  COMPRESS_THRESHOLD_BYTES: positiveInt.default(16_384),
  REDIS_CONNECT_TIMEOUT_MS: positiveInt.default(3000),
  REDIS_COMMAND_TIMEOUT_MS: positiveInt.default(1000),
  JOB_TTL_S: positiveInt.default(86_400),
  IDEMPOTENCY_TTL_S: positiveInt.default(DEFAULT_IDEMPOTENCY_TTL_S),
  LEASE_S: positiveInt.default(DEFAULT_LEASE_S),
  POISON_AFTER: z.coerce.number().int().min(0).default(DEFAULT_POISON_AFTER),
  WORKER_CONCURRENCY: z.coerce.number().int().min(0).max(10_000).default(10),
  SHUTDOWN_GRACE_S: z.coerce.number().min(0).default(25),
  RETRY_BACKOFF_BASE_MS: positiveInt.default(DEFAULT_RETRY_BACKOFF.baseMs),
  RETRY_BACKOFF_MAX_MS: positiveInt.default(DEFAULT_RETRY_BACKOFF.maxMs),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  ADMIN_KEYS: keyPairs('key:role (role: viewer, operator or admin)', (label): label is AdminRole =>
    (ADMIN_ROLES as readonly string[]).includes(label),
  )
    .transform((entries) => entries.map(({ label, ...key }) => ({ ...key, role: label })))
    .optional(),
  RATE_LIMIT_PER_MIN: positiveInt.optional(),
  MAX_ACTIVE_JOBS_PER_TENANT: positiveInt.optional(),
  MAX_SCHEDULES_PER_TENANT: positiveInt.default(DEFAULT_MAX_SCHEDULES_PER_TENANT),
  LINK_SIGNING_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  API_KEYS: keyPairs('key:tenant (tenant: letters, digits, _ and ., at most 64)', (label): label is string =>
    tenantLabel.test(label),
  )
    .transform((entries) => entries.map(({ label, ...key }) => ({ ...key, tenant: label })))
    .optional(),
  WORKER_KEYS: keyPairs(
    'key:name or key:name:type1|type2 (name: letters, digits, _ . and -, at most 64; the types the key may claim)',
    (label): label is string => workerKeyLabel.test(label),
    { labelAfterKey: true },
  )
    .transform((entries) =>
      entries.map(({ label, ...key }) => {
        const [name, scope] = label.split(':') as [string, string | undefined];
        return { ...key, name, ...(scope === undefined ? {} : { types: scope.split('|') }) };
      }),
    )
    .optional(),
  REMOTE_MAX_WAIT_S: z.coerce.number().int().min(0).max(MAX_WAIT_S).default(DEFAULT_REMOTE_MAX_WAIT_S),
  REMOTE_MAX_CLAIM: z.coerce.number().int().min(1).max(1000).default(DEFAULT_REMOTE_MAX_CLAIM),
  JOB_TYPES: z
    .string()
    .default('echo,sleep')
    .transform((value) =>
      value
        .split(',')
        .map((type) => type.trim())
        .filter((type) => type.length > 0),
    ),
  BODY_LIMIT_BYTES: positiveInt.default(DEFAULT_BODY_LIMIT_BYTES),
  OUTBOUND_ALLOW: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    )
    .default([]),
  WEBHOOK_SECRET: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    )
    .superRefine((secrets, ctx) => {
      if (secrets.length === 0 || secrets.length > 2)
        ctx.addIssue({ code: 'custom', message: 'one secret, or two (comma-separated) during a rotation' });
      for (const secret of secrets) {
        const problem = webhookSecretProblem(secret);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }
    })
    .optional(),
  WEBHOOK_RETRY_BASE_S: z.coerce.number().positive().max(86_400).default(5),
  HANDLER_MODULES: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((path) => path.trim())
        .filter(Boolean),
    )
    .default([]),
  TYPE_LIMITS: typeLimitsSchema.default({}),
  TENANT_WEIGHTS: tenantWeightsSchema.default({}),
  CORS_ORIGINS: z
    .string()
    .transform((value, ctx) => {
      if (value.trim() === '*') return '*' as const;
      const origins = value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean);
      const bad = origins.find((origin) => !/^https?:\/\/[^/\s]+$/.test(origin));
      if (bad) {
        ctx.addIssue({
          code: 'custom',
          message: `"${bad}" is not an origin like https://app.example.com (scheme and host, no path)`,
        });
        return z.NEVER;
      }
      return origins;
    })
    .optional(),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; throws one ConfigError naming every bad variable. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') relevant[key] = value;
  }
  const parsed = configSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? 'environment');
        return `${name}: ${issue.message}${name in relevant && !/TOKEN|URL|KEYS|SECRET/.test(name) ? ` (got "${relevant[name]}")` : ''}`;
      }),
    );
  }
  return parsed.data;
}

/** A Redis URL safe to log: the password is replaced by *** (a username is not a secret and stays). */
export function maskRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable redis url>';
  }
}
