import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HeldLease, ProgressUpdate } from '../../src/store/job-store.js';
import { ProgressWriter } from '../../src/worker/progress-writer.js';

/* One job's progress coalesced into store writes: at most one per interval, the latest values, the last one always written. */

const lease: HeldLease = { jobId: 'job-1', leaseId: 'lease-1' };

function setUp(held = true, intervalMs = 250) {
  const writes: ProgressUpdate[] = [];
  const store = {
    reportProgress: vi.fn(async (_lease: HeldLease, update: ProgressUpdate) => {
      writes.push(update);
      return held;
    }),
  };
  const controller = new AbortController();
  const writer = new ProgressWriter(store, lease, controller, intervalMs);
  return { writes, store, controller, writer };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ProgressWriter', () => {
  it('writes a burst of reports as one update with the latest values, at most once per interval', async () => {
    const { writes, writer } = setUp();
    writer.report(10, { step: 'fetch' });
    writer.report(20, { message: 'half way' });
    writer.report(null);
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([{ percent: 20, step: 'fetch', message: 'half way' }]);

    writer.report(30);
    await vi.advanceTimersByTimeAsync(200);
    expect(writes).toHaveLength(1); // within the interval of the last write
    writer.report(40);
    await vi.advanceTimersByTimeAsync(50);
    expect(writes).toEqual([
      { percent: 20, step: 'fetch', message: 'half way' },
      { percent: 40, step: null, message: null },
    ]);
  });

  it('keeps the previous percent when the new one is not a number', async () => {
    const { writes, writer } = setUp();
    writer.report(50);
    writer.report(Number.NaN, { step: 'next' });
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([{ percent: 50, step: 'next', message: null }]);
  });

  it('writes what is pending when the attempt ends with an outcome, and waits for every write', async () => {
    const { writes, writer } = setUp();
    writer.report(10);
    await vi.advanceTimersByTimeAsync(0);
    writer.report(90, { step: 'last' });
    writer.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(writes).toHaveLength(1); // stopped: no timed write
    await writer.finish(true);
    expect(writes).toEqual([
      { percent: 10, step: null, message: null },
      { percent: 90, step: 'last', message: null },
    ]);
  });

  it('writes nothing more without an outcome, or once the attempt was aborted', async () => {
    const withoutOutcome = setUp();
    withoutOutcome.writer.report(10);
    withoutOutcome.writer.stop();
    await withoutOutcome.writer.finish(false);
    expect(withoutOutcome.writes).toEqual([]);

    const aborted = setUp();
    aborted.writer.report(10);
    aborted.controller.abort('canceled');
    aborted.writer.report(20);
    await vi.advanceTimersByTimeAsync(1000);
    await aborted.writer.finish(true);
    expect(aborted.writes).toEqual([]);
  });

  it('aborts the attempt when the store says the lease is gone', async () => {
    const { controller, writer } = setUp(false);
    writer.report(10);
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.signal.aborted).toBe(true);
    expect(controller.signal.reason).toBe('lease-lost');
  });

  it('shrugs off a failed write: progress is best effort', async () => {
    const { store, controller, writer } = setUp();
    store.reportProgress.mockRejectedValueOnce(new Error('store down'));
    writer.report(10);
    await vi.advanceTimersByTimeAsync(0);
    writer.report(20);
    await vi.advanceTimersByTimeAsync(250);
    expect(store.reportProgress).toHaveBeenCalledTimes(2);
    expect(controller.signal.aborted).toBe(false);
    await expect(writer.finish(true)).resolves.toBeUndefined();
  });
});
