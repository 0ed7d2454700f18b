import type { FastifyBaseLogger } from 'fastify';
import type { BackoffOptions } from '../backoff.js';
import type { DeclaredTypes } from '../job-types/declared-types.js';
import type { OpsStore } from '../ops/ops-store.js';
import type { ClaimLimit, JobStore } from '../store/job-store.js';
import { RemoteTimeouts } from './remote-timeouts.js';
import { WorkSignals } from './work-signals.js';

/** The pull-worker protocol's settings (from the config; see src/config.ts). */
export interface RemoteSettings {
  /** A remote job's lease when its declared type names none (LEASE_S). */
  leaseS: number;
  /** Longest `Prefer: wait` of a claim (REMOTE_MAX_WAIT_S). */
  maxWaitS: number;
  /** Most jobs one claim leases (REMOTE_MAX_CLAIM). */
  maxClaim: number;
  /** The retry backoff of failed attempts (RETRY_BACKOFF_BASE_MS, RETRY_BACKOFF_MAX_MS), as in-process. */
  backoff: BackoffOptions;
  /** TYPE_LIMITS: each setting overrides a declared type's own. */
  typeLimits: Record<string, ClaimLimit>;
  /** TENANT_WEIGHTS: claims per fair round of a tenant (default 1), passed with every claim. */
  tenantWeights: Record<string, number>;
}

/**
 * What the worker routes share, one per app: the stores, the declared types, the settings, the one
 * subscription that wakes long-polling claims and the timers of remote timeouts.
 */
export interface RemoteContext {
  store: JobStore;
  ops: OpsStore;
  declaredTypes: DeclaredTypes | undefined;
  settings: RemoteSettings;
  signals: WorkSignals;
  timeouts: RemoteTimeouts;
  /** True while this instance shuts down: heartbeats answer `stop`, claims answer at once. */
  isShuttingDown: () => boolean;
  log: FastifyBaseLogger;
}

export async function openRemoteContext(deps: Omit<RemoteContext, 'signals' | 'timeouts'>): Promise<RemoteContext> {
  const signals = await WorkSignals.open(deps.store, deps.ops);
  const timeouts = new RemoteTimeouts({
    store: deps.store,
    backoff: deps.settings.backoff,
    concurrencyLimited: (type) => freesLimitedSlot(deps, [type]),
    log: deps.log,
  });
  return { ...deps, signals, timeouts };
}

/** Ends the subscription (waking every waiting claim) and clears the timers. Idempotent. */
export function closeRemoteContext(context: RemoteContext): void {
  context.signals.close();
  context.timeouts.close();
}

/** The fleet-wide limits of the declared types (their own, each setting overridden by TYPE_LIMITS): what claims pass the store. */
export const claimLimits = (context: Pick<RemoteContext, 'declaredTypes' | 'settings'>): Record<string, ClaimLimit> =>
  context.declaredTypes?.limits(context.settings.typeLimits) ?? {};

/**
 * Whether ending an attempt of one of `types` frees a slot of a fleet-wide concurrency limit, of the type or of
 * one of its concurrency keys (the store then signals `work` when jobs of the type wait): the flag every finish
 * of a remote attempt passes the store. Given several types (the job's type is not known here), true when any
 * of them is limited.
 */
export const freesLimitedSlot = (
  context: Pick<RemoteContext, 'declaredTypes' | 'settings'>,
  types: readonly string[],
): boolean => {
  const limits = claimLimits(context);
  return types.some((type) => limits[type]?.maxConcurrency !== undefined || limits[type]?.keyConcurrency !== undefined);
};

/** A remote worker's lease: the shortest of its types' lease_s (a type without one: LEASE_S). */
export function leaseSOf(context: Pick<RemoteContext, 'declaredTypes' | 'settings'>, types: readonly string[]): number {
  const leases = types.map((type) => context.declaredTypes?.get(type)?.lease_s ?? context.settings.leaseS);
  return leases.length === 0 ? context.settings.leaseS : Math.min(...leases);
}

/** A declared type's default timeout_s (a job's own wins), null when it has none. */
export const defaultTimeoutS = (context: Pick<RemoteContext, 'declaredTypes'>, type: string): number | null =>
  context.declaredTypes?.get(type)?.timeout_s ?? null;
