import type { Logger } from 'pino';
import { z } from 'zod';

/*
 * The handler API, also the package's `async-job-service/handler` entry: a module outside this project
 * imports defineHandler, JobFailure, the types and `z` from here. Keep this file free of side effects and of
 * imports beyond zod (and types): importing it must not load the server or start anything.
 *
 * `z` is the zod this service validates with (and turns into the JSON Schema of GET /v1/job-types): a module
 * that builds its `input` with it cannot end up with a second, possibly other-major, copy of zod.
 */
export { z };

/** What a handler gets besides its input. */
export interface JobContext {
  jobId: string;
  /** 1 for the first run; handlers with side effects can use `jobId` + `attempt` to stay idempotent. */
  attempt: number;
  /** Fires on cancel, timeout, shutdown or a lost lease; `signal.reason` is a JobAbortReason. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Reports progress: `percent` 0..100 (or null when unknown), `step` a machine id, `message` human text.
   * Cheap to call often: writes are coalesced to a few per second, and the last one is always written.
   */
  progress(percent: number | null, details?: { step?: string; message?: string }): void;
}

export type JobAbortReason = 'canceled' | 'timeout' | 'shutdown' | 'lease-lost';

export interface HandlerDefinition<Schema extends z.ZodType = z.ZodType, Result = unknown> {
  /** Lowercase letters, digits, `_`, `.`, `-`; at most 64 characters. */
  type: string;
  /** Validates (and may default or transform) the job's input when it is submitted and again before it runs. */
  input: Schema;
  /** Seconds an attempt may run before it is aborted and fails with code `timeout`; a job's own `timeout_s` overrides it. */
  timeout_s?: number;
  /** Default attempts for jobs of this type (a job may override it). */
  max_attempts?: number;
  /** At most this many jobs of this type run at once across all instances (TYPE_LIMITS overrides it). */
  max_concurrency?: number;
  /** At most `max` starts per `per_s` seconds across all instances, e.g. for a rate-limited upstream API. */
  rate?: { max: number; per_s: number };
  /**
   * At most this many jobs of this type with one tenant's `concurrency_key` run at once across all instances (a
   * positive integer; TYPE_LIMITS overrides it). `1` runs each key's jobs one at a time, in order. Jobs held back by
   * their key's cap do not hold back jobs of other keys. Jobs without a key are not capped.
   */
  key_concurrency?: number;
  /**
   * Who takes turns at claims among ready jobs of equal priority: `tenant` (the default) round-robin over tenants;
   * `key` round-robin over tenants and, within a tenant, over its concurrency keys, so one key's backlog cannot
   * starve the tenant's other keys. Read when a job is submitted (TYPE_LIMITS overrides it).
   */
  fair_by?: 'tenant' | 'key';
  /**
   * Result reuse: a submit of this type whose input (as canonical JSON) matches a job of the same tenant that
   * succeeded within `ttl_s` is answered at once with a new, already succeeded job carrying that result; one
   * matching a job still queued or running finishes with it. Only for handlers whose result depends on the
   * input alone. A submit with `Cache-Control: no-cache` runs anyway (and its result is then the one reused).
   */
  cache?: { ttl_s: number };
  run(input: z.output<Schema>, ctx: JobContext): Promise<Result>;
}

export type Handler = HandlerDefinition;

export const jobTypePattern = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export function defineHandler<Schema extends z.ZodType, Result>(
  definition: HandlerDefinition<Schema, Result>,
): Handler {
  if (!jobTypePattern.test(definition.type)) {
    throw new Error(`handler type "${definition.type}" must match ${jobTypePattern}`);
  }
  if (definition.cache !== undefined && !(definition.cache.ttl_s > 0)) {
    throw new Error(`handler type "${definition.type}": cache.ttl_s must be a positive number of seconds`);
  }
  if (
    definition.key_concurrency !== undefined &&
    !(Number.isInteger(definition.key_concurrency) && definition.key_concurrency > 0)
  ) {
    throw new Error(`handler type "${definition.type}": key_concurrency must be a positive integer`);
  }
  if (definition.fair_by !== undefined && definition.fair_by !== 'tenant' && definition.fair_by !== 'key') {
    throw new Error(`handler type "${definition.type}": fair_by must be "tenant" or "key"`);
  }
  return definition;
}

/** What a handler module's factory receives (`export default ({ defineHandler, JobFailure, z }) => …`), for a module that imports nothing. */
export interface HandlerModuleApi {
  defineHandler: typeof defineHandler;
  JobFailure: typeof JobFailure;
  z: typeof z;
}

/**
 * Throw this from a handler to fail an attempt with your own code. With `retryable: false` the job
 * fails at once, whatever attempts are left; anything else a handler throws is retried.
 */
export class JobFailure extends Error {
  readonly code: string;
  readonly retryable: boolean;
  constructor(message: string, options: { code?: string; retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'JobFailure';
    this.code = options.code ?? 'handler-error';
    this.retryable = options.retryable ?? true;
  }
}
