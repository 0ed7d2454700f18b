import type { JobStore } from '../store/job-store.js';
import type { JobRecord } from '../jobs/job.js';

/**
 * Waits until the job satisfies `until`, is gone, `timeoutMs` passes or `signal` fires, and answers the
 * job as it then is (undefined once gone). Woken by the store's change signal, from any instance; it
 * re-reads the job on every wake-up rather than trusting the signal.
 */
export async function awaitJob(
  store: JobStore,
  id: string,
  until: (job: JobRecord) => boolean,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<JobRecord | undefined> {
  let wake: () => void = () => undefined;
  const nextWake = () => new Promise<void>((resolve) => (wake = resolve));
  let woken = nextWake();
  const stop = await store.watch(id, () => wake());
  const onAbort = () => wake();
  signal?.addEventListener('abort', onAbort);
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const job = await store.get(id);
      const remaining = deadline - Date.now();
      if (!job || until(job) || remaining <= 0 || signal?.aborted) return job;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, remaining)));
      await Promise.race([woken, timeout]);
      clearTimeout(timer);
      woken = nextWake();
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    stop();
  }
}
