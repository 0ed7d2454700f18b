import type { JobRecord } from '../jobs/job.js';
import type { WorkerView } from '../ops/ops-store.js';
import { leaseIdOf, newClaimLeaseId } from './lease-ids.js';
import { claimLimits, type RemoteContext } from './remote-context.js';
import { releaseLeases } from './settle-leases.js';
import { freeSlots } from './worker-records.js';

/** Least pause between two claims of one long-poll, should the store name a wake-up time that has passed. */
const MIN_REST_MS = 10;

/**
 * A remote worker's claim (POST /v1/workers/{worker_id}/leases): the store's claim, exactly as in-process
 * pools make it (its types minus paused ones, the declared types' fleet-wide limits, priorities and delays),
 * for at most `max` jobs and never more than the worker's free slots. When nothing is ready it waits, up to
 * `waitMs`, for a `work` signal of one of its types, the store's next wake-up time (a delayed job due, a
 * lease lapsing, a rate window ending), a resume or drain, and claims again; it stops at once when the client
 * goes away (`abort`) or the app closes. Answers the worker as last read and the jobs leased to it.
 */
export async function claimLeases(
  context: RemoteContext,
  worker: WorkerView,
  max: number,
  waitMs: number,
  abort: AbortSignal,
): Promise<{ worker: WorkerView; jobs: JobRecord[] }> {
  const deadline = Date.now() + waitMs;
  let current = worker;
  for (let round = 0; ; round++) {
    const [reread, paused] = await Promise.all([
      round === 0 ? current : context.ops.worker(current.id, Date.now()),
      context.ops.pausedTypes(),
    ]);
    if (!reread) return { worker: current, jobs: [] }; // deregistered meanwhile
    current = reread;
    const claimable = Math.min(max, freeSlots(current));
    if (current.draining || claimable <= 0 || context.isShuttingDown() || context.signals.closed || abort.aborted)
      return { worker: current, jobs: [] };
    const types = current.types.filter(
      (type) => !Object.hasOwn(paused, type) && context.declaredTypes?.get(type) !== undefined,
    );
    const limits = claimLimits(context);
    // Listening before the claim: a signal sent while the claim is on its way is not missed.
    const waiter = context.signals.listen(current.types, current.id);
    try {
      if (types.length > 0) {
        const leaseMs = (current.lease_s ?? context.settings.leaseS) * 1000;
        const now = Date.now();
        const jobs = await context.store.claim({
          types,
          limits,
          tenantWeights: context.settings.tenantWeights,
          max: claimable,
          workerId: current.id,
          leaseId: newClaimLeaseId(current.id),
          leaseMs,
          now,
        });
        if (jobs.length > 0 && !abort.aborted) return { worker: current, jobs };
        if (jobs.length > 0) {
          // Nobody is there to receive them: back to the queue at once, the attempt not counted.
          await releaseLeases(
            context,
            jobs.map((job) => {
              const lease = { jobId: job.id, leaseId: job.lease!.id };
              return { leaseId: leaseIdOf(lease), lease, types: [job.type] };
            }),
          );
          return { worker: current, jobs: [] };
        }
      }
      if (Date.now() >= deadline) return { worker: current, jobs: [] };
      const next = types.length > 0 ? await context.store.nextWakeAt(types, limits) : null;
      await waiter.until(Math.max(Math.min(next ?? Infinity, deadline), Date.now() + MIN_REST_MS), abort);
    } finally {
      waiter.dispose();
    }
  }
}
