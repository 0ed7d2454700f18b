import type { FastifyRequest } from 'fastify';
import { ANONYMOUS_TENANT } from '../jobs/job.js';
import type { AuditEntry, OpsStore } from './ops-store.js';

export interface AuditAction {
  /** What was done: `type.pause`, `worker.drain`, `bulk.retry`, `job.cancel`, … */
  action: string;
  /** What it was done to: a job id, a type, a worker id, `filter`, `ids` … */
  target: string;
  /** How many jobs (or things) it changed. */
  count: number;
  detail?: Record<string, unknown>;
}

/** The key id of the admin making a request (set by the admin guard), as the audit log and pauses name who. */
export const actorKeyId = (request: { admin: { keyId: string } | null }): string => request.admin?.keyId ?? 'unknown';

/** A client's write through /v1 (schedules) is audited as its API key's tenant, or `open` when the API runs open. */
export const clientActor = (tenant: string): AuditEntry['actor'] => ({
  key_id: tenant === ANONYMOUS_TENANT ? 'open' : tenant,
  role: 'api',
});

/**
 * Records a write in the audit log, by default as the admin the admin guard identified (`request.admin`), and
 * logs it. Call it after the write took effect. A failure to record (the store is down) is logged, never
 * thrown: the write itself already happened and must not answer as if it had not.
 */
export async function recordAudit(
  ops: OpsStore,
  request: FastifyRequest,
  what: AuditAction,
  actor: AuditEntry['actor'] = { key_id: actorKeyId(request), role: request.admin?.role ?? 'admin' },
): Promise<void> {
  const entry = { at: Date.now(), actor, ...what };
  request.log.info({ audit: entry }, actor.role === 'api' ? 'client write' : 'admin write');
  try {
    await ops.audit(entry);
  } catch (error) {
    request.log.error({ err: error, audit: entry }, 'could not record an admin write in the audit log');
  }
}
