import type { ClaimLimit } from '../store/job-store.js';
import type { Handler } from './handler.js';
import echo from './echo.js';
import sleep from './sleep.js';

/** Every built-in job type. To add one: write src/handlers/<type>.ts and list it here. */
export const builtInHandlers: Handler[] = [echo, sleep];

export class HandlerRegistry {
  private readonly byType = new Map<string, Handler>();

  constructor(handlers: Handler[]) {
    for (const handler of handlers) {
      if (this.byType.has(handler.type)) throw new Error(`two handlers define the job type "${handler.type}"`);
      this.byType.set(handler.type, handler);
    }
  }

  /**
   * The built-in handlers named in JOB_TYPES, plus every handler loaded from HANDLER_MODULES (enabled by
   * being loaded; JOB_TYPES may name them too). An unknown name, or two handlers of one type, stops the start-up.
   */
  static enabled(names: string[], available: Handler[] = builtInHandlers, loaded: Handler[] = []): HandlerRegistry {
    const known = new Map([...available, ...loaded].map((handler) => [handler.type, handler]));
    const unknown = names.filter((name) => !known.has(name));
    if (unknown.length > 0) {
      throw new Error(
        `JOB_TYPES names unknown job types: ${unknown.join(', ')} (known: ${[...known.keys()].join(', ')})`,
      );
    }
    const loadedTypes = new Set(loaded.map((handler) => handler.type));
    const clash = available.find((handler) => loadedTypes.has(handler.type));
    if (clash) throw new Error(`a handler module defines the built-in job type "${clash.type}"`);
    return new HandlerRegistry([
      ...names.filter((name) => !loadedTypes.has(name)).map((name) => known.get(name)!),
      ...loaded,
    ]);
  }

  get(type: string): Handler | undefined {
    return this.byType.get(type);
  }

  get types(): string[] {
    return [...this.byType.keys()];
  }

  get all(): Handler[] {
    return [...this.byType.values()];
  }

  /** Each type's scheduling settings (a type without any has no entry): the handler's own, each overridden by TYPE_LIMITS. */
  limits(overrides: Record<string, ClaimLimit> = {}): Record<string, ClaimLimit> {
    const limits: Record<string, ClaimLimit> = {};
    for (const handler of this.byType.values()) {
      const limit = claimLimitOf(handler, overrides[handler.type]);
      if (limit) limits[handler.type] = limit;
    }
    return limits;
  }
}

/** A type's scheduling settings as its definition spells them: a handler's (HandlerDefinition) or an operator's declaration (null: not set). */
export interface TypeSchedulingSettings {
  max_concurrency?: number | null;
  rate?: { max: number; per_s: number } | null;
  key_concurrency?: number | null;
  fair_by?: 'tenant' | 'key' | null;
}

/** The ClaimLimit of a type's own settings, each TYPE_LIMITS setting (`override`) winning over its own; undefined when none is set. */
export function claimLimitOf(own: TypeSchedulingSettings, override: ClaimLimit = {}): ClaimLimit | undefined {
  const maxConcurrency = override.maxConcurrency ?? own.max_concurrency ?? undefined;
  const rate =
    override.rate ?? (own.rate ? { max: own.rate.max, perMs: Math.round(own.rate.per_s * 1000) } : undefined);
  const keyConcurrency = override.keyConcurrency ?? own.key_concurrency ?? undefined;
  const fairBy = override.fairBy ?? own.fair_by ?? undefined;
  const limit: ClaimLimit = {
    ...(maxConcurrency !== undefined ? { maxConcurrency } : {}),
    ...(rate ? { rate } : {}),
    ...(keyConcurrency !== undefined ? { keyConcurrency } : {}),
    ...(fairBy !== undefined ? { fairBy } : {}),
  };
  return Object.keys(limit).length > 0 ? limit : undefined;
}
