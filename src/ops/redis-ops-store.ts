import { randomBytes } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { ChannelListeners } from '../redis/channel-listeners.js';
import { guardRedis, storeError, type RedisClient } from '../redis/redis-client.js';
import { assembleHistory, bucketStart, field, incrementsFor, windowBuckets } from './history.js';
import type { OpsStoreOptions } from './memory-ops-store.js';
import {
  AUDIT_LOG_CAP,
  DEFAULT_BEAT_INTERVAL_MS,
  HISTORY_WINDOWS,
  PRUNE_DEAD_AFTER_MS,
  afterWorkerCall,
  workerView,
  type AuditEntry,
  type AuditPage,
  type AuditRecord,
  type BulkSnapshot,
  type ControlMessage,
  type DeclaredTypeDef,
  type FinishedSample,
  type History,
  type HistoryWindow,
  type OpsStore,
  type TypePause,
  type WorkerCallChange,
  type WorkerRecord,
  type WorkerView,
} from './ops-store.js';

export interface RedisOpsStoreOptions extends OpsStoreOptions {
  /** A command (or a batch) answering later than this fails with StoreUnavailableError. Default DEFAULT_COMMAND_TIMEOUT_MS (the service passes REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs?: number;
}

/** A control message as published, or undefined for one that is not JSON. */
function parseControl(raw: string): ControlMessage | undefined {
  try {
    return JSON.parse(raw) as ControlMessage;
  } catch {
    return undefined;
  }
}

/** A snapshot token as saveSnapshot makes them (anything else is not looked up). */
const tokenPattern = /^[A-Za-z0-9_-]{16,64}$/;
const windows = Object.keys(HISTORY_WINDOWS) as HistoryWindow[];
/** A beat drops long-dead records at most this often (beats come on every change of a busy pool, several a second). */
const PRUNE_EVERY_MS = 60_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/** GET and DEL in one step (GETDEL needs Redis 6.2). */
const TAKE_LUA = `local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value`;
/** Numbers the entry, adds it, keeps the newest ARGV[2]: member "<id> <json>", score <id>. */
const AUDIT_LUA = `local id = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], id, id .. ' ' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
return id`;
/**
 * Compare-and-set of one hash field: writes ARGV[3] when the field still holds ARGV[2] (answers 1), else answers
 * what it holds now (false when it is gone), so the caller can apply its change again to that.
 */
const SWAP_LUA = `local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return false end
if current ~= ARGV[2] then return current end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`;
/** Tries of a worker-call update that keeps meeting concurrent ones (each retry follows a write that succeeded). */
const MAX_SWAPS = 50;

/**
 * Operator state in Redis, beside the jobs: under the job store's key base `{prefix}:` (one hash tag, so
 * every key is in one Redis Cluster slot), shared by every instance and kept across restarts.
 *
 *   {p}:ops:snap:<token>        string  a bulk snapshot (JSON), expiring after its TTL; GET+DEL when taken
 *   {p}:ops:paused              hash    job type -> TypePause (JSON)
 *   {p}:ops:workers             hash    worker id -> its last WorkerRecord (JSON)
 *   {p}:ops:draining            set     worker ids an operator drained (apart from the records: a beat never undoes a drain)
 *   {p}:ops:audit               zset    "<id> <AuditEntry JSON>", score <id>; the newest AUDIT_LOG_CAP kept
 *   {p}:ops:audit-seq           string  the last audit id
 *   {p}:ops:declared-types      hash    job type -> DeclaredTypeDef (JSON): the types operators declared for remote workers
 *   {p}:ops:hist:<window>:<ms>  hash    stats of one bucket starting at <ms> (fields: see history.ts), counted
 *                                       with HINCRBY and expiring `keepMs` after the bucket ends
 *                                       (1h: 1-minute buckets kept 2 h; 24h: 10-minute buckets kept 25 h; 7d: hourly kept 8 days)
 *   {p}:control                 channel ControlMessage JSON on every pause, resume, drain and declared type change
 *
 * It uses the client it is given (the job store's) and opens one more connection (a duplicate) for the
 * control subscription; `close` ends only that one.
 */
export class RedisOpsStore implements OpsStore {
  readonly kind = 'redis' as const;
  private readonly beatIntervalMs: number;
  private readonly commandTimeoutMs: number;
  private readonly control: ChannelListeners<ControlMessage>;
  private closed = false;
  private lastPruneAt = 0;

  constructor(
    private readonly redis: RedisClient,
    /** The job store's key base, `{prefix}:`. */
    private readonly base: string,
    options: RedisOpsStoreOptions = {},
  ) {
    this.beatIntervalMs = options.beatIntervalMs ?? DEFAULT_BEAT_INTERVAL_MS;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.control = new ChannelListeners(redis, this.key.control(), parseControl, this.commandTimeoutMs);
  }

  private readonly key = {
    snapshot: (token: string) => `${this.base}ops:snap:${token}`,
    paused: () => `${this.base}ops:paused`,
    workers: () => `${this.base}ops:workers`,
    draining: () => `${this.base}ops:draining`,
    audit: () => `${this.base}ops:audit`,
    auditSeq: () => `${this.base}ops:audit-seq`,
    declaredTypes: () => `${this.base}ops:declared-types`,
    history: (window: HistoryWindow, start: number) => `${this.base}ops:hist:${window}:${start}`,
    control: () => `${this.base}control`,
  };

  async saveSnapshot(snapshot: BulkSnapshot, ttlMs: number): Promise<string> {
    const token = randomBytes(18).toString('base64url');
    await this.guard(() =>
      this.redis.set(this.key.snapshot(token), JSON.stringify(snapshot), 'PX', Math.max(1, Math.round(ttlMs))),
    );
    return token;
  }

  async takeSnapshot(token: string): Promise<BulkSnapshot | undefined> {
    if (!tokenPattern.test(token)) return undefined;
    const value = (await this.guard(() => this.redis.eval(TAKE_LUA, 1, this.key.snapshot(token)))) as string | null;
    return value === null ? undefined : (JSON.parse(value) as BulkSnapshot);
  }

  async pauseType(type: string, pause: TypePause): Promise<void> {
    await this.guard(() => this.redis.hset(this.key.paused(), type, JSON.stringify(pause)));
    await this.publish({ kind: 'pause', type, pause });
  }

  async resumeType(type: string): Promise<boolean> {
    const removed = await this.guard(() => this.redis.hdel(this.key.paused(), type));
    await this.publish({ kind: 'resume', type });
    return removed > 0;
  }

  async pausedTypes(): Promise<Record<string, TypePause>> {
    const all = await this.guard(() => this.redis.hgetall(this.key.paused()));
    return Object.fromEntries(Object.entries(all).map(([type, json]) => [type, JSON.parse(json) as TypePause]));
  }

  subscribeControl(listener: (message: ControlMessage) => void): Promise<() => void> {
    return this.control.add(listener);
  }

  async beat(record: WorkerRecord): Promise<void> {
    await this.guard(() => this.redis.hset(this.key.workers(), record.id, JSON.stringify(record)));
    // Long-dead records go when the registry is read; now and then a beat drops them too, should nobody read it.
    if (Math.abs(record.beat_at - this.lastPruneAt) >= PRUNE_EVERY_MS) {
      this.lastPruneAt = record.beat_at;
      await this.workers(record.beat_at);
    }
  }

  async workers(now: number): Promise<WorkerView[]> {
    const [records, drained] = await this.guard(() =>
      Promise.all([this.redis.hgetall(this.key.workers()), this.redis.smembers(this.key.draining())]),
    );
    const drainedSet = new Set(drained);
    const views: WorkerView[] = [];
    const pruned: string[] = [];
    for (const [id, json] of Object.entries(records)) {
      const record = JSON.parse(json) as WorkerRecord;
      if (now - record.beat_at > PRUNE_DEAD_AFTER_MS) {
        pruned.push(id);
        continue;
      }
      views.push(workerView(record, drainedSet.has(id), now, this.beatIntervalMs));
    }
    if (pruned.length > 0) {
      await this.guard(() =>
        Promise.all([this.redis.hdel(this.key.workers(), ...pruned), this.redis.srem(this.key.draining(), ...pruned)]),
      );
    }
    return views.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async setDraining(id: string, draining: boolean): Promise<boolean> {
    const known = await this.guard(() => this.redis.hexists(this.key.workers(), id));
    if (!known) return false;
    await this.guard(() =>
      draining ? this.redis.sadd(this.key.draining(), id) : this.redis.srem(this.key.draining(), id),
    );
    await this.publish({ kind: 'drain', workerId: id, draining });
    return true;
  }

  async isDraining(id: string): Promise<boolean> {
    return (await this.guard(() => this.redis.sismember(this.key.draining(), id))) === 1;
  }

  async worker(id: string, now: number): Promise<WorkerView | undefined> {
    const [json, drained] = await this.guard(() =>
      Promise.all([this.redis.hget(this.key.workers(), id), this.redis.sismember(this.key.draining(), id)]),
    );
    return json === null
      ? undefined
      : workerView(JSON.parse(json) as WorkerRecord, drained === 1, now, this.beatIntervalMs);
  }

  async removeWorker(id: string): Promise<boolean> {
    const [removed] = await this.guard(() =>
      Promise.all([this.redis.hdel(this.key.workers(), id), this.redis.srem(this.key.draining(), id)]),
    );
    return removed > 0;
  }

  async recordWorkerCall(id: string, change: WorkerCallChange, now: number): Promise<WorkerRecord | undefined> {
    // The change is applied here (afterWorkerCall, the rule the memory store applies too) and written only if the
    // record did not change meanwhile; otherwise it is applied again to what another call wrote.
    let stored = await this.guard(() => this.redis.hget(this.key.workers(), id));
    for (let swaps = 0; stored !== null && swaps < MAX_SWAPS; swaps++) {
      const next = afterWorkerCall(JSON.parse(stored) as WorkerRecord, change, now);
      const json = JSON.stringify(next);
      const answer = (await this.guard(() => this.redis.eval(SWAP_LUA, 1, this.key.workers(), id, stored!, json))) as
        1 | string | null;
      if (answer === 1) return next;
      stored = answer;
    }
    if (stored === null) return undefined;
    throw new Error(`the record of worker ${id} kept changing: ${MAX_SWAPS} concurrent updates in a row`);
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.guard(() =>
      this.redis.eval(AUDIT_LUA, 2, this.key.audit(), this.key.auditSeq(), JSON.stringify(entry), AUDIT_LOG_CAP),
    );
  }

  async auditLog({ limit, before }: { limit: number; before?: string }): Promise<AuditPage> {
    const max = before !== undefined && /^\d+$/.test(before) ? `(${before}` : '+inf';
    const members = await this.guard(() =>
      this.redis.zrevrangebyscore(this.key.audit(), max, '-inf', 'LIMIT', 0, limit + 1),
    );
    const entries = members.slice(0, limit).map((member): AuditRecord => {
      const cut = member.indexOf(' ');
      return { ...(JSON.parse(member.slice(cut + 1)) as AuditEntry), id: member.slice(0, cut) };
    });
    return { entries, next_cursor: members.length > limit ? entries[entries.length - 1]!.id : null };
  }

  async recordFinished(samples: FinishedSample[]): Promise<void> {
    if (samples.length === 0) return;
    const batch = this.redis.pipeline();
    for (const window of windows) {
      const { bucketMs, keepMs } = HISTORY_WINDOWS[window];
      for (const [start, increments] of incrementsFor(samples, bucketMs)) {
        const key = this.key.history(window, start);
        for (const [name, by] of increments) batch.hincrby(key, name, by);
        batch.pexpireat(key, start + bucketMs + keepMs);
      }
    }
    await this.exec(batch);
  }

  async recordDepth(at: number, depthByType: Record<string, number>): Promise<void> {
    const entries = Object.entries(depthByType);
    if (entries.length === 0) return;
    const batch = this.redis.pipeline();
    for (const window of windows) {
      const { bucketMs, keepMs } = HISTORY_WINDOWS[window];
      const start = bucketStart(at, bucketMs);
      const key = this.key.history(window, start);
      batch.hset(key, Object.fromEntries(entries.map(([type, depth]) => [field(type, 'd'), depth])));
      batch.pexpireat(key, start + bucketMs + keepMs);
    }
    await this.exec(batch);
  }

  async history(window: HistoryWindow, now: number): Promise<History> {
    const starts = windowBuckets(window, now);
    const batch = this.redis.pipeline();
    for (const start of starts) batch.hgetall(this.key.history(window, start));
    const replies = (await this.exec(batch)) as Record<string, string>[];
    const byStart = new Map(starts.map((start, i) => [start, replies[i]]));
    return assembleHistory(window, starts, (start) => byStart.get(start));
  }

  async declareType(def: DeclaredTypeDef): Promise<{ def: DeclaredTypeDef; created: boolean }> {
    const key = this.key.declaredTypes();
    let stored = def;
    // HSETNX tells a new type from a replaced one; a replacement keeps the first declaration's created_at.
    const created = (await this.guard(() => this.redis.hsetnx(key, def.type, JSON.stringify(def)))) === 1;
    if (!created) {
      const earlier = await this.guard(() => this.redis.hget(key, def.type));
      if (earlier !== null) stored = { ...def, created_at: (JSON.parse(earlier) as DeclaredTypeDef).created_at };
      await this.guard(() => this.redis.hset(key, def.type, JSON.stringify(stored)));
    }
    await this.publish({ kind: 'types' });
    return { def: stored, created };
  }

  async removeDeclaredType(type: string): Promise<boolean> {
    const removed = await this.guard(() => this.redis.hdel(this.key.declaredTypes(), type));
    await this.publish({ kind: 'types' });
    return removed > 0;
  }

  async declaredTypes(): Promise<DeclaredTypeDef[]> {
    const all = await this.guard(() => this.redis.hgetall(this.key.declaredTypes()));
    return Object.keys(all)
      .sort()
      .map((type) => JSON.parse(all[type]!) as DeclaredTypeDef);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.control.clear();
  }

  private async publish(message: ControlMessage): Promise<void> {
    await this.guard(() => this.redis.publish(this.key.control(), JSON.stringify(message)));
  }

  /** Runs a pipeline (one round trip); any command's error fails the whole call. */
  private async exec(batch: ChainableCommander): Promise<unknown[]> {
    const results = await this.guard(async () => (await batch.exec()) ?? []);
    return results.map(([error, value]) => {
      if (error) throw storeError(error);
      return value;
    });
  }

  private guard<T>(operation: () => Promise<T>): Promise<T> {
    return guardRedis(operation, this.commandTimeoutMs);
  }
}
