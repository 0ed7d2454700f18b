import { z } from 'zod';

/**
 * The environment, validated once at start-up. This schema is the only home of defaults;
 * README.md and .env.example list the same names.
 */
const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const positiveInt = z.coerce.number().int().positive();

export const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
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
  REDIS_CONNECT_TIMEOUT_MS: positiveInt.default(3000),
  REDIS_COMMAND_TIMEOUT_MS: positiveInt.default(1000),
  JOB_TTL_S: positiveInt.default(86_400),
  LEASE_S: positiveInt.default(30),
  WORKER_CONCURRENCY: z.coerce.number().int().min(0).max(10_000).default(10),
  SHUTDOWN_GRACE_S: z.coerce.number().min(0).default(25),
  RETRY_BACKOFF_BASE_MS: positiveInt.default(1000),
  RETRY_BACKOFF_MAX_MS: positiveInt.default(300_000),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  JOB_TYPES: z
    .string()
    .default('echo,sleep')
    .transform((value) =>
      value
        .split(',')
        .map((type) => type.trim())
        .filter((type) => type.length > 0),
    ),
  BODY_LIMIT_BYTES: positiveInt.default(1_048_576),
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
        return `${name}: ${issue.message}${name in relevant && !/TOKEN|URL/.test(name) ? ` (got "${relevant[name]}")` : ''}`;
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
