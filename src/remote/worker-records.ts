import type { FastifyBaseLogger } from 'fastify';
import type { OpsStore, WorkerRecord, WorkerView } from '../ops/ops-store.js';
import { parseLeaseId } from './lease-ids.js';

/**
 * A remote worker's entry in the worker registry (the OpsStore's, beside the in-process pools): written once
 * per call of the worker, with `beat_at` the time of that call and the leases it holds.
 *
 * Each call reads the record, then writes it whole (one ops write per call). Two calls of one worker at the
 * same time on two instances may therefore lose one's change of `lease_ids` (a lease shown held after it was
 * settled, or missing after a claim) until the worker's next heartbeat, which lists the leases it holds and
 * so writes the truth. Fencing never depends on the record: the store fences every write by the lease.
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
 * The record after a call at `now` that left the worker holding `leaseIds` (`lost` leases it lost on the
 * way). An operator's drain stays apart from the record (see OpsStore.setDraining).
 */
export function afterCall(worker: WorkerView, now: number, leaseIds: readonly string[], lost = 0): WorkerRecord {
  const { state: _state, ...record } = worker;
  const unique = [...new Set(leaseIds)];
  return {
    ...record,
    draining: false,
    beat_at: now,
    lease_ids: unique,
    job_ids: unique.map((id) => parseLeaseId(id)?.lease.jobId ?? id),
    slots_busy: unique.length,
    leases_lost: record.leases_lost + lost,
  };
}

/**
 * The remote worker `id` when the worker key named `keyName` registered it; `foreign` when another key did
 * (or it is an in-process pool); undefined when no worker has this id.
 */
export async function remoteWorker(ops: Pick<OpsStore, 'worker'>, id: string, keyName: string, now: number): Promise<WorkerView | 'foreign' | undefined> {
  const worker = await ops.worker(id, now);
  if (!worker) return undefined;
  return worker.kind === 'remote' && worker.key_name === keyName ? worker : 'foreign';
}

/**
 * Writes the record after a call whose store change is done: a failed write is logged, not answered, as the
 * worker's next call writes the record again (its next heartbeat with the truth).
 */
export async function recordCall(ops: Pick<OpsStore, 'beat'>, record: WorkerRecord, log: FastifyBaseLogger): Promise<void> {
  try {
    await ops.beat(record);
  } catch (error) {
    log.warn({ err: error, workerId: record.id }, 'could not update the remote worker\'s registry record');
  }
}
