import { describe, expect, it } from 'vitest';
import type { JobRecord, NewJob } from '../../src/jobs/job.js';
import type { ClaimRequest, JobStore, StoreEvent } from '../../src/store/job-store.js';
import { newJobId } from '../../src/jobs/job-id.js';

/**
 * The claim order of issue #13 (fair queueing across tenants, per-key caps, keys taking turns), run by the store
 * contract against every store: the order is part of the contract, so each case names the exact sequence.
 */
export function describeFairSchedulingContract(currentStore: () => JobStore): void {
  describe('fair scheduling', () => {
    let created = Date.now() - 60_000;
    let seq = 0;

    async function submit(tenant: string, overrides: Partial<NewJob> = {}): Promise<JobRecord> {
      const at = ++created;
      return currentStore().create({
        id: newJobId(at),
        type: 'echo',
        tenant,
        input: { n: seq++ },
        metadata: {},
        priority: 0,
        maxAttempts: 3,
        timeoutS: null,
        createdAt: at,
        runAt: at,
        ...overrides,
      });
    }

    const request = (overrides: Partial<ClaimRequest> = {}): ClaimRequest => ({
      types: ['echo'],
      max: 1,
      workerId: 'worker-f',
      leaseId: `fair-${seq++}`,
      leaseMs: 30_000,
      now: Date.now(),
      ...overrides,
    });

    /** Claims one job at a time, `count` times; the tenants (or keys) in claim order. */
    async function claimInTurn(count: number, overrides: Partial<ClaimRequest> = {}): Promise<JobRecord[]> {
      const claimed: JobRecord[] = [];
      for (let i = 0; i < count; i++) claimed.push(...(await currentStore().claim(request(overrides))));
      return claimed;
    }

    it('shares claims round-robin between tenants: a small tenant is not stuck behind a flood', async () => {
      for (let i = 0; i < 60; i++) await submit('acme');
      const early = await currentStore().claim(request({ max: 20 }));
      expect(early.every((job) => job.tenant === 'acme')).toBe(true);
      for (let i = 0; i < 5; i++) await submit('bolt');
      const next = await claimInTurn(10);
      expect(next.map((job) => job.tenant)).toEqual([
        'acme',
        'bolt',
        'acme',
        'bolt',
        'acme',
        'bolt',
        'acme',
        'bolt',
        'acme',
        'bolt',
      ]);
      // Within a tenant the order stays submit order.
      const bolts = next.filter((job) => job.tenant === 'bolt').map((job) => job.input);
      expect(bolts).toEqual([...bolts].sort((a, b) => (a as { n: number }).n - (b as { n: number }).n));
    });

    it('takes the same turns when one claim asks for many jobs', async () => {
      for (let i = 0; i < 30; i++) await submit('acme');
      for (let i = 0; i < 3; i++) await submit('bolt');
      for (let i = 0; i < 3; i++) await submit('core');
      const claimed = await currentStore().claim(request({ max: 9 }));
      expect(claimed.map((job) => job.tenant)).toEqual([
        'acme',
        'bolt',
        'core',
        'acme',
        'bolt',
        'core',
        'acme',
        'bolt',
        'core',
      ]);
    });

    it('goes on with the tenant left when another runs out within one claim', async () => {
      for (let i = 0; i < 30; i++) await submit('acme');
      for (let i = 0; i < 2; i++) await submit('bolt');
      const claimed = await currentStore().claim(request({ max: 20 }));
      expect(claimed.map((job) => job.tenant)).toEqual([
        'acme',
        'bolt',
        'acme',
        'bolt',
        ...Array.from({ length: 16 }, () => 'acme'),
      ]);
      expect((await currentStore().claim(request({ max: 20 }))).length).toBe(12);
    });

    it('takes weighted turns, priority bands and keyed tenants in one big claim as one at a time', async () => {
      const [a1, a2, a3, a4] = [await submit('acme'), await submit('acme'), await submit('acme'), await submit('acme')];
      const [b1, b2] = [await submit('bolt'), await submit('bolt')];
      const c1 = await submit('core', { concurrencyKey: 'x' });
      const b3 = await submit('bolt', { priority: 5 });
      const claimed = await currentStore().claim(request({ max: 9, tenantWeights: { acme: 2 } }));
      expect(claimed.map((job) => job.id)).toEqual([b3.id, a1.id, a2.id, b1.id, c1.id, a3.id, a4.id, b2.id]);
    });

    it('gives a tenant of weight 3 three claims to another tenant’s one', async () => {
      for (let i = 0; i < 120; i++) await submit('acme');
      for (let i = 0; i < 120; i++) await submit('bolt');
      const claimed = await claimInTurn(100, { tenantWeights: { acme: 3 } });
      const acme = claimed.filter((job) => job.tenant === 'acme').length;
      expect(acme).toBe(75);
      expect(claimed.slice(0, 8).map((job) => job.tenant)).toEqual([
        'acme',
        'acme',
        'acme',
        'bolt',
        'acme',
        'acme',
        'acme',
        'bolt',
      ]);
    });

    it('runs a higher-priority job of a tenant with a backlog before other tenants’ normal jobs', async () => {
      for (let i = 0; i < 20; i++) await submit('acme');
      for (let i = 0; i < 5; i++) await submit('bolt');
      await claimInTurn(4);
      const urgent = await submit('acme', { priority: 10 });
      const [next] = await claimInTurn(1);
      expect(next!.id).toBe(urgent.id);
      // And the tenants go on taking turns afterwards.
      const after = await claimInTurn(4);
      expect(new Set(after.map((job) => job.tenant))).toEqual(new Set(['acme', 'bolt']));
    });

    it('caps running jobs per tenant and key, in submit order, without holding back other keys', async () => {
      const limits = { echo: { keyConcurrency: 1 } };
      const a1 = await submit('acme', { concurrencyKey: 'doc-1' });
      const a2 = await submit('acme', { concurrencyKey: 'doc-1' });
      const a3 = await submit('acme', { concurrencyKey: 'doc-1' });
      const b1 = await submit('acme', { concurrencyKey: 'doc-2' });
      const other = await submit('bolt', { concurrencyKey: 'doc-1' }); // another tenant's doc-1 is another key
      const plain = await submit('acme');
      const first = await currentStore().claim(request({ max: 10, limits }));
      expect(first.map((job) => job.id).sort()).toEqual([a1.id, b1.id, other.id, plain.id].sort());
      expect(first.find((job) => job.id === a1.id)!.concurrencyKey).toBe('doc-1');
      expect(await currentStore().claim(request({ max: 10, limits }))).toEqual([]);
      expect(await currentStore().runningWithKey('echo', 'acme', 'doc-1')).toBe(1);
      expect((await currentStore().stats(Date.now())).keysAtCap).toEqual({ echo: 1 });

      const events: StoreEvent[] = [];
      await currentStore().subscribe((event) => events.push(event));
      const held = first.find((job) => job.id === a1.id)!;
      await currentStore().finish(
        { jobId: held.id, leaseId: held.lease!.id },
        { kind: 'succeeded', result: 1 },
        Date.now(),
      );
      // The key's next job may run now: idle workers hear of it.
      await expect.poll(() => events.some((event) => event.kind === 'work'), { timeout: 2000 }).toBe(true);
      expect(await currentStore().runningWithKey('echo', 'acme', 'doc-1')).toBe(0);
      const second = await currentStore().claim(request({ max: 10, limits }));
      expect(second.map((job) => job.id)).toEqual([a2.id]);
      await currentStore().finish(
        { jobId: a2.id, leaseId: second[0]!.lease!.id },
        { kind: 'failed', error: { code: 'x', message: 'x', retryable: false } },
        Date.now(),
      );
      expect((await currentStore().claim(request({ max: 10, limits }))).map((job) => job.id)).toEqual([a3.id]);
    });

    it('frees a key’s slot when its job is deleted, released or loses its lease', async () => {
      const limits = { echo: { keyConcurrency: 1 } };
      const now = Date.now();
      for (let i = 0; i < 4; i++) await submit('acme', { concurrencyKey: 'k' });
      const [first] = await currentStore().claim(request({ limits, now }));
      expect(await currentStore().delete(first!.id)).toBe(true);
      const [second] = await currentStore().claim(request({ limits, now }));
      expect(second).toBeDefined();
      await currentStore().finish({ jobId: second!.id, leaseId: second!.lease!.id }, { kind: 'released' }, now);
      const [again] = await currentStore().claim(request({ limits, now, leaseMs: 1000 }));
      expect(await currentStore().runningWithKey('echo', 'acme', 'k')).toBe(1);
      expect(await currentStore().claim(request({ limits, now }))).toEqual([]);
      // Its lease lapses: the job goes back to the queue and the key's slot is free for the key's next job.
      const [afterLapse] = await currentStore().claim(request({ limits, now: now + 1001 }));
      expect(afterLapse).toBeDefined();
      expect((await currentStore().get(again!.id))!.status).toBe('queued');
      expect(await currentStore().runningWithKey('echo', 'acme', 'k')).toBe(1);
    });

    it('lets a tenant’s keys take turns when the type is fair by key, else keeps run-time order', async () => {
      for (let i = 0; i < 6; i++) await submit('acme', { concurrencyKey: 'big', fairByKey: true });
      for (let i = 0; i < 2; i++) await submit('acme', { concurrencyKey: 'small', fairByKey: true });
      const turns = await claimInTurn(4);
      expect(turns.map((job) => job.concurrencyKey)).toEqual(['big', 'small', 'big', 'small']);
      for (let i = 0; i < 3; i++) await submit('core', { concurrencyKey: 'big' });
      await submit('core', { concurrencyKey: 'small' });
      const ordered = await claimInTurn(8);
      expect(ordered.filter((job) => job.tenant === 'core').map((job) => job.concurrencyKey)).toEqual([
        'big',
        'big',
        'big',
        'small',
      ]);
    });

    it('keeps the order when queued jobs leave: cancel of a tenant’s next job, and of a whole tenant', async () => {
      const a = [await submit('acme'), await submit('acme'), await submit('acme')];
      const b = [await submit('bolt')];
      const c = [await submit('core'), await submit('core')];
      await currentStore().cancel(a[0]!.id, Date.now());
      await currentStore().cancel(b[0]!.id, Date.now());
      const claimed = await claimInTurn(4);
      expect(claimed.map((job) => job.id)).toEqual([a[1]!.id, c[0]!.id, a[2]!.id, c[1]!.id]);
      expect(await currentStore().claim(request())).toEqual([]);
    });

    it('promotes delayed jobs into their tenant’s turn', async () => {
      const now = Date.now();
      for (let i = 0; i < 4; i++) await submit('acme');
      const later = await submit('bolt', { runAt: now + 5000 });
      expect((await claimInTurn(2, { now })).map((job) => job.tenant)).toEqual(['acme', 'acme']);
      const next = await claimInTurn(2, { now: now + 5001 });
      expect(next.map((job) => job.tenant).sort()).toEqual(['acme', 'bolt']);
      expect(next.some((job) => job.id === later.id)).toBe(true);
    });

    it('reports queued and running jobs per tenant, largest backlog first', async () => {
      for (let i = 0; i < 3; i++) await submit('acme');
      for (let i = 0; i < 5; i++) await submit('bolt');
      await submit('-');
      await currentStore().claim(request({ max: 2 }));
      const stats = await currentStore().stats(Date.now());
      const total = (tenant: string) => stats.tenants.find((entry) => entry.tenant === tenant);
      expect(stats.tenants.map((entry) => entry.tenant)).toEqual(['bolt', 'acme', '-']);
      expect(total('bolt')!.queued + total('bolt')!.running).toBe(5);
      expect(total('acme')!.queued + total('acme')!.running).toBe(3);
      expect(stats.tenants.reduce((sum, entry) => sum + entry.running, 0)).toBe(2);
    });
  });
}
