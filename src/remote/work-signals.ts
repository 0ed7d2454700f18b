import type { OpsStore } from '../ops/ops-store.js';
import type { JobStore } from '../store/job-store.js';

/**
 * Wakes remote workers' long-polling claims. One store subscription (and one control subscription) per app,
 * fanned out to the claims waiting now, rather than a subscription per request: a fleet of workers holding
 * claims open costs the store nothing. Woken by the signal in-process pools wake on (`work` for a type, from
 * any instance), by a type's resume and by a drain of the worker (so its claim answers at once).
 */
export class WorkSignals {
  private readonly byKey = new Map<string, Set<WorkWaiter>>();
  private readonly unsubscribes: (() => void)[] = [];
  private closed_ = false;

  private constructor() {}

  /** Subscribes; resolves once the subscriptions are in place. */
  static async open(
    store: Pick<JobStore, 'subscribe'>,
    ops?: Pick<OpsStore, 'subscribeControl'>,
  ): Promise<WorkSignals> {
    const signals = new WorkSignals();
    signals.unsubscribes.push(
      await store.subscribe((event) => {
        if (event.kind === 'work') signals.notify(`type:${event.type}`);
      }),
    );
    if (ops) {
      try {
        signals.unsubscribes.push(
          await ops.subscribeControl((message) => {
            if (message.kind === 'resume') signals.notify(`type:${message.type}`);
            else if (message.kind === 'drain') signals.notify(`worker:${message.workerId}`);
          }),
        );
      } catch {
        // Without it a resume or drain reaches a waiting claim at its next wake-up instead of at once.
      }
    }
    return signals;
  }

  /** True once closed (the app is closing): claims stop waiting. */
  get closed(): boolean {
    return this.closed_;
  }

  /**
   * Listens from now on for work of `types` or a change of worker `workerId`. Made before a claim, so a
   * signal that arrives while the claim is on its way is not missed. Dispose of it when done.
   */
  listen(types: readonly string[], workerId: string): WorkWaiter {
    const keys = [...types.map((type) => `type:${type}`), `worker:${workerId}`];
    const waiter = new WorkWaiter(() => {
      for (const key of keys) {
        const set = this.byKey.get(key);
        set?.delete(waiter);
        if (set?.size === 0) this.byKey.delete(key);
      }
    });
    if (this.closed_) waiter.notify();
    else {
      for (const key of keys) {
        const set = this.byKey.get(key);
        if (set) set.add(waiter);
        else this.byKey.set(key, new Set([waiter]));
      }
    }
    return waiter;
  }

  /** Ends the subscriptions and wakes every waiter. Idempotent. */
  close(): void {
    if (this.closed_) return;
    this.closed_ = true;
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    for (const set of [...this.byKey.values()]) for (const waiter of set) waiter.notify();
    this.byKey.clear();
  }

  private notify(key: string): void {
    const set = this.byKey.get(key);
    if (set) for (const waiter of [...set]) waiter.notify();
  }
}

/** One claim's wait for a signal. */
export class WorkWaiter {
  private signaled = false;
  private wake: (() => void) | null = null;

  constructor(private readonly dispose_: () => void) {}

  notify(): void {
    this.signaled = true;
    this.wake?.();
  }

  /** Resolves once a signal came (at once if one came since `listen`), at time `at`, or when `abort` fires. */
  async until(at: number, abort: AbortSignal): Promise<void> {
    if (this.signaled || abort.aborted) return;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => this.wake?.();
    try {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        abort.addEventListener('abort', onAbort, { once: true });
        timer = setTimeout(resolve, Math.max(0, Math.min(at - Date.now(), 2 ** 31 - 1)));
      });
    } finally {
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
      this.wake = null;
    }
  }

  dispose(): void {
    this.dispose_();
  }
}
