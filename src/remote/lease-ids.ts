import { randomBytes } from 'node:crypto';
import type { HeldLease } from '../store/job-store.js';

/*
 * The ids of the pull-worker protocol. A remote worker's id is random; the store lease id of one claim is
 * the worker's id followed by a random nonce (each claim its own, so a worker's late write for an earlier
 * attempt of a job can never pass for its current one), and the protocol's lease id is `<job id>.<store
 * lease id>`. So a lease id names its job, its fence and its worker, and the routes settle a lease without
 * looking anything up first. Every part is [A-Za-z0-9]: safe in a URL path as it is.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const WORKER_ID_LENGTH = 20;
const NONCE_LENGTH = 12;

/** A remote worker's id: 20 random base-62 characters (~119 bits). */
export const workerIdPattern = new RegExp(`^[A-Za-z0-9]{${WORKER_ID_LENGTH}}$`);
/** A lease id as the protocol spells it: `<job id>.<worker id><nonce>`. */
export const leaseIdPattern = new RegExp(`^[A-Za-z0-9]{1,64}\\.[A-Za-z0-9]{${WORKER_ID_LENGTH + NONCE_LENGTH}}$`);

/** `length` random base-62 characters (rejection sampling: uniform). */
function randomText(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export const newWorkerId = (): string => randomText(WORKER_ID_LENGTH);

/** The store lease id of one claim by `workerId`: shared by the jobs that claim leases, fenced per job. */
export const newClaimLeaseId = (workerId: string): string => `${workerId}${randomText(NONCE_LENGTH)}`;

export const leaseIdOf = (lease: HeldLease): string => `${lease.jobId}.${lease.leaseId}`;

/** The held lease and the worker a protocol lease id names; undefined when it is not one. */
export function parseLeaseId(leaseId: string): { lease: HeldLease; workerId: string } | undefined {
  if (!leaseIdPattern.test(leaseId)) return undefined;
  const dot = leaseId.indexOf('.');
  const storeLeaseId = leaseId.slice(dot + 1);
  return {
    lease: { jobId: leaseId.slice(0, dot), leaseId: storeLeaseId },
    workerId: storeLeaseId.slice(0, WORKER_ID_LENGTH),
  };
}
