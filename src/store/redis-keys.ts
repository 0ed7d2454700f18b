import type { JobStatus } from '../jobs/job.js';

/**
 * Every Redis key and channel the service uses, spelled here and nowhere else. The Lua scripts get
 * the same spellings through `luaKeyHelpers`, which is prepended to each script.
 *
 * All keys of one partition share its hash tag, so each script touches one Redis Cluster slot: `{<prefix>}` for the
 * first (the base partition: what a store of one partition has always used), the tags in `{<prefix>}:partitions` for
 * the others (redis-job-store.ts). `{p}` below is the partition's tag.
 *
 *   {p}:job:<id>            hash   one job (fields: see redis-job-store.ts `fields`)
 *   The fair queue of a type (fair-queue.lua): the queued jobs whose run_at has come, by tenant and concurrency key
 *   {p}:fq:<type>:<tenant>:<key>  zset  one flow: a tenant's ready jobs with one concurrency key ('' = none);
 *                                       score (100 - priority)·2^42 + run_at ms
 *   {p}:ft:<type>:<tenant>  zset   the tenant's flows a claim may take from (member: the key); score: head's priority
 *                                  band·2^42 + head's run_at, or (fair_by key) + the key's round
 *   {p}:fr:<type>           zset   tenants with a flow a claim may take from; score: best band·2^42 + the tenant's round
 *   {p}:fh:<type>           hash   c:<tenant>: claims a tenant of weight > 1 took in its current round
 *   {p}:krun:<type>         hash   "<tenant>\n<key>" -> jobs with that key running
 *   {p}:kcap:<type>         set    "<tenant>\n<key>": flows held back at key_concurrency (out of ft until a job ends)
 *   {p}:ready:<type>        zset   (before the fair queue) ready jobs; moved into it at start-up
 *   {p}:delayed:<type>      zset   queued jobs waiting for run_at (delay, retry backoff); score run_at ms
 *   {p}:leases              zset   running jobs; score = lease expiry ms
 *   {p}:rate:<type>         zset   claims of a rate-limited type in its current window; score = claim time ms
 *   {p}:idx:<status>:<type> zset   listing index; all scores 0, members ids, so lexical order = creation order
 *   {p}:tidx:<tenant>:<status>:<type>  zset  the same for one tenant (API keys); none for the open tenant '-'
 *   {p}:tenants             set    every tenant (other than '-') that ever submitted
 *   {p}:expiry              zset   finished jobs; score = expires_at ms (the sweeper drops them from the indexes)
 *   {p}:gone:<id>           string when a deleted or expired job went (ms); kept JOB_TTL_S so pollers get 410
 *   {p}:idem:<tenant>:<sha256 of the key>  string  "<job id> <request fingerprint>", kept IDEMPOTENCY_TTL_S
 *   {p}:types               set    every job type ever submitted
 *   {p}:finished            hash   epoch second -> jobs finished in that second (kept 2 minutes)
 *   {p}:clock               string the latest time a claim or finish used: times never go backwards
 *   {p}:wh:<job id>:<version>  hash  a webhook delivery not yet settled (event, url, job: the packed job, created, attempts)
 *   {p}:wh-due              zset   webhook deliveries; score = when due (or when the lease of an attempt in flight lapses)
 *   {p}:cache:<sha256>      string the job whose result a submit with the same tenant, type and input reuses (result reuse);
 *                                  no expiry while it runs, the type's cache TTL once it succeeded
 *   {p}:followers:<id>      set    jobs that finish when job <id> finishes (submitted while it was queued or running)
 *   {p}:logs:<id>           list   the job's ctx.log lines (JSON), the last LOG_LINES_MAX; expire with the job
 *   {p}:ratelimit:…         string the /v1 rate limit's counters (@fastify/rate-limit's own keys under this prefix)
 *   {p}:events              channel  JSON StoreEvent messages (new work, cancel of a running job, webhook due)
 * In the base partition only:
 *   {p}:partitions          hash   epoch: when partitioned ids began (ms); tags: JSON array of every partition's tag
 *   {p}:fleet-running:<type>  zset  with several partitions, the type's running jobs under max_concurrency: member
 *                                   "<job id> <lease id>" (or a grant held by a claim, "g:<lease id>:<n>"); score: until when
 *   {p}:fleet-rate:<type>   zset   with several partitions, the type's claims in its rate window; score: claim time ms
 *   {p}:fleet-limited       set    the types with a fleet-running set
 *   {p}:changed:<id>        channel  the job's new version, on every change (for long-polls and event streams)
 */
export class RedisKeys {
  readonly base: string;

  constructor(prefix: string) {
    this.base = `{${prefix}}:`;
  }
  /** The prefix under which the /v1 rate limit keeps its counters. */
  get rateLimitPrefix(): string {
    return `${this.base}ratelimit:`;
  }

  job = (id: string): string => `${this.base}job:${id}`;
  /** Before the fair queue: a type's ready jobs (moved into the fair queue at start-up). */
  legacyReady = (type: string): string => `${this.base}ready:${type}`;
  fairTenants = (type: string): string => `${this.base}fr:${type}`;
  keyRunning = (type: string): string => `${this.base}krun:${type}`;
  keysAtCap = (type: string): string => `${this.base}kcap:${type}`;
  delayed = (type: string): string => `${this.base}delayed:${type}`;
  index = (status: JobStatus, type: string): string => `${this.base}idx:${status}:${type}`;
  tenantIndex = (tenant: string, status: JobStatus, type: string): string =>
    `${this.base}tidx:${tenant}:${status}:${type}`;
  rate = (type: string): string => `${this.base}rate:${type}`;
  gone = (id: string): string => `${this.base}gone:${id}`;
  idempotency = (tenant: string, keyHash: string): string => `${this.base}idem:${tenant}:${keyHash}`;
  get leases(): string {
    return `${this.base}leases`;
  }
  get expiry(): string {
    return `${this.base}expiry`;
  }
  get tenants(): string {
    return `${this.base}tenants`;
  }
  get types(): string {
    return `${this.base}types`;
  }
  get finished(): string {
    return `${this.base}finished`;
  }
  get clock(): string {
    return `${this.base}clock`;
  }
  changed = (id: string): string => `${this.base}changed:${id}`;
  webhook = (deliveryId: string): string => `${this.base}wh:${deliveryId}`;
  cache = (digest: string): string => `${this.base}cache:${digest}`;
  logs = (id: string): string => `${this.base}logs:${id}`;
  get webhooksDue(): string {
    return `${this.base}wh-due`;
  }
  get events(): string {
    return `${this.base}events`;
  }
  get partitions(): string {
    return `${this.base}partitions`;
  }
  fleetRunning = (type: string): string => `${this.base}fleet-running:${type}`;
  fleetRate = (type: string): string => `${this.base}fleet-rate:${type}`;

  /** Lua functions with the same spellings, prepended to every script. */
  static luaKeyHelpers(): string {
    return [
      // Every script's first key is one of this base's keys: the partition it runs in (redis-job-store.ts) is read
      // from it, so one script text serves every partition.
      `local KEY_BASE = string.match(KEYS[1], '^{[^}]*}:')`,
      `local function job_key(id) return KEY_BASE .. 'job:' .. id end`,
      `local function legacy_ready_key(t) return KEY_BASE .. 'ready:' .. t end`,
      `local function flow_key(t, tenant, k) return KEY_BASE .. 'fq:' .. t .. ':' .. tenant .. ':' .. k end`,
      `local function flows_key(t, tenant) return KEY_BASE .. 'ft:' .. t .. ':' .. tenant end`,
      `local function fair_tenants_key(t) return KEY_BASE .. 'fr:' .. t end`,
      `local function fair_hash_key(t) return KEY_BASE .. 'fh:' .. t end`,
      `local function key_running_key(t) return KEY_BASE .. 'krun:' .. t end`,
      `local function key_cap_key(t) return KEY_BASE .. 'kcap:' .. t end`,
      `local function delayed_key(t) return KEY_BASE .. 'delayed:' .. t end`,
      `local function index_key(s, t) return KEY_BASE .. 'idx:' .. s .. ':' .. t end`,
      `local function rate_key(t) return KEY_BASE .. 'rate:' .. t end`,
      `local function tenant_index_key(tenant, s, t) return KEY_BASE .. 'tidx:' .. tenant .. ':' .. s .. ':' .. t end`,
      `local TENANTS_KEY = KEY_BASE .. 'tenants'`,
      `local function gone_key(id) return KEY_BASE .. 'gone:' .. id end`,
      `local LEASES_KEY = KEY_BASE .. 'leases'`,
      `local EXPIRY_KEY = KEY_BASE .. 'expiry'`,
      `local TYPES_KEY = KEY_BASE .. 'types'`,
      `local FINISHED_KEY = KEY_BASE .. 'finished'`,
      `local CLOCK_KEY = KEY_BASE .. 'clock'`,
      `local EVENTS_CHANNEL = KEY_BASE .. 'events'`,
      `local function changed_channel(id) return KEY_BASE .. 'changed:' .. id end`,
      `local function webhook_key(delivery) return KEY_BASE .. 'wh:' .. delivery end`,
      `local WEBHOOKS_DUE_KEY = KEY_BASE .. 'wh-due'`,
      `local function followers_key(id) return KEY_BASE .. 'followers:' .. id end`,
      `local function logs_key(id) return KEY_BASE .. 'logs:' .. id end`,
      `local function fleet_running_key(t) return KEY_BASE .. 'fleet-running:' .. t end`,
      `local function fleet_rate_key(t) return KEY_BASE .. 'fleet-rate:' .. t end`,
      `local FLEET_LIMITED_KEY = KEY_BASE .. 'fleet-limited'`,
      '',
    ].join('\n');
  }
}
