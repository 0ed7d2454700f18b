import { describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import type { NewJob } from '../../src/jobs/job.js';
import { waitingFor } from '../../src/routes/job-view.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';

const job = (key: string): NewJob => {
  const now = Date.now();
  return {
    id: newJobId(now),
    type: 'docs',
    tenant: 'acme',
    input: {},
    metadata: {},
    priority: 0,
    maxAttempts: 1,
    timeoutS: null,
    createdAt: now,
    runAt: now,
    concurrencyKey: key,
  };
};

describe('waiting_for', () => {
  const capOne = () => ({ keyConcurrency: 1 });

  it('names the key cap for a queued job whose key is at its cap, and not for the job that holds the slot', async () => {
    const store = new MemoryJobStore({ jobTtlMs: 60_000 });
    const first = await store.create(job('doc-1'));
    const second = await store.create(job('doc-1'));
    const [claimed] = await store.claim({
      types: ['docs'],
      limits: { docs: capOne() },
      max: 5,
      workerId: 'w',
      leaseId: 'l',
      leaseMs: 30_000,
      now: Date.now(),
    });
    expect(claimed!.id).toBe(first.id);
    // `first` as its submit answered it (queued), read before its own claim: it is the running one, not waiting.
    expect(await waitingFor(store, capOne, [first, second])).toEqual([null, 'concurrency_key']);
    await store.close();
  });
});
