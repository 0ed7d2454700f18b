import { MinHeap } from './min-heap.js';

/*
 * The memory store's fair queue: the same steps as lua/fair-queue.lua (read that file's header for the rule and the
 * structures), so both stores claim in the same order; the shared contract suite holds them to it.
 */

/** 2^42: ready score = (100 - priority) · 2^42 + run_at ms; rounds stay below it. */
export const PRIORITY_BAND = 4398046511104;

export interface QueueEntry {
  id: string;
  /** Matches the job's `queueSeq` while this entry is current; stale entries are skipped (lazy deletion). */
  seq: number;
  priority: number;
  runAt: number;
}

export const readyScore = (entry: { priority: number; runAt: number }): number =>
  (100 - entry.priority) * PRIORITY_BAND + entry.runAt;
const bandOf = (score: number): number => Math.floor(score / PRIORITY_BAND);
const lowOf = (score: number): number => score - bandOf(score) * PRIORITY_BAND;

/** Ready order: by score, then id (as a Redis sorted set orders equal scores). */
export const claimOrder = (a: QueueEntry, b: QueueEntry): boolean => {
  const scoreA = readyScore(a);
  const scoreB = readyScore(b);
  return scoreA !== scoreB ? scoreA < scoreB : a.id < b.id;
};

/** Members by score, then member: a Redis sorted set, for rotations (tenants of a type, flows of a tenant). */
class Rotation {
  private readonly entries: { member: string; score: number }[] = [];
  private readonly scores = new Map<string, number>();

  get size(): number {
    return this.entries.length;
  }
  score(member: string): number | undefined {
    return this.scores.get(member);
  }
  first(): { member: string; score: number } | undefined {
    return this.entries[0];
  }
  /** The first entry whose score is at least `min`. */
  firstFrom(min: number): { member: string; score: number } | undefined {
    return this.entries[this.position(min, '')];
  }
  add(member: string, score: number): void {
    this.remove(member);
    this.entries.splice(this.position(score, member), 0, { member, score });
    this.scores.set(member, score);
  }
  remove(member: string): void {
    const score = this.scores.get(member);
    if (score === undefined) return;
    this.entries.splice(this.position(score, member), 1);
    this.scores.delete(member);
  }
  /** Index of the first entry not before (score, member). */
  private position(score: number, member: string): number {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      const entry = this.entries[mid]!;
      if (entry.score < score || (entry.score === score && entry.member < member)) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** One ready job in turn: its entry, and the tenant and concurrency key ('' = none) of its flow. */
export interface InTurn {
  entry: QueueEntry;
  tenant: string;
  key: string;
}

export class MemoryFairQueue {
  /** `type\0tenant\0key` → the flow's ready jobs. */
  private readonly flows = new Map<string, MinHeap<QueueEntry>>();
  /** `type\0tenant` → its flows a claim may take from. */
  private readonly tenantFlows = new Map<string, Rotation>();
  /** type → tenants with such a flow. */
  private readonly rotations = new Map<string, Rotation>();
  /** `type\0tenant` → claims a tenant of weight > 1 took in its current round. */
  private readonly credits = new Map<string, number>();
  /** `type\0tenant\nkey` → running jobs with that key. */
  private readonly keyRunning = new Map<string, number>();
  /** type → `tenant\nkey` of the flows held back at their key's cap. */
  private readonly heldBack = new Map<string, Set<string>>();

  constructor(
    /** Whether a queue entry still stands for its job (queued, same enqueue). */
    private readonly isCurrent: (entry: QueueEntry) => boolean,
    /** Whether the job's keys take turns (fair_by key at submit). */
    private readonly byKey: (id: string) => boolean,
  ) {}

  /** A job becomes ready. True when its tenant had nothing to claim before. */
  enqueue(type: string, tenant: string, key: string, entry: QueueEntry): boolean {
    const flow = this.flow(type, tenant, key);
    flow.push(entry);
    if (this.head(flow) !== entry) return false;
    const wasIdle = this.rotation(type).score(tenant) === undefined;
    this.placeFlow(type, tenant, key);
    this.placeTenant(type, tenant);
    return wasIdle;
  }

  /** A ready job left without being claimed (the caller made its entry stale first). */
  dequeued(type: string, tenant: string, key: string): void {
    this.placeFlow(type, tenant, key);
    this.placeTenant(type, tenant);
  }

  /** Whether any tenant of `type` has a job a claim may take. */
  hasReady(type: string): boolean {
    return (this.rotations.get(type)?.size ?? 0) > 0;
  }

  /** The head of a flow (stale entries dropped), without taking it. */
  head(flow: MinHeap<QueueEntry>): QueueEntry | undefined {
    let entry = flow.peek();
    while (entry && !this.isCurrent(entry)) {
      flow.pop();
      entry = flow.peek();
    }
    return entry;
  }

  /** The job the next claim of `type` takes, holding back flows at `keyCap` (0 = none) on the way. */
  nextInTurn(type: string, keyCap: number): InTurn | undefined {
    const rotation = this.rotation(type);
    for (let pass = 0; pass < 1000; pass++) {
      const tenant = rotation.first()?.member;
      if (tenant === undefined) return undefined;
      const key = this.tenantFlows.get(`${type}\0${tenant}`)?.first()?.member;
      if (key === undefined) rotation.remove(tenant);
      else if (key !== '' && keyCap > 0 && this.runningWithKey(type, tenant, key) >= keyCap) {
        this.tenantFlows.get(`${type}\0${tenant}`)!.remove(key);
        this.heldBackOf(type).add(`${tenant}\n${key}`);
        this.placeTenant(type, tenant);
      } else {
        const entry = this.head(this.flow(type, tenant, key));
        if (entry) return { entry, tenant, key };
        this.placeFlow(type, tenant, key);
        this.placeTenant(type, tenant);
      }
    }
    return undefined;
  }

  /** A claim took `taken` (the head of its flow; its entry already stale): as took_turn in fair-queue.lua. */
  tookTurn(type: string, taken: InTurn, byKey: boolean, keyCap: number, weight: number): void {
    const { tenant, key } = taken;
    const flow = this.flow(type, tenant, key);
    let atCap = false;
    if (key !== '') {
      const name = `${type}\0${tenant}\n${key}`;
      const running = (this.keyRunning.get(name) ?? 0) + 1;
      this.keyRunning.set(name, running);
      atCap = keyCap > 0 && running >= keyCap;
    }
    const flows = this.tenantFlowsOf(type, tenant);
    if (atCap && this.head(flow)) {
      flows.remove(key);
      this.heldBackOf(type).add(`${tenant}\n${key}`);
    } else {
      let round: number | undefined;
      if (byKey) {
        const current = flows.score(key);
        round = (current === undefined ? 0 : lowOf(current)) + 1;
      }
      this.placeFlow(type, tenant, key, { byKey, round });
    }
    const current = this.rotation(type).score(tenant);
    let round = current === undefined ? 0 : lowOf(current);
    const creditName = `${type}\0${tenant}`;
    if (weight <= 1) round++;
    else {
      const credit = (this.credits.get(creditName) ?? 0) + 1;
      if (credit >= weight) {
        this.credits.delete(creditName);
        round++;
      } else this.credits.set(creditName, credit);
    }
    this.placeTenant(type, tenant, round);
  }

  /** A job with a concurrency key stopped running. True when its flow came back from being held back. */
  stoppedRunning(type: string, tenant: string, key: string | null): boolean {
    if (!key) return false;
    const name = `${type}\0${tenant}\n${key}`;
    const running = (this.keyRunning.get(name) ?? 0) - 1;
    if (running <= 0) this.keyRunning.delete(name);
    else this.keyRunning.set(name, running);
    if (!this.heldBackOf(type).delete(`${tenant}\n${key}`)) return false;
    this.placeFlow(type, tenant, key);
    this.placeTenant(type, tenant);
    return true;
  }

  runningWithKey(type: string, tenant: string, key: string): number {
    return this.keyRunning.get(`${type}\0${tenant}\n${key}`) ?? 0;
  }

  /** Per type, the flows held back at their key's cap (types with none left out). */
  keysAtCap(): Record<string, number> {
    return Object.fromEntries(
      [...this.heldBack].filter(([, held]) => held.size > 0).map(([t, held]) => [t, held.size]),
    );
  }

  private entryRound(rotation: Rotation, band: number): number {
    const first = rotation.firstFrom(band * PRIORITY_BAND);
    return first && bandOf(first.score) === band ? lowOf(first.score) : 0;
  }

  private placeTenant(type: string, tenant: string, round?: number): void {
    const rotation = this.rotation(type);
    const best = this.tenantFlows.get(`${type}\0${tenant}`)?.first();
    if (!best) {
      rotation.remove(tenant);
      return;
    }
    const band = bandOf(best.score);
    const current = rotation.score(tenant);
    const sameBand = current !== undefined && bandOf(current) === band;
    if (!(sameBand && round !== undefined)) {
      if (sameBand) return;
      round = this.entryRound(rotation, band);
      this.credits.delete(`${type}\0${tenant}`);
    }
    rotation.add(tenant, band * PRIORITY_BAND + round);
  }

  /** `claimed`: right after a claim took from the flow, the claimed job's mode and its key's next round. */
  private placeFlow(type: string, tenant: string, key: string, claimed?: { byKey: boolean; round?: number }): void {
    const flows = this.tenantFlowsOf(type, tenant);
    const head = this.head(this.flow(type, tenant, key));
    if (!head) {
      flows.remove(key);
      this.flows.delete(`${type}\0${tenant}\0${key}`);
      if (key !== '') this.heldBackOf(type).delete(`${tenant}\n${key}`);
      return;
    }
    if (!claimed && key !== '' && this.heldBackOf(type).has(`${tenant}\n${key}`)) return;
    let round = claimed?.round;
    let score = readyScore(head);
    if (claimed ? claimed.byKey : this.byKey(head.id)) {
      const band = bandOf(score);
      const current = flows.score(key);
      const sameBand = current !== undefined && bandOf(current) === band;
      if (!sameBand) round = this.entryRound(flows, band);
      else if (round === undefined) round = lowOf(current);
      score = band * PRIORITY_BAND + round;
    }
    flows.add(key, score);
  }

  private flow(type: string, tenant: string, key: string): MinHeap<QueueEntry> {
    const name = `${type}\0${tenant}\0${key}`;
    let flow = this.flows.get(name);
    if (!flow) this.flows.set(name, (flow = new MinHeap(claimOrder)));
    return flow;
  }

  private tenantFlowsOf(type: string, tenant: string): Rotation {
    const name = `${type}\0${tenant}`;
    let flows = this.tenantFlows.get(name);
    if (!flows) this.tenantFlows.set(name, (flows = new Rotation()));
    return flows;
  }

  private rotation(type: string): Rotation {
    let rotation = this.rotations.get(type);
    if (!rotation) this.rotations.set(type, (rotation = new Rotation()));
    return rotation;
  }

  private heldBackOf(type: string): Set<string> {
    let held = this.heldBack.get(type);
    if (!held) this.heldBack.set(type, (held = new Set()));
    return held;
  }
}
