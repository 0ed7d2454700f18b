import { backoffMs } from '../backoff.js';
import { failedAttemptOutcome } from '../jobs/attempt-outcome.js';
import { canonicalJson } from '../jobs/canonical-json.js';
import type { JobError, JobLogLine, JobRecord, JobStatus } from '../jobs/job.js';
import type { AttemptOutcome, FinishRequest, FinishResult, HeldLease } from '../store/job-store.js';
import { claimLimits, defaultTimeoutS, freesLimitedSlot, type RemoteContext } from './remote-context.js';
import { leaseFactsOf, type LeaseFacts } from './remote-timeouts.js';

/** What a remote worker says of an attempt it holds the lease of. */
export type Settlement =
  | { kind: 'complete'; result: unknown }
  /** `error.retryable` says whether another attempt may follow; `retryAfterMs` when the worker named the delay. */
  | { kind: 'fail'; error: JobError; retryAfterMs?: number }
  | { kind: 'release' };

export interface SettleRequest {
  /** The lease id as the protocol spells it. */
  leaseId: string;
  lease: HeldLease;
  workerId: string;
  /** Who the worker is, for the job's log line of a late outcome. */
  workerName: string;
  settlement: Settlement;
}

export type Settled = { status: 'ok'; jobStatus: JobStatus } | { status: 'lost' };

/**
 * Ends the attempts of `requests` in one store call (`finish` for one, `finishAndClaim` for many): each write
 * fenced by its lease. A request whose lease no longer holds its job changes nothing and is answered `lost`,
 * and a line on the job's log says a late outcome of that kind arrived from that worker, so operators see it;
 * except a repeated `complete` of a job this worker completed with the same result, which is answered as the
 * first one was.
 */
export async function settleLeases(context: RemoteContext, requests: SettleRequest[], now: number): Promise<Settled[]> {
  const declared = Object.keys(claimLimits(context));
  const facts = await failureFacts(context, requests);
  const finishes: { index: number; finish: FinishRequest }[] = [];
  requests.forEach((request, index) => {
    const known = facts.get(index);
    const outcome = outcomeOf(context, request, known, now);
    if (outcome === 'lost') return;
    const type = typeof known === 'object' ? known.type : undefined;
    finishes.push({
      index,
      finish: {
        lease: request.lease,
        outcome,
        concurrencyLimited: freesLimitedSlot(context, type === undefined ? declared : [type]),
      },
    });
  });
  const results: FinishResult[] = requests.map(() => 'lost');
  if (finishes.length === 1) {
    const [{ index, finish }] = finishes as [(typeof finishes)[0]];
    results[index] = await context.store.finish(finish.lease, finish.outcome, now, {
      concurrencyLimited: finish.concurrencyLimited,
    });
  } else if (finishes.length > 1) {
    const reply = await context.store.finishAndClaim(
      finishes.map((each) => each.finish),
      null,
      now,
    );
    finishes.forEach(({ index }, i) => (results[index] = reply.results[i]!));
  }
  for (const request of requests) context.timeouts.forget(request.leaseId);
  const settled: Settled[] = results.map((result) =>
    result === 'lost' ? { status: 'lost' } : { status: 'ok', jobStatus: result.status },
  );
  const lost = requests.map((request, index) => ({ request, index })).filter(({ index }) => results[index] === 'lost');
  if (lost.length > 0) await explainLost(context, lost, settled, now);
  return settled;
}

/**
 * Hands leases back (a worker deregistering, a claim whose client went away): each job back to the queue at
 * once, the attempt not counted, in one store call. `types`: the job's type when known, else the types it may be.
 */
export async function releaseLeases(
  context: RemoteContext,
  leases: { leaseId: string; lease: HeldLease; types: readonly string[] }[],
): Promise<void> {
  if (leases.length === 0) return;
  const finishes = leases.map(({ lease, types }) => ({
    lease,
    outcome: { kind: 'released' as const },
    concurrencyLimited: freesLimitedSlot(context, types),
  }));
  await context.store.finishAndClaim(finishes, null, Date.now());
  for (const { leaseId } of leases) context.timeouts.forget(leaseId);
}

/** A failure's outcome needs the attempt: known to this instance (it handed the lease out or heard of it), else read once. */
async function failureFacts(
  context: RemoteContext,
  requests: SettleRequest[],
): Promise<Map<number, LeaseFacts | 'lost'>> {
  const facts = new Map<number, LeaseFacts | 'lost'>();
  await Promise.all(
    requests.map(async (request, index) => {
      const known = context.timeouts.facts(request.leaseId);
      if (known) facts.set(index, known);
      else if (request.settlement.kind === 'fail') {
        const job = await context.store.get(request.lease.jobId);
        const held = job?.status === 'running' && job.lease?.id === request.lease.leaseId;
        facts.set(index, held ? leaseFactsOf(job, defaultTimeoutS(context, job.type)) : 'lost');
      }
    }),
  );
  return facts;
}

function outcomeOf(
  context: RemoteContext,
  request: SettleRequest,
  facts: LeaseFacts | 'lost' | undefined,
  now: number,
): AttemptOutcome | 'lost' {
  const { settlement } = request;
  if (settlement.kind === 'complete') return { kind: 'succeeded', result: settlement.result };
  if (settlement.kind === 'release') return { kind: 'released' };
  if (facts === 'lost' || facts === undefined) return 'lost';
  const { backoff } = context.settings;
  return failedAttemptOutcome(facts, settlement.error, now, {
    backoffMs: (attempt) => backoffMs(attempt, backoff),
    retryAfterMs: settlement.retryAfterMs,
  });
}

/** Reads the jobs of lost requests: a repeated complete is answered as the first; the rest leave a line on the job's log. */
async function explainLost(
  context: RemoteContext,
  lost: { request: SettleRequest; index: number }[],
  settled: Settled[],
  now: number,
): Promise<void> {
  const jobs = await Promise.all(lost.map(({ request }) => context.store.get(request.lease.jobId)));
  const lines: { jobId: string; lines: JobLogLine[] }[] = [];
  lost.forEach(({ request, index }, i) => {
    const job = jobs[i];
    if (!job) return; // deleted or expired: nobody to tell
    if (isRepeatedComplete(job, request)) {
      settled[index] = { status: 'ok', jobStatus: job.status };
      return;
    }
    lines.push({ jobId: job.id, lines: [lateOutcomeLine(job, request, now)] });
  });
  if (lines.length === 0) return;
  try {
    await context.store.appendLogs(lines);
  } catch (error) {
    context.log.warn({ err: error, jobs: lines.length }, "could not note late remote outcomes on the jobs' logs");
  }
}

/** The job succeeded by this worker's hand with this very result: the first complete went through and its answer was lost. */
const isRepeatedComplete = (job: JobRecord, request: SettleRequest): boolean =>
  request.settlement.kind === 'complete' &&
  job.status === 'succeeded' &&
  job.workerId === request.workerId &&
  canonicalJson(job.result) === canonicalJson(request.settlement.result);

function lateOutcomeLine(job: JobRecord, request: SettleRequest, now: number): JobLogLine {
  let attempt = job.attempt;
  for (const ended of job.attempts) if (ended.workerId === request.workerId) attempt = ended.attempt;
  return {
    at: now,
    attempt,
    level: 'warn',
    message: `late outcome "${request.settlement.kind}" from remote worker "${request.workerName}" (${request.workerId}) ignored: lease ${request.leaseId} no longer holds the job (it lapsed, the attempt timed out, the job was canceled, or another worker holds it)`,
  };
}
