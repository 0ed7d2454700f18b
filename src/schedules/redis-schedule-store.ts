import { ChannelListeners } from '../redis/channel-listeners.js';
import { guardRedis, type RedisClient } from '../redis/redis-client.js';
import type { ScheduleRecord } from './schedule.js';
import { scheduleCursor, type ScheduleQuery, type ScheduleStore } from './schedule-store.js';

/*
 * Keys, under the job store's hash tag (one Cluster slot, like every other key of a prefix):
 *   {p}:sched:<tenant>:<id>  hash    v: the version, json: the ScheduleRecord
 *   {p}:sched-ids            zset    "<tenant>\n<id>", all scores 0: lexical order = tenant, then id
 *   {p}:sched-due            zset    "<tenant>\n<id>" of each schedule not paused, score its nextRunAt
 *   {p}:sched-changed        channel  a message on every save and delete (wakes idle schedulers)
 */

/** Compare-and-set of a schedule with its two indexes; refuses a creation over the tenant's limit. */
const SAVE_LUA = `-- KEYS: schedule hash, ids zset, due zset, changed channel
-- ARGV: member, json, expected version, new version, due score ('' = not due), most per tenant (0 = no limit),
-- the tenant's lexical range (min, max)
local stored = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if stored ~= tonumber(ARGV[3]) then return 'conflict' end
if stored == 0 and tonumber(ARGV[6]) > 0 and redis.call('ZLEXCOUNT', KEYS[2], ARGV[7], ARGV[8]) >= tonumber(ARGV[6]) then
  return 'too-many'
end
redis.call('HSET', KEYS[1], 'v', ARGV[4], 'json', ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[5] == '' then redis.call('ZREM', KEYS[3], ARGV[1]) else redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1]) end
redis.call('PUBLISH', KEYS[4], ARGV[5])
return 'saved'`;

const DELETE_LUA = `-- KEYS: schedule hash, ids zset, due zset, changed channel; ARGV: member
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local deleted = redis.call('DEL', KEYS[1])
if deleted == 1 then redis.call('PUBLISH', KEYS[4], '') end
return deleted`;

/** Schedules read per round of a filtered listing. */
const LIST_BATCH = 200;

export class RedisScheduleStore implements ScheduleStore {
  constructor(
    private readonly redis: RedisClient,
    /** The job store's key base, `{prefix}:`. */
    private readonly base: string,
    private readonly options: { commandTimeoutMs: number },
  ) {
    this.changes = new ChannelListeners(redis, this.key.changed(), () => true, options.commandTimeoutMs);
  }

  private readonly key = {
    schedule: (tenant: string, id: string) => `${this.base}sched:${tenant}:${id}`,
    ids: () => `${this.base}sched-ids`,
    due: () => `${this.base}sched-due`,
    changed: () => `${this.base}sched-changed`,
  };
  private readonly changes: ChannelListeners<true>;

  async get(tenant: string, id: string): Promise<ScheduleRecord | undefined> {
    const json = await this.guard(() => this.redis.hget(this.key.schedule(tenant, id), 'json'));
    return json === null ? undefined : (JSON.parse(json) as ScheduleRecord);
  }

  async save(
    record: ScheduleRecord,
    expectedVersion: number,
    options: { maxPerTenant?: number } = {},
  ): Promise<'saved' | 'conflict' | 'too-many'> {
    const due = !record.paused && record.nextRunAt !== null ? String(record.nextRunAt) : '';
    return (await this.guard(() =>
      this.redis.eval(
        SAVE_LUA,
        4,
        this.key.schedule(record.tenant, record.id),
        this.key.ids(),
        this.key.due(),
        this.key.changed(),
        scheduleCursor(record),
        JSON.stringify(record),
        expectedVersion,
        record.version,
        due,
        options.maxPerTenant ?? 0,
        `[${record.tenant}\n`,
        `(${record.tenant}\u000b`,
      ),
    )) as 'saved' | 'conflict' | 'too-many';
  }

  async delete(tenant: string, id: string): Promise<boolean> {
    const removed = await this.guard(() =>
      this.redis.eval(
        DELETE_LUA,
        4,
        this.key.schedule(tenant, id),
        this.key.ids(),
        this.key.due(),
        this.key.changed(),
        scheduleCursor({ tenant, id }),
      ),
    );
    return removed === 1;
  }

  async list(query: ScheduleQuery): Promise<{ schedules: ScheduleRecord[]; nextAfter: string | null }> {
    // The tenant's members lie between "<tenant>\n" and "<tenant>\v" ('\v' follows '\n').
    const end = query.tenant === undefined ? '+' : `(${query.tenant}\u000b`;
    let start =
      query.after !== undefined
        ? `(${query.tenant === undefined ? query.after : scheduleCursor({ tenant: query.tenant, id: query.after })}`
        : query.tenant === undefined
          ? '-'
          : `[${query.tenant}\n`;
    const schedules: ScheduleRecord[] = [];
    for (;;) {
      const members = await this.guard(() =>
        this.redis.zrangebylex(this.key.ids(), start, end, 'LIMIT', 0, LIST_BATCH),
      );
      const records = await this.read(members);
      for (const record of records) {
        if (!record) continue;
        if (query.type !== undefined && record.type !== query.type) continue;
        if (query.paused !== undefined && record.paused !== query.paused) continue;
        if (schedules.length === query.limit) {
          const last = schedules.at(-1)!;
          return { schedules, nextAfter: query.tenant === undefined ? scheduleCursor(last) : last.id };
        }
        schedules.push(record);
      }
      if (members.length < LIST_BATCH) return { schedules, nextAfter: null };
      start = `(${members.at(-1)!}`;
    }
  }

  async due(now: number, max: number): Promise<ScheduleRecord[]> {
    const members = await this.guard(() => this.redis.zrangebyscore(this.key.due(), '-inf', now, 'LIMIT', 0, max));
    return (await this.read(members)).filter((record): record is ScheduleRecord => record !== undefined);
  }

  async nextDueAt(): Promise<number | null> {
    const first = await this.guard(() => this.redis.zrange(this.key.due(), 0, 0, 'WITHSCORES'));
    return first.length === 2 ? Number(first[1]) : null;
  }

  subscribe(listener: () => void): Promise<() => void> {
    return this.changes.add(listener);
  }

  async close(): Promise<void> {
    this.changes.clear();
  }

  private async read(members: string[]): Promise<(ScheduleRecord | undefined)[]> {
    if (members.length === 0) return [];
    const jsons = await this.guard(() =>
      Promise.all(
        members.map((member) => {
          const split = member.indexOf('\n');
          return this.redis.hget(this.key.schedule(member.slice(0, split), member.slice(split + 1)), 'json');
        }),
      ),
    );
    return jsons.map((json) => (json === null ? undefined : (JSON.parse(json) as ScheduleRecord)));
  }

  private guard<T>(operation: () => Promise<T>): Promise<T> {
    return guardRedis(operation, this.options.commandTimeoutMs);
  }
}
