import type { JobResource } from '../routes/job-view.js';

// Remote workers (the pull-worker protocol): part of this entry, `async-job-service/client`.
export {
  runWorker,
  WorkerProtocolError,
  type RemoteAbortReason,
  type RemoteJob,
  type RemoteJobContext,
  type RemoteJobLog,
  type RemoteLogLevel,
  type RemoteWorkerHandle,
  type RunWorkerLogger,
  type RunWorkerOptions,
} from './run-worker.js';

/**
 * A small typed client for the service, over `fetch` only, so it runs in browsers and in Node 20+.
 * `wait` follows a job over its event stream (read with fetch, so it can send Authorization, unlike
 * EventSource) and falls back to long-polling when streaming is not possible.
 */
export type Job = JobResource;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { pointer: string; detail: string }[];
  [extension: string]: unknown;
}

/** An answer of the service that is an error (application/problem+json). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.code}: ${problem.detail}`);
    this.name = 'ApiError';
  }

  /** The Job a `job-failed` / `job-canceled` problem carries. */
  get job(): Job | undefined {
    return this.problem.job as Job | undefined;
  }
}

export interface ClientOptions {
  /** Where the service is, e.g. `https://jobs.example.com` (or '' for the page's own origin). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  fetch?: typeof fetch;
}

export interface SubmitOptions {
  metadata?: Record<string, string>;
  priority?: number;
  delayS?: number;
  runAt?: string;
  maxAttempts?: number;
  timeoutS?: number;
  /** Makes retrying the submit safe: a repeat returns the same job. */
  idempotencyKey?: string;
  /** Hold the answer up to this many seconds (≤ 60) for the job to finish. */
  waitS?: number;
  /** POST signed events to this URL (the service needs WEBHOOK_SECRET); default events: the terminal ones. */
  webhook?: { url: string; events?: NonNullable<Job['webhook']>['events'] };
  /** Run even if the type reuses results (Cache-Control: no-cache). */
  noCache?: boolean;
  /** Groups the job for its type's `key_concurrency` cap and `fair_by: "key"` turns (a customer id, a document id). */
  concurrencyKey?: string;
}

export interface WaitOptions {
  /** Give up after this long (the job goes on); default: no limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with the Job (or its progress) as it changes. */
  onUpdate?: (job: Job) => void;
}

export interface ListQuery {
  status?: Job['status'][];
  type?: string;
  createdAfter?: string;
  createdBefore?: string;
  limit?: number;
  cursor?: string;
  order?: 'asc' | 'desc';
  idempotencyKey?: string;
}

const LONG_POLL_S = 30;

export class JobsClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async submit(type: string, input: unknown = {}, options: SubmitOptions = {}): Promise<Job> {
    const body = {
      type,
      input,
      ...(options.metadata ? { metadata: options.metadata } : {}),
      ...(options.priority !== undefined ? { priority: options.priority } : {}),
      ...(options.delayS !== undefined ? { delay_s: options.delayS } : {}),
      ...(options.runAt !== undefined ? { run_at: options.runAt } : {}),
      ...(options.maxAttempts !== undefined ? { max_attempts: options.maxAttempts } : {}),
      ...(options.timeoutS !== undefined ? { timeout_s: options.timeoutS } : {}),
      ...(options.webhook ? { webhook: options.webhook } : {}),
      ...(options.concurrencyKey !== undefined ? { concurrency_key: options.concurrencyKey } : {}),
    };
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    if (options.waitS !== undefined) headers.prefer = `wait=${options.waitS}`;
    if (options.noCache) headers['cache-control'] = 'no-cache';
    return this.json<Job>('POST', '/v1/jobs', { body: JSON.stringify(body), headers });
  }

  async get(id: string): Promise<Job> {
    return this.json<Job>('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }

  /** The handler's result; throws ApiError (`job-failed`, `job-canceled`, with `.job`) when there is none. Waits for it first. */
  async result<T = unknown>(id: string, options: WaitOptions = {}): Promise<T> {
    await this.wait(id, options);
    return this.json<T>('GET', `/v1/jobs/${encodeURIComponent(id)}/result`);
  }

  async cancel(id: string): Promise<Job> {
    return this.json<Job>('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }

  async delete(id: string): Promise<void> {
    await this.request('DELETE', `/v1/jobs/${encodeURIComponent(id)}`);
  }

  async list(query: ListQuery = {}): Promise<{ data: Job[]; next_cursor: string | null }> {
    const params = new URLSearchParams();
    if (query.status?.length) params.set('status', query.status.join(','));
    if (query.type) params.set('type', query.type);
    if (query.createdAfter) params.set('created_after', query.createdAfter);
    if (query.createdBefore) params.set('created_before', query.createdBefore);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor) params.set('cursor', query.cursor);
    if (query.order) params.set('order', query.order);
    if (query.idempotencyKey) params.set('idempotency_key', query.idempotencyKey);
    const search = params.toString();
    return this.json('GET', `/v1/jobs${search ? `?${search}` : ''}`);
  }

  /** Resolves with the Job once it is done (check `status`); follows its event stream, else long-polls. */
  async wait(id: string, options: WaitOptions = {}): Promise<Job> {
    const signal = withTimeout(options.signal, options.timeoutMs);
    try {
      return await this.waitByStream(id, signal, options.onUpdate);
    } catch (error) {
      if (error instanceof ApiError || signal.aborted) throw error;
      return this.waitByPolling(id, signal, options.onUpdate); // no streaming here (a proxy, an old runtime)
    }
  }

  private async waitByStream(id: string, signal: AbortSignal, onUpdate?: (job: Job) => void): Promise<Job> {
    let lastEventId: string | undefined;
    let latest: Job | undefined;
    for (;;) {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastEventId) headers['last-event-id'] = lastEventId;
      const response = await this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/events`, { headers, signal });
      if (response.status === 204) return latest ?? (await this.get(id)); // done before this reconnect
      if (!response.body) throw new Error('no response stream');
      for await (const event of readEvents(response.body)) {
        lastEventId = event.id ?? lastEventId;
        const data = JSON.parse(event.data) as Job | { version: number; progress: Job['progress'] };
        if (event.event === 'progress' && latest) latest = { ...latest, ...(data as Partial<Job>) };
        else if (event.event !== 'progress') latest = data as Job;
        if (latest) onUpdate?.(latest);
        if (event.event === 'done') return latest!;
      }
      // The stream ended without `done` (a restart, a proxy): reconnect, resuming after the last event.
    }
  }

  private async waitByPolling(id: string, signal: AbortSignal, onUpdate?: (job: Job) => void): Promise<Job> {
    let job = await this.get(id);
    while (!job.done) {
      const response = await this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`, {
        headers: { 'if-none-match': `"v${job.version}"`, prefer: `wait=${LONG_POLL_S}` },
        signal,
      });
      if (response.status === 200) {
        job = (await response.json()) as Job;
        onUpdate?.(job);
      }
    }
    return job;
  }

  private async json<T>(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const response = await this.request(method, path, init);
    return (await response.json()) as T;
  }

  /** Any 4xx/5xx becomes an ApiError carrying the problem. */
  private async request(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    const response = await this.fetch(`${this.options.baseUrl}${path}`, {
      method,
      headers,
      body: init.body,
      signal: init.signal,
    });
    if (response.status >= 400) {
      const text = await response.text();
      let problem: Problem;
      try {
        problem = JSON.parse(text) as Problem;
      } catch {
        problem = {
          type: 'about:blank',
          title: response.statusText,
          status: response.status,
          detail: text,
          code: 'http-error',
        };
      }
      throw new ApiError(response.status, problem);
    }
    return response;
  }
}

interface ServerSentEvent {
  event: string;
  id?: string;
  data: string;
}

/** Parses a text/event-stream body into events (comments such as `: ping` are skipped). */
async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const event: ServerSentEvent = { event: 'message', data: '' };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.event = value;
          else if (field === 'id') event.id = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length > 0) yield { ...event, data: data.join('\n') };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function withTimeout(signal: AbortSignal | undefined, timeoutMs: number | undefined): AbortSignal {
  const signals = [signal, timeoutMs !== undefined ? AbortSignal.timeout(timeoutMs) : undefined].filter(
    (each): each is AbortSignal => each !== undefined,
  );
  return signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals);
}
