import { claimLimitOf, type HandlerRegistry } from '../handlers/registry.js';
import type { ClaimLimit } from '../store/job-store.js';
import type { DeclaredTypes } from './declared-types.js';

/**
 * A job type's scheduling settings as this instance applies them (max_concurrency, rate, key_concurrency,
 * fair_by): `{}` when it has none. What submits read (fair_by), and what a Job's `waiting_for` compares with
 * (key_concurrency).
 */
export type SchedulingOf = (type: string) => ClaimLimit;

/**
 * The settings of the definition a submit of the type would use (its handler, else its declaration: see
 * definitionFor), each overridden by TYPE_LIMITS; a type with neither (no longer enabled here) has TYPE_LIMITS' alone.
 * Read on every call: a declaration replaced meanwhile counts at once.
 */
export function schedulingOf(
  handlers: HandlerRegistry,
  declaredTypes: DeclaredTypes | undefined,
  typeLimits: Record<string, ClaimLimit>,
): SchedulingOf {
  return (type) => claimLimitOf(handlers.get(type) ?? declaredTypes?.get(type) ?? {}, typeLimits[type]) ?? {};
}
