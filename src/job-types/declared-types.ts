import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import type { Logger } from 'pino';
import { claimLimitOf } from '../handlers/registry.js';
import type { DeclaredTypeDef, OpsStore } from '../ops/ops-store.js';
import type { ClaimLimit } from '../store/job-store.js';

/**
 * The job types operators declared for remote workers (PUT /admin/job-types/{type}), as every instance
 * sees them: a cache of the OpsStore's declarations, re-read when any instance publishes a `types` control
 * message (and every REFRESH_EVERY_MS, for messages missed during a reconnect), with each input schema
 * compiled once.
 *
 * Schemas are JSON Schema 2020-12 (what GET /v1/job-types shows for the built-in types), compiled by Ajv
 * with `format` support (ajv-formats) and strict schema checks: an unknown keyword (a typo such as
 * `minLenght`) is refused when declared rather than silently ignored. A `$ref` is resolved only inside the
 * schema: Ajv fetches nothing (no `loadSchema`), so a remote `$ref` fails to compile.
 */
export type DeclaredType = DeclaredTypeDef;

export interface InputError {
  /** JSON Pointer into the submit body: starts with `/input`. */
  pointer: string;
  detail: string;
}

/** What it logs with: a pino logger (the service's, or Fastify's). */
type Log = Pick<Logger, 'warn' | 'error'>;

/** The largest input schema a declaration may carry, as JSON. */
export const MAX_INPUT_SCHEMA_BYTES = 64 * 1024;
/** At most this many errors are reported for one input (a huge invalid array would list every item). */
const MAX_INPUT_ERRORS = 50;
/** How often the declarations are re-read besides the control messages. */
const REFRESH_EVERY_MS = 60_000;

/** Why an input schema cannot be declared: too large, or Ajv's compile error. */
export class InputSchemaError extends Error {
  override readonly name = 'InputSchemaError';
}

/** One Ajv for every declared schema (an instance costs tens of milliseconds to make and warm up). */
let sharedAjv: Ajv2020 | undefined;
function ajv(): Ajv2020 {
  if (!sharedAjv) {
    sharedAjv = new Ajv2020({
      allErrors: true,
      strict: true,
      strictTypes: false,
      strictTuples: false,
      strictRequired: false,
      allowUnionTypes: true,
      logger: false,
    });
    ajvFormats.default(sharedAjv);
  }
  return sharedAjv;
}

/** Compiles a declared input schema; throws InputSchemaError (too large, or Ajv's message) when it cannot. */
export function compileInputSchema(schema: Record<string, unknown>): ValidateFunction {
  if (Buffer.byteLength(JSON.stringify(schema)) > MAX_INPUT_SCHEMA_BYTES) {
    throw new InputSchemaError(`the schema is larger than ${MAX_INPUT_SCHEMA_BYTES} bytes as JSON`);
  }
  try {
    return ajv().compile(schema);
  } catch (error) {
    throw new InputSchemaError((error as Error).message);
  } finally {
    // The compiled function stands alone: forgetting the schema keeps two types' `$id`s from clashing (and the instance from growing).
    ajv().removeSchema(schema);
  }
}

/** A lookup that misses re-reads the declarations at most this often (DeclaredTypes.knowsAll). */
const MISS_REFRESH_GAP_MS = 1000;

export class DeclaredTypes {
  private byType = new Map<string, { def: DeclaredType; validate: ValidateFunction }>();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Reads started and the latest one applied: a slow read never overwrites what a later one found. */
  private readsStarted = 0;
  private readApplied = 0;

  private constructor(
    private readonly ops: OpsStore,
    private readonly log: Log | undefined,
  ) {}

  /**
   * Reads every declaration and follows changes from then on. A store that cannot be read now is logged,
   * not thrown: the declarations arrive with the next message or periodic re-read.
   */
  static async load(ops: OpsStore, log?: Log): Promise<DeclaredTypes> {
    const types = new DeclaredTypes(ops, log);
    try {
      types.unsubscribe = await ops.subscribeControl((message) => {
        if (message.kind === 'types') void types.refreshQuietly();
      });
    } catch (error) {
      log?.warn({ err: error }, 'could not follow declared job type changes; re-reading them every minute');
    }
    await types.refreshQuietly();
    types.timer = setInterval(() => void types.refreshQuietly(), REFRESH_EVERY_MS);
    types.timer.unref();
    return types;
  }

  get(type: string): DeclaredType | undefined {
    return this.byType.get(type)?.def;
  }

  /**
   * Whether every one of `types` is declared, reading the declarations again first when one is not known here:
   * a type declared through another instance a moment ago may not have reached this one (its control message is on
   * its way). Misses re-read at most once per MISS_REFRESH_GAP_MS, so unknown names cannot make a read each.
   */
  async knowsAll(types: readonly string[]): Promise<boolean> {
    if (types.every((type) => this.byType.has(type))) return true;
    const now = Date.now();
    if (now - this.lastMissRefreshAt >= MISS_REFRESH_GAP_MS) {
      this.lastMissRefreshAt = now;
      await this.refreshQuietly();
    }
    return types.every((type) => this.byType.has(type));
  }

  /** Ordered by type. */
  get all(): DeclaredType[] {
    return [...this.byType.values()].map((entry) => entry.def);
  }

  /** The input's errors against the type's schema ([] when it fits); an undeclared type is an error at `/type`. */
  validate(type: string, input: unknown): InputError[] {
    const entry = this.byType.get(type);
    if (!entry) return [{ pointer: '/type', detail: `"${type}" is not a declared job type` }];
    if (entry.validate(input)) return [];
    return (entry.validate.errors ?? []).slice(0, MAX_INPUT_ERRORS).map(inputError);
  }

  /** Each declared type's scheduling settings (a type without any has no entry); `overrides` (TYPE_LIMITS) win per setting. */
  limits(overrides: Record<string, ClaimLimit> = {}): Record<string, ClaimLimit> {
    const limits: Record<string, ClaimLimit> = {};
    for (const { def } of this.byType.values()) {
      const limit = claimLimitOf(def, overrides[def.type]);
      if (limit) limits[def.type] = limit;
    }
    return limits;
  }

  /** Re-reads the declarations now (after a change on this instance, before answering it). Throws when the store does. */
  async refresh(): Promise<void> {
    const read = ++this.readsStarted;
    const defs = await this.ops.declaredTypes();
    if (read < this.readApplied) return;
    this.readApplied = read;
    const next = new Map<string, { def: DeclaredType; validate: ValidateFunction }>();
    for (const def of defs) {
      const known = this.byType.get(def.type);
      // Compiled once: an unchanged declaration keeps its validator.
      if (known && known.def.updated_at === def.updated_at && sameSchema(known.def, def)) {
        next.set(def.type, { def, validate: known.validate });
        continue;
      }
      try {
        next.set(def.type, { def, validate: compileInputSchema(def.input_schema) });
      } catch (error) {
        // Declarations were compiled before they were stored; one that no longer compiles (another Ajv) is left out, loudly.
        this.log?.error(
          { err: error, jobType: def.type },
          "a declared job type's input schema does not compile; the type is not served",
        );
      }
    }
    this.byType = next;
  }

  /** Stops following changes. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
  }

  private lastMissRefreshAt = 0;

  private async refreshQuietly(): Promise<void> {
    if (this.closed) return;
    try {
      await this.refresh();
    } catch (error) {
      this.log?.warn({ err: error }, 'could not read the declared job types; keeping the ones known');
    }
  }
}

const sameSchema = (a: DeclaredType, b: DeclaredType): boolean =>
  JSON.stringify(a.input_schema) === JSON.stringify(b.input_schema);

const escapePointer = (key: string): string => key.replaceAll('~', '~0').replaceAll('/', '~1');

/** An Ajv error as a submit's field error: the pointer names the missing or unknown field itself, as zod's do. */
function inputError(error: ErrorObject): InputError {
  const at = `/input${error.instancePath}`;
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  if (params.missingProperty !== undefined)
    return { pointer: `${at}/${escapePointer(params.missingProperty)}`, detail: 'required' };
  if (error.keyword === 'additionalProperties' && params.additionalProperty !== undefined) {
    return { pointer: `${at}/${escapePointer(params.additionalProperty)}`, detail: 'unknown field' };
  }
  return { pointer: at, detail: error.message ?? error.keyword };
}
