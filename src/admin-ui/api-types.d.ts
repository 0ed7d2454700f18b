// The admin API's answers as the dashboard reads them, for the JSDoc types of src/admin-ui/*.js
// (`@import { Job } from './api-types.js'`). The contract itself is in src/routes/ (and openapi.yaml); these
// are the page's reading of it: most fields are optional because the page also talks to older instances
// and leaves out what is missing rather than breaking. Types only: nothing here reaches the browser.

/** GET /admin/session and POST /admin/session. */
export interface Session {
  role: string;
  key_id: string;
  expires_at?: string;
  /** `session`: the cookie; `loopback`: no keys are configured and the browser is on the loopback address. */
  via: string;
}

/** An application/problem+json answer. */
export interface Problem {
  title?: string;
  detail?: string;
  code?: string;
  errors?: { pointer?: string }[];
}

export type Counts = Partial<Record<string, number>>;

/** This instance's worker pool, in GET /admin/stats. */
export interface PoolStats {
  worker_id?: string;
  busy?: number;
  concurrency?: number;
  started?: number;
  succeeded?: number;
  failed?: number;
}

/** GET /admin/stats, also the `stats` event of GET /admin/events. */
export interface Stats {
  counts?: Counts;
  by_type?: Record<string, Counts>;
  queue_depth?: number;
  delayed?: number;
  oldest_queued_age_s?: number | null;
  finished_last_minute?: number;
  /** The tenants with the most queued jobs (then running), most first. */
  tenants?: TenantLoad[];
  /** Per type with `key_concurrency`: concurrency keys whose ready jobs wait because the key's cap is reached. */
  keys_at_cap?: Record<string, number>;
  pool?: PoolStats;
}

/** One tenant's backlog, in GET /admin/stats. */
export interface TenantLoad {
  /** `-`: the anonymous tenant of an open API. */
  tenant?: string;
  queued?: number;
  running?: number;
}

export interface TypePause {
  by: string;
  reason: string;
  at: string;
}

/** One entry of GET /admin/types. */
export interface TypeInfo {
  type: string;
  paused?: TypePause | null;
  counts?: Counts;
  queued?: number;
  running?: number;
  live_workers?: number;
  alarm?: boolean;
}

/** One entry of GET /admin/workers (the fleet's worker registry). */
export interface Worker {
  id?: string;
  /** `in-process` (a pool of an instance) or `remote` (a worker process pulling over HTTP). */
  kind?: string;
  /** A remote worker's own name (null for in-process pools). */
  name?: string | null;
  labels?: Record<string, string>;
  key_name?: string | null;
  state?: string;
  host?: string;
  pid?: number;
  version?: string;
  beat_age_s?: number;
  slots_total?: number;
  slots_busy?: number;
  job_ids?: unknown[];
  leases_lost?: number;
  draining?: boolean;
}

/** A list answer: `{data, next_cursor}`. */
export interface Page<T> {
  data?: T[];
  next_cursor?: string | null;
}

export interface JobError {
  code: string;
  title?: string;
  detail: string;
  retryable?: boolean;
}

export interface AttemptError {
  code?: string;
  detail?: string;
  message?: string;
  stack?: string | null;
}

/** One ended (or, as the page adds it, running) attempt of GET /admin/jobs/{id}. */
export interface Attempt {
  attempt: number;
  worker_id?: string | null;
  started_at?: string | null;
  ended_at?: string | null;
  outcome?: string;
  error?: AttemptError | string | null;
}

export interface LogLine {
  at: string;
  attempt?: number;
  level?: string;
  message?: string;
}

/** An admin Job (GET /admin/jobs), with its timeline and logs from GET /admin/jobs/{id}. */
export interface Job {
  id: string;
  type: string;
  status: string;
  done?: boolean;
  input?: unknown;
  result?: unknown;
  metadata?: Record<string, unknown>;
  priority?: number;
  progress?: { percent?: number | null; step?: string | null; message?: string | null; updated_at?: string | null };
  error?: JobError | null;
  attempt: number;
  max_attempts: number;
  version?: number;
  created_at: string;
  run_at?: string;
  started_at?: string | null;
  updated_at?: string;
  completed_at?: string | null;
  expires_at?: string | null;
  cached_from?: string | null;
  webhook?: { url: string; last_delivery?: { status: string } | null } | null;
  tenant?: string | null;
  /** Groups the tenant's jobs for the type's `key_concurrency` cap. */
  concurrency_key?: string | null;
  /** The recurring schedule that made it (its id, unique within the job's tenant), and the fire time it was made for. */
  schedule_id?: string | null;
  scheduled_for?: string | null;
  /** Why a queued job is not running yet: read as text, or as its fields when it is an object. */
  waiting_for?: unknown;
  worker_id?: string | null;
  attempts?: Attempt[];
  logs?: LogLine[];
}

/** POST /admin/bulk with `dry_run: true`. */
export interface BulkDryRun {
  count?: number;
  truncated?: boolean;
  snapshot?: string;
  expires_at?: string;
}

/** POST /admin/bulk. */
export interface BulkOutcome {
  affected?: number;
  skipped?: number;
}

/** A recurring schedule as GET /admin/schedules and GET /admin/schedules/{tenant}/{id} show it (the Schedule of /v1, and its tenant). */
export interface Schedule {
  id: string;
  tenant: string;
  /** A cron expression, or null for an `every_s` schedule. */
  cron?: string | null;
  every_s?: number | null;
  /** IANA timezone the cron expression is read in. */
  timezone?: string;
  type: string;
  input?: unknown;
  metadata?: Record<string, string>;
  priority?: number;
  max_attempts?: number | null;
  timeout_s?: number | null;
  concurrency_key?: string | null;
  /** `skip`: a fire time whose previous job is still queued or running makes none. */
  overlap?: string;
  /** After fire times were missed: `none`, `latest` or `all`. */
  catch_up?: string;
  start_at?: string | null;
  end_at?: string | null;
  paused: boolean;
  /** Null while paused, or once no fire time is left. */
  next_run_at?: string | null;
  last_run_at?: string | null;
  /** The latest job it made, with that job's status now (`gone` once deleted or expired). */
  last_job?: { id: string; status: string } | null;
  fires?: { created?: number; skipped?: number; missed?: number };
  created_at?: string;
  updated_at?: string;
  version?: number;
}
