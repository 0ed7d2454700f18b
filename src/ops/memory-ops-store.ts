import { randomBytes } from 'node:crypto';
import { assembleHistory, bucketStart, field, incrementsFor, windowBuckets } from './history.js';
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

export interface OpsStoreOptions {
  /** How often worker pools beat; a worker is live while its last beat is younger than three of these. Default 10 s. */
  beatIntervalMs?: number;
}

const windows = Object.keys(HISTORY_WINDOWS) as HistoryWindow[];

/** Operator state in this process only: for the in-memory job store and tests. */
export class MemoryOpsStore implements OpsStore {
  readonly kind = 'memory' as const;
  private readonly beatIntervalMs: number;
  private readonly snapshots = new Map<string, { snapshot: BulkSnapshot; expiresAt: number }>();
  private readonly paused = new Map<string, TypePause>();
  private readonly listeners = new Set<(message: ControlMessage) => void>();
  private readonly workerRecords = new Map<string, WorkerRecord>();
  private readonly drained = new Set<string>();
  private readonly declared = new Map<string, DeclaredTypeDef>();
  private auditEntries: AuditRecord[] = [];
  private auditSeq = 0;
  /** Per window (bucket width): bucket start → field → value. */
  private readonly history_ = new Map<HistoryWindow, Map<number, Map<string, number>>>(
    windows.map((window) => [window, new Map()]),
  );

  constructor(options: OpsStoreOptions = {}) {
    this.beatIntervalMs = options.beatIntervalMs ?? DEFAULT_BEAT_INTERVAL_MS;
  }

  async saveSnapshot(snapshot: BulkSnapshot, ttlMs: number): Promise<string> {
    const now = Date.now();
    for (const [token, entry] of this.snapshots) if (entry.expiresAt <= now) this.snapshots.delete(token);
    const token = randomBytes(18).toString('base64url');
    this.snapshots.set(token, { snapshot: structuredClone(snapshot), expiresAt: now + ttlMs });
    return token;
  }

  async takeSnapshot(token: string): Promise<BulkSnapshot | undefined> {
    const entry = this.snapshots.get(token);
    if (!entry) return undefined;
    this.snapshots.delete(token);
    return entry.expiresAt > Date.now() ? entry.snapshot : undefined;
  }

  async pauseType(type: string, pause: TypePause): Promise<void> {
    this.paused.set(type, { ...pause });
    this.publish({ kind: 'pause', type, pause: { ...pause } });
  }

  async resumeType(type: string): Promise<boolean> {
    const was = this.paused.delete(type);
    this.publish({ kind: 'resume', type });
    return was;
  }

  async pausedTypes(): Promise<Record<string, TypePause>> {
    return Object.fromEntries([...this.paused].map(([type, pause]) => [type, { ...pause }]));
  }

  async subscribeControl(listener: (message: ControlMessage) => void): Promise<() => void> {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async beat(record: WorkerRecord): Promise<void> {
    this.workerRecords.set(record.id, structuredClone(record));
  }

  async workers(now: number): Promise<WorkerView[]> {
    const views: WorkerView[] = [];
    for (const [id, record] of this.workerRecords) {
      if (now - record.beat_at > PRUNE_DEAD_AFTER_MS) {
        this.workerRecords.delete(id);
        this.drained.delete(id);
        continue;
      }
      views.push(workerView(structuredClone(record), this.drained.has(id), now, this.beatIntervalMs));
    }
    return views.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async setDraining(id: string, draining: boolean): Promise<boolean> {
    if (!this.workerRecords.has(id)) return false;
    if (draining) this.drained.add(id);
    else this.drained.delete(id);
    this.publish({ kind: 'drain', workerId: id, draining });
    return true;
  }

  async isDraining(id: string): Promise<boolean> {
    return this.drained.has(id);
  }

  async worker(id: string, now: number): Promise<WorkerView | undefined> {
    const record = this.workerRecords.get(id);
    return record && workerView(structuredClone(record), this.drained.has(id), now, this.beatIntervalMs);
  }

  async removeWorker(id: string): Promise<boolean> {
    this.drained.delete(id);
    return this.workerRecords.delete(id);
  }

  async recordWorkerCall(id: string, change: WorkerCallChange, now: number): Promise<WorkerRecord | undefined> {
    const record = this.workerRecords.get(id);
    if (!record) return undefined;
    const next = afterWorkerCall(record, change, now);
    this.workerRecords.set(id, next);
    return structuredClone(next);
  }

  async audit(entry: AuditEntry): Promise<void> {
    this.auditEntries.push({ ...structuredClone(entry), id: String(++this.auditSeq) });
    if (this.auditEntries.length > AUDIT_LOG_CAP) this.auditEntries = this.auditEntries.slice(-AUDIT_LOG_CAP);
  }

  async auditLog({ limit, before }: { limit: number; before?: string }): Promise<AuditPage> {
    const cutoff = before === undefined ? Infinity : Number(before);
    const older = this.auditEntries.filter((entry) => Number(entry.id) < cutoff).reverse();
    const entries = older.slice(0, limit).map((entry) => structuredClone(entry));
    return { entries, next_cursor: older.length > limit ? entries[entries.length - 1]!.id : null };
  }

  async recordFinished(samples: FinishedSample[]): Promise<void> {
    if (samples.length === 0) return;
    for (const window of windows) {
      const buckets = this.history_.get(window)!;
      for (const [start, increments] of incrementsFor(samples, HISTORY_WINDOWS[window].bucketMs)) {
        let fields = buckets.get(start);
        if (!fields) buckets.set(start, (fields = new Map<string, number>()));
        for (const [name, by] of increments) fields.set(name, (fields.get(name) ?? 0) + by);
      }
    }
    this.prune(Date.now());
  }

  async recordDepth(at: number, depthByType: Record<string, number>): Promise<void> {
    for (const window of windows) {
      const buckets = this.history_.get(window)!;
      const start = bucketStart(at, HISTORY_WINDOWS[window].bucketMs);
      let fields = buckets.get(start);
      if (!fields) buckets.set(start, (fields = new Map<string, number>()));
      for (const [type, depth] of Object.entries(depthByType)) fields.set(field(type, 'd'), depth);
    }
    this.prune(Date.now());
  }

  async history(window: HistoryWindow, now: number): Promise<History> {
    this.prune(Date.now());
    const buckets = this.history_.get(window)!;
    return assembleHistory(window, windowBuckets(window, now), (start) => {
      const fields = buckets.get(start);
      return fields ? Object.fromEntries(fields) : undefined;
    });
  }

  async declareType(def: DeclaredTypeDef): Promise<{ def: DeclaredTypeDef; created: boolean }> {
    const earlier = this.declared.get(def.type);
    const stored = structuredClone(earlier ? { ...def, created_at: earlier.created_at } : def);
    this.declared.set(def.type, stored);
    this.publish({ kind: 'types' });
    return { def: structuredClone(stored), created: !earlier };
  }

  async removeDeclaredType(type: string): Promise<boolean> {
    const was = this.declared.delete(type);
    this.publish({ kind: 'types' });
    return was;
  }

  async declaredTypes(): Promise<DeclaredTypeDef[]> {
    return [...this.declared.values()]
      .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
      .map((def) => structuredClone(def));
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** Drops buckets whose time is up: kept `keepMs` after they end, by the wall clock, as Redis expires them. */
  private prune(now: number): void {
    for (const window of windows) {
      const { keepMs, bucketMs } = HISTORY_WINDOWS[window];
      const buckets = this.history_.get(window)!;
      for (const start of buckets.keys()) if (start + bucketMs + keepMs <= now) buckets.delete(start);
    }
  }

  private publish(message: ControlMessage): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(structuredClone(message));
      } catch {
        // a listener's fault is its own; the others still hear
      }
    }
  }
}
