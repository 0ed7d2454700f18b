import type { FastifyBaseLogger } from 'fastify';
import type { HeldRemoteLease, OpsStore, WorkerCallChange, WorkerRecord, WorkerView } from '../ops/ops-store.js';
import { parseLeaseId } from './lease-ids.js';

/**
 * A remote worker's entry in the worker registry (the OpsStore's, beside the in-process pools): updated once
 * per call of the worker, with `beat_at` the time of that call and the leases it holds. Each update is one
 * atomic change of the record (OpsStore.recordWorkerCall: a claim adds leases, a settle removes them, a
 * heartbeat states them all), so calls of one worker at once, on one instance or several, never undo each
 * other's changes, and a call ending after the worker deregistered does not bring it back. One window
 * remains: a heartbeat sent before the worker read a claim's answer states its leases without those just
 * claimed; its next heartbeat lists them again. Fencing never depends on the record: the store fences every
 * write by the lease.
 */

export interface NewRemoteWorker {
  id: string;
  name: string;
  labels: Record<string, string>;
  keyName: string;
  types: string[];
  slots: number;
  leaseS: number;
  heartbeatS: number;
  /** Where it calls from (the request's address). */
  host: string;
  version: string;
  now: number;
}

export function newRemoteRecord(worker: NewRemoteWorker): WorkerRecord {
  return {
    id: worker.id,
    kind: 'remote',
    name: worker.name,
    labels: worker.labels,
    key_name: worker.keyName,
    host: worker.host,
    pid: 0,
    version: worker.version,
    role: 'remote',
    started_at: worker.now,
    beat_at: worker.now,
    types: worker.types,
    slots_total: worker.slots,
    slots_busy: 0,
    job_ids: [],
    lease_ids: [],
    leases_lost: 0,
    draining: false,
    lease_s: worker.leaseS,
    heartbeat_s: worker.heartbeatS,
  };
}

/** The leases a worker holds as its record says. */
export const heldLeaseIds = (worker: WorkerRecord): string[] => worker.lease_ids ?? [];

/** Free slots as its record says. */
export const freeSlots = (worker: WorkerRecord): number => worker.slots_total - heldLeaseIds(worker).length;

/**
 * The remote worker `id` when the worker key named `keyName` registered it; `foreign` when another key did
 * (or it is an in-process pool); undefined when no worker has this id.
 */
export async function remoteWorker(
  ops: Pick<OpsStore, 'worker'>,
  id: string,
  keyName: string,
  now: number,
): Promise<WorkerView | 'foreign' | undefined> {
  const worker = await ops.worker(id, now);
  if (!worker) return undefined;
  return worker.kind === 'remote' && worker.key_name === keyName ? worker : 'foreign';
}

/**
 * Records a call whose store change is done (see OpsStore.recordWorkerCall): a failed write is logged, not
 * answered, as the worker's next call updates the record again (its next heartbeat with every lease it holds).
 */
export async function recordCall(
  ops: Pick<OpsStore, 'recordWorkerCall'>,
  workerId: string,
  change: WorkerCallChange,
  log: FastifyBaseLogger,
): Promise<void> {
  try {
    await ops.recordWorkerCall(workerId, change, Date.now());
  } catch (error) {
    log.warn({ err: error, workerId }, "could not update the remote worker's registry record");
  }
}

/** The held lease a lease id names (its job id is its first part). */
export const heldLease = (leaseId: string): HeldRemoteLease => ({
  leaseId,
  jobId: parseLeaseId(leaseId)?.lease.jobId ?? leaseId,
});
