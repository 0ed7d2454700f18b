/**
 * Every error the HTTP API can answer with: a stable machine `code`, its HTTP status and a title.
 * Clients see them as application/problem+json (RFC 9457); `type` is `/problems/<code>`, served by the API.
 */
export const problemCatalog = {
  'bad-request': {
    status: 400,
    title: 'Bad request',
    about: 'A query parameter, path parameter or header is invalid; `errors` names it.',
  },
  'malformed-json': {
    status: 400,
    title: 'Malformed JSON body',
    about: 'The request body is not valid JSON (or not valid UTF-8).',
  },
  'malformed-request': {
    status: 400,
    title: 'Malformed HTTP request',
    about:
      'The HTTP parser refused the request: a bad request line or method, a bad header line, a bad chunked encoding, or body bytes sent without a Content-Length (which then read as the next request). The connection is closed.',
  },
  'invalid-preflight': {
    status: 400,
    title: 'Invalid CORS preflight',
    about:
      'An OPTIONS request to the /v1 API is a CORS preflight: it needs both an `Origin` and an `Access-Control-Request-Method` header.',
  },
  unauthorized: {
    status: 401,
    title: 'Unauthorized',
    about: 'The request needs a valid `Authorization: Bearer <token>` header.',
  },
  forbidden: {
    status: 403,
    title: 'Forbidden',
    about:
      'The credentials are valid but do not allow this request (admin routes answer only loopback clients when ADMIN_TOKEN is unset).',
  },
  'not-found': { status: 404, title: 'Not found', about: 'No such route.' },
  'job-not-found': {
    status: 404,
    title: 'Job not found',
    about: 'No job has this id: it never existed, was deleted, or expired after JOB_TTL_S.',
  },
  'job-gone': {
    status: 410,
    title: 'Job gone',
    about:
      'The job was deleted, purged or expired (at `gone_at`); it will not come back, so stop polling it. Ids that never existed answer 404.',
  },
  'method-not-allowed': {
    status: 405,
    title: 'Method not allowed',
    about: 'The route exists but not with this method.',
  },
  'request-timeout': {
    status: 408,
    title: 'Request timeout',
    about: 'The request (headers and body) did not arrive in full in time; the connection is closed.',
  },
  'job-failed': {
    status: 409,
    title: 'Job failed',
    about: 'The job ended in `failed`; `job.error` says why. There is no result.',
  },
  'job-canceled': { status: 409, title: 'Job canceled', about: 'The job was canceled; there is no result.' },
  'job-not-retryable': {
    status: 409,
    title: 'Job cannot be retried',
    about: 'Only failed or canceled jobs can be retried.',
  },
  'job-not-delayed': {
    status: 409,
    title: 'Job is not delayed',
    about: 'Only a queued job waiting for a later run_at can be run now.',
  },
  'worker-not-found': {
    status: 404,
    title: 'Worker not found',
    about:
      'No worker with this id is in the registry: workers appear once they beat (a remote worker once it registered), and are forgotten an hour after their last beat (a remote worker also once it deregistered). A remote worker is known only to the worker key that registered it.',
  },
  'lease-not-found': {
    status: 404,
    title: 'Lease not found',
    about:
      'No lease has this id: it is not an id the service handed out (`<job id>.<lease>`), or a worker of another key holds it.',
  },
  'lease-lost': {
    status: 409,
    title: 'Lease lost',
    about:
      "The lease no longer holds its job: it lapsed (no call from the worker for lease_s), the job timed out, was canceled or deleted, or another worker holds it now. Nothing was changed (a late outcome is noted in the job's log); drop the job.",
  },
  'not-a-worker-key': {
    status: 403,
    title: 'Not a worker key',
    about:
      'The worker endpoints (/v1/workers, /v1/leases) take a worker key (WORKER_KEYS); this is an API or admin key.',
  },
  'worker-key-not-allowed': {
    status: 403,
    title: 'Worker key not allowed',
    about: 'A worker key (WORKER_KEYS) calls the worker endpoints only: it cannot read or submit jobs. Use an API key.',
  },
  'type-not-allowed': {
    status: 403,
    title: 'Job type not allowed',
    about:
      'The worker key is scoped to some job types (WORKER_KEYS `key:name:type1|type2`) and this type is not among them.',
  },
  'schedule-not-found': {
    status: 404,
    title: 'Schedule not found',
    about:
      "None of your schedules has this id: it never existed or was deleted (another tenant's schedules answer as unknown).",
  },
  'schedule-exists': {
    status: 409,
    title: 'Schedule exists',
    about:
      'POST /v1/schedules named an id one of your schedules already has, with another definition (the same definition answers 200 with the schedule). PUT /v1/schedules/{id} replaces it; or choose another id.',
  },
  'too-many-schedules': {
    status: 409,
    title: 'Too many schedules',
    about:
      'The tenant already has MAX_SCHEDULES_PER_TENANT schedules: delete one before creating another (waiting does not help, so this is not a 429).',
  },
  'job-type-not-declared': {
    status: 404,
    title: 'Job type not declared',
    about:
      'No operator declared this job type (PUT /admin/job-types/{type}); the types in-process handlers serve are not declared.',
  },
  'job-type-in-use': {
    status: 409,
    title: 'Job type in use',
    about:
      'Jobs of this declared type are queued or running: cancel them (or let them finish) before removing the type. `active` says how many.',
  },
  'job-type-served-in-process': {
    status: 409,
    title: 'Job type served in process',
    about:
      'An in-process handler of this service serves this type, so it cannot be declared for remote workers; choose another name.',
  },
  'snapshot-mismatch': {
    status: 409,
    title: 'Snapshot made for another action',
    about:
      'The bulk snapshot was made by a dry run of another action; it is spent. Make a new dry run for this action.',
  },
  'snapshot-gone': {
    status: 410,
    title: 'Snapshot gone',
    about:
      'The bulk snapshot token is unknown, expired (10 minutes after its dry run) or already used: a snapshot acts once. Make a new dry run.',
  },
  'payload-too-large': {
    status: 413,
    title: 'Payload too large',
    about: 'The request body is larger than BODY_LIMIT_BYTES.',
  },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported media type',
    about: 'Send the body as `Content-Type: application/json`.',
  },
  'expectation-failed': {
    status: 417,
    title: 'Expectation failed',
    about: 'The `Expect` header asks for something other than `100-continue`, which is all this service understands.',
  },
  'validation-failed': {
    status: 422,
    title: 'Validation failed',
    about: 'The JSON body is well formed but some fields are invalid; `errors[].pointer` is a JSON Pointer to each.',
  },
  'json-too-deep': {
    status: 422,
    title: 'JSON nested too deep',
    about:
      'The JSON body nests arrays and objects deeper than 64 levels (the body itself is level 1). `errors[].pointer` names the value that is too deep (or, when that pointer would be very long, an ancestor of it).',
  },
  'idempotency-key-reused': {
    status: 422,
    title: 'Idempotency key reused',
    about: 'The Idempotency-Key was already used with a different request body; use a new key for a new job.',
  },
  'unknown-job-type': {
    status: 422,
    title: 'Unknown job type',
    about: 'The `type` is not enabled on this service; the detail lists the known types (also at GET /v1/job-types).',
  },
  'too-many-active-jobs': {
    status: 429,
    title: 'Too many active jobs',
    about: 'The tenant already has MAX_ACTIVE_JOBS_PER_TENANT jobs queued or running; retry once some have finished.',
  },
  'rate-limited': {
    status: 429,
    title: 'Too many requests',
    about:
      'This API key (or address, when the API is open) sent more than RATE_LIMIT_PER_MIN requests in a minute; retry after `Retry-After` seconds. Conditional polls (If-None-Match) have a budget of their own, ten times larger.',
  },
  'headers-too-large': {
    status: 431,
    title: 'Request header fields too large',
    about:
      'The request line and headers together (a long URL or query string counts) are larger than the server reads (16 KiB); the connection is closed.',
  },
  'internal-error': {
    status: 500,
    title: 'Internal server error',
    about: 'A fault of the service. The log has the details under the request id.',
  },
  'store-unavailable': {
    status: 503,
    title: 'Job store unavailable',
    about:
      'Redis cannot be reached right now. Retry after `Retry-After` seconds; nothing was changed by this request unless it was a create, which may have been stored.',
  },
  'shutting-down': {
    status: 503,
    title: 'Shutting down',
    about: 'The instance is stopping; retry, another instance (or this one after restart) will answer.',
  },
} as const satisfies Record<string, { status: number; title: string; about: string }>;

export type ProblemCode = keyof typeof problemCatalog;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The problem type of a job's `error` (not an HTTP response): its `code` says which failure. */
export const jobErrorAbout =
  'A job attempt failed. `code` is `handler-error` (the handler threw), `timeout` (the attempt ran past timeout_s), `lease-expired` (its worker crashed or hung), `invalid-input` (the input no longer fits the type), or a code the handler chose; `retryable` says whether another attempt may follow.';

export interface FieldError {
  /** JSON Pointer into the body (`/input/ms`), or the name of a query/path parameter or header. */
  pointer: string;
  detail: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** An error that becomes a problem+json response. `extensions` become extra members of the problem. */
export class HttpProblem extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    detail: string,
    readonly options: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      extensions?: Record<string, unknown>;
    } = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
    this.status = problemCatalog[code].status;
  }

  toProblem(): Problem {
    return problem(this.code, this.message, this.options.errors, this.options.extensions);
  }
}

export function problem(
  code: ProblemCode,
  detail: string,
  errors?: FieldError[],
  extensions?: Record<string, unknown>,
): Problem {
  const entry = problemCatalog[code];
  return {
    type: `/problems/${code}`,
    title: entry.title,
    status: entry.status,
    detail,
    code,
    ...(errors && errors.length > 0 ? { errors } : {}),
    ...extensions,
  };
}
