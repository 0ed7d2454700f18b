import { afterEach, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/job-id.js';
import { jobSchema } from '../../src/routes/schemas.js';
import {
  blockingHandler,
  clockPast,
  createJob,
  expectProblem,
  getJob,
  harnessScope,
  parseJob,
  textHandler,
  ULID_PATTERN,
  waitForStatus,
  type Job,
} from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

describe('POST /v1/jobs', () => {
  it('answers 202 with the queued Job, Location, Content-Location and Retry-After', async () => {
    const { app } = await scope.open();
    const before = Date.now();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo', input: { value: 42 }, metadata: { team: 'a' } },
    });
    expect(response.statusCode).toBe(202);
    const job = parseJob(response);
    expect(job.id).toMatch(ULID_PATTERN);
    expect(job.id).toHaveLength(26);
    expect(job).toMatchObject({
      type: 'echo',
      status: 'queued',
      done: false,
      input: { value: 42 },
      metadata: { team: 'a' },
      priority: 0,
      result: null,
      error: null,
      attempt: 0,
      max_attempts: 3,
      version: 1,
      started_at: null,
      completed_at: null,
      expires_at: null,
      progress: { percent: null, step: null, message: null, updated_at: null },
      links: {
        self: `/v1/jobs/${job.id}`,
        result: `/v1/jobs/${job.id}/result`,
        cancel: `/v1/jobs/${job.id}/cancel`,
        events: `/v1/jobs/${job.id}/events`,
      },
    });
    expect(job.run_at).toBe(job.created_at);
    expect(Date.parse(job.created_at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(job.created_at)).toBeLessThanOrEqual(Date.now());
    expect(response.headers.location).toBe(`/v1/jobs/${job.id}`);
    expect(response.headers['content-location']).toBe(`/v1/jobs/${job.id}`);
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(response.headers['retry-after'])).toBe(1);
    expect(response.headers['x-request-id']).toBeTruthy();
  });

  it('gives every job a different ULID', async () => {
    const { app } = await scope.open();
    const first = await createJob(app, { type: 'echo' });
    const second = await createJob(app, { type: 'echo' });
    expect(first.id).toMatch(ULID_PATTERN);
    expect(second.id).toMatch(ULID_PATTERN);
    expect(first.id).not.toBe(second.id);
    expect(first.input).toEqual({});
  });

  it('keeps a sane X-Request-Id from the client', async () => {
    const { app } = await scope.open();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo' },
      headers: { 'x-request-id': 'req-123' },
    });
    expect(response.statusCode).toBe(202);
    expect(response.headers['x-request-id']).toBe('req-123');
  });

  it('delays the job with delay_s: run_at ~5 s later and Retry-After > 1', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo', delay_s: 5 } });
    expect(response.statusCode).toBe(202);
    const job = parseJob(response);
    const delayMs = Date.parse(job.run_at) - Date.parse(job.created_at);
    expect(delayMs).toBeGreaterThanOrEqual(4_900);
    expect(delayMs).toBeLessThanOrEqual(5_100);
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(1);
    expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(5);
  });

  it('422 unknown-job-type names the known types', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'nope' } });
    const problem = expectProblem(response, 422, 'unknown-job-type');
    expect(problem.detail).toContain('echo');
    expect(problem.detail).toContain('sleep');
    expect(problem.known_types).toEqual(['echo', 'sleep']);
    expect(problem.errors?.map((e) => e.pointer)).toEqual(['/type']);
  });

  it('422 when the input does not fit the type: pointer into the input', async () => {
    const { app } = await scope.open();
    const wrongType = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'sleep', input: { ms: 'x' } },
    });
    const problem = expectProblem(wrongType, 422, 'validation-failed');
    expect(problem.errors?.map((e) => e.pointer)).toEqual(['/input/ms']);

    const unknownField = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'sleep', input: { ms: 10, bogus: true } },
    });
    const unknown = expectProblem(unknownField, 422, 'validation-failed');
    expect(unknown.errors).toEqual([{ pointer: '/input/bogus', detail: 'unknown field' }]);

    const missing = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'sleep' } });
    expect(expectProblem(missing, 422, 'validation-failed').errors?.map((e) => e.pointer)).toEqual(['/input/ms']);
  });

  it('422 for a priority out of range, pointer /priority', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo', priority: 500 } });
    const problem = expectProblem(response, 422, 'validation-failed');
    expect(problem.errors?.map((e) => e.pointer)).toEqual(['/priority']);
  });

  it('422 for run_at together with delay_s', async () => {
    const { app } = await scope.open();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo', run_at: new Date(Date.now() + 60_000).toISOString(), delay_s: 5 },
    });
    const problem = expectProblem(response, 422, 'validation-failed');
    expect(problem.errors).toHaveLength(1);
    expect(['/delay_s', '/run_at']).toContain(problem.errors?.[0]?.pointer);
    expect(problem.errors?.[0]?.detail).toMatch(/run_at/);
  });

  it('422 for an unknown top-level field, naming it', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo', colour: 'blue' } });
    const problem = expectProblem(response, 422, 'validation-failed');
    expect(problem.errors).toEqual([{ pointer: '/colour', detail: 'unknown field' }]);
  });

  it('422 for a body that is not an object', async () => {
    const { app } = await scope.open();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: '[1,2]',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(response, 422, 'validation-failed');
  });

  it('400 malformed-json for broken JSON', async () => {
    const { app } = await scope.open();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: '{"type": "echo",',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(response, 400, 'malformed-json');
  });

  it('400 malformed-json for invalid UTF-8 bytes', async () => {
    const { app } = await scope.open();
    const payload = Buffer.concat([
      Buffer.from('{"type":"echo","input":{"value":"'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('"}}'),
    ]);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload,
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(response, 400, 'malformed-json');
  });

  it('413 payload-too-large over the body limit', async () => {
    const { app } = await scope.open({ bodyLimitBytes: 1024 });
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo', input: { value: 'x'.repeat(2000) } },
    });
    expectProblem(response, 413, 'payload-too-large');
    // Just under the limit still works.
    const small = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo', input: { value: 'x'.repeat(900) } },
    });
    expect(small.statusCode).toBe(202);
  });

  it('415 for a body that is not JSON', async () => {
    const { app } = await scope.open();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: 'type=echo',
      headers: { 'content-type': 'text/plain' },
    });
    expectProblem(response, 415, 'unsupported-media-type');
  });
});

describe('GET /v1/jobs/{id}', () => {
  it('200 with ETag and Retry-After while not done; 304 for a matching If-None-Match', async () => {
    const { app } = await scope.open();
    const created = await createJob(app, { type: 'echo' });
    const response = await app.inject({ method: 'GET', url: `/v1/jobs/${created.id}` });
    expect(response.statusCode).toBe(200);
    const job = parseJob(response);
    expect(job).toEqual(created);
    expect(response.headers.etag).toBe(`"v${job.version}"`);
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
    expect(response.headers['cache-control']).toBe('no-cache');

    const notModified = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${created.id}`,
      headers: { 'if-none-match': '"v1"' },
    });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');
    expect(notModified.headers.etag).toBe('"v1"');

    const stale = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${created.id}`,
      headers: { 'if-none-match': '"v0"' },
    });
    expect(stale.statusCode).toBe(200);
    parseJob(stale);
  });

  it('200 with a new ETag and no Retry-After once done', async () => {
    const { app } = await scope.open({ workers: true });
    const created = await createJob(app, { type: 'echo', input: { value: 1 } });
    const done = await waitForStatus(app, created.id, 'succeeded');
    expect(done).toMatchObject({ done: true, attempt: 1, result: { value: 1 }, error: null });
    expect(done.version).toBeGreaterThan(1);
    expect(done.completed_at).not.toBeNull();
    expect(done.expires_at).not.toBeNull();
    const response = await app.inject({ method: 'GET', url: `/v1/jobs/${created.id}` });
    expect(response.headers.etag).toBe(`"v${done.version}"`);
    expect(response.headers['retry-after']).toBeUndefined();
    const notModified = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${created.id}`,
      headers: { 'if-none-match': `"v${done.version}"` },
    });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');
  });

  it('404 job-not-found for an unknown id and for a malformed id', async () => {
    const { app } = await scope.open();
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${newJobId(Date.now())}` }), 404, 'job-not-found');
    expectProblem(await app.inject({ method: 'GET', url: '/v1/jobs/abc' }), 404, 'job-not-found');
  });

  it('400 problem+json for malformed percent-encoding in the path', async () => {
    const { app } = await scope.open();
    expectProblem(await app.inject({ method: 'GET', url: '/v1/jobs/%E0%A4%A' }), 400, 'bad-request');
  });

  it('404 not-found problem for an unknown route', async () => {
    const { app } = await scope.open();
    expectProblem(await app.inject({ method: 'GET', url: '/v2/nothing' }), 404, 'not-found');
  });
});

describe('GET /v1/jobs/{id}/result', () => {
  it("200 with exactly the handler's result once succeeded", async () => {
    const { app } = await scope.open({ workers: true, extraHandlers: [textHandler] });
    const value = { a: [1, 2, { b: null }] };
    const job = await createJob(app, { type: 'echo', input: { value } });
    await waitForStatus(app, job.id, 'succeeded');
    const response = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual({ value });
    expect(response.body).toBe(JSON.stringify({ value }));

    const stringEcho = await createJob(app, { type: 'echo', input: { value: 'hello "world"' } });
    await waitForStatus(app, stringEcho.id, 'succeeded');
    const echoed = await app.inject({ method: 'GET', url: `/v1/jobs/${stringEcho.id}/result` });
    expect(echoed.statusCode).toBe(200);
    expect(echoed.json()).toEqual({ value: 'hello "world"' });

    // A handler whose result is a bare string: the body is that JSON string.
    const text = await createJob(app, { type: 'text', input: { text: 'plain "text"' } });
    await waitForStatus(app, text.id, 'succeeded');
    const textResponse = await app.inject({ method: 'GET', url: `/v1/jobs/${text.id}/result` });
    expect(textResponse.statusCode).toBe(200);
    expect(textResponse.headers['content-type']).toMatch(/^application\/json/);
    expect(textResponse.body).toBe('"plain \\"text\\""');
    expect(textResponse.json()).toBe('plain "text"');
  });

  it('202 with the Job, Retry-After and Location while queued', async () => {
    const { app } = await scope.open();
    const job = await createJob(app, { type: 'echo' });
    const response = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` });
    expect(response.statusCode).toBe(202);
    expect(parseJob(response)).toMatchObject({ id: job.id, status: 'queued', done: false });
    expect(response.headers.location).toBe(`/v1/jobs/${job.id}`);
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('409 job-failed with the failed Job', async () => {
    const { app } = await scope.open({ workers: true });
    const job = await createJob(app, { type: 'sleep', input: { ms: 0, steps: 1, fail_times: 1 }, max_attempts: 1 });
    await waitForStatus(app, job.id, 'failed');
    const response = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` });
    const problem = expectProblem(response, 409, 'job-failed');
    const failed = jobSchema.parse(problem.job);
    expect(failed).toMatchObject({ id: job.id, status: 'failed', done: true, attempt: 1 });
    expect(failed.error).not.toBeNull();
    expect(failed.error?.code).toBe('planned-failure');
    expect(problem.detail).toContain('failing on purpose');
  });

  it('409 job-canceled for a canceled job', async () => {
    const { app } = await scope.open();
    const job = await createJob(app, { type: 'echo' });
    expect((await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` })).statusCode).toBe(200);
    const problem = expectProblem(
      await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` }),
      409,
      'job-canceled',
    );
    expect(jobSchema.parse(problem.job)).toMatchObject({ id: job.id, status: 'canceled', done: true });
  });

  it('404 for an unknown job', async () => {
    const { app } = await scope.open();
    expectProblem(
      await app.inject({ method: 'GET', url: `/v1/jobs/${newJobId(Date.now())}/result` }),
      404,
      'job-not-found',
    );
  });
});

describe('POST /v1/jobs/{id}/cancel', () => {
  it('cancels a queued job at once: 200', async () => {
    const { app } = await scope.open();
    const job = await createJob(app, { type: 'echo' });
    const response = await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
    expect(response.statusCode).toBe(200);
    const canceled = parseJob(response);
    expect(canceled).toMatchObject({ id: job.id, status: 'canceled', done: true, version: 2 });
    expect(canceled.completed_at).not.toBeNull();
    expect((await getJob(app, job.id)).status).toBe('canceled');
  });

  it('signals a running job: 202 with the job, which then ends canceled', async () => {
    const { app } = await scope.open({ workers: true });
    const job = await createJob(app, { type: 'sleep', input: { ms: 10_000, steps: 1 } });
    await waitForStatus(app, job.id, 'running');
    const response = await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
    expect(response.statusCode).toBe(202);
    expect(parseJob(response)).toMatchObject({ id: job.id, status: 'running', done: false });
    const canceled = await waitForStatus(app, job.id, 'canceled', 'succeeded', 'failed');
    expect(canceled.status).toBe('canceled');
    expect(canceled.done).toBe(true);
  });

  it('returns a finished job unchanged: 200', async () => {
    const { app } = await scope.open({ workers: true });
    const job = await createJob(app, { type: 'echo', input: { value: 'x' } });
    const done = await waitForStatus(app, job.id, 'succeeded');
    const response = await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` });
    expect(response.statusCode).toBe(200);
    expect(parseJob(response)).toEqual(done);
  });

  it('404 for an unknown or malformed id', async () => {
    const { app } = await scope.open();
    expectProblem(
      await app.inject({ method: 'POST', url: `/v1/jobs/${newJobId(Date.now())}/cancel` }),
      404,
      'job-not-found',
    );
    expectProblem(await app.inject({ method: 'POST', url: '/v1/jobs/abc/cancel' }), 404, 'job-not-found');
  });
});

describe('DELETE /v1/jobs/{id}', () => {
  it('204, again 204, then the job is gone', async () => {
    const { app } = await scope.open();
    const job = await createJob(app, { type: 'echo' });
    const first = await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
    expect(first.statusCode).toBe(204);
    expect(first.body).toBe('');
    const second = await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
    expect(second.statusCode).toBe(204);
    // Gone, not unknown: 410 with the time it went, so pollers stop; the result and cancel routes say so too.
    const gone = expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` }), 410, 'job-gone');
    expect(Date.parse(gone.gone_at as string)).toBeGreaterThan(Date.now() - 60_000);
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/result` }), 410, 'job-gone');
    expectProblem(await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel` }), 410, 'job-gone');
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${newJobId(Date.now())}` }), 404, 'job-not-found');
    const list = await app.inject({ method: 'GET', url: '/v1/jobs' });
    expect(list.json()).toEqual({ data: [], next_cursor: null });
  });

  it('204 for an unknown id', async () => {
    const { app } = await scope.open();
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${newJobId(Date.now())}` })).statusCode).toBe(204);
    expect((await app.inject({ method: 'DELETE', url: '/v1/jobs/abc' })).statusCode).toBe(204);
  });

  it("cancels a running job's handler", async () => {
    const block = blockingHandler();
    const { app, pool } = await scope.open({ workers: true, extraHandlers: [block.handler] });
    const job = await createJob(app, { type: 'block' });
    await waitFor(() => block.started.has(job.id), { what: 'the handler to start' });
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` })).statusCode).toBe(204);
    const reason = await waitFor(() => block.aborted.get(job.id), { what: 'the handler to be aborted' });
    expect(reason).toBe('canceled');
    await waitFor(() => pool!.busy === 0, { what: 'the pool to free the slot' });
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` }), 410, 'job-gone');
  });
});

describe('GET /v1/jobs', () => {
  async function createSpaced(app: Parameters<typeof createJob>[0], bodies: Record<string, unknown>[]): Promise<Job[]> {
    const jobs: Job[] = [];
    for (const body of bodies) {
      // Ids sort by creation millisecond; a tick between jobs makes "newest first" well defined.
      if (jobs.length > 0) await clockPast(Date.parse(jobs[jobs.length - 1]!.created_at));
      jobs.push(await createJob(app, body));
    }
    return jobs;
  }

  const list = async (app: Parameters<typeof createJob>[0], query: string) => {
    const response = await app.inject({ method: 'GET', url: `/v1/jobs${query}` });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json<{ data: unknown[]; next_cursor: string | null }>();
    return { data: body.data.map((job) => jobSchema.parse(job)), next_cursor: body.next_cursor };
  };

  it('lists newest first by default and oldest first with order=asc', async () => {
    const { app } = await scope.open();
    const [a, b, c] = await createSpaced(app, [{ type: 'echo' }, { type: 'echo' }, { type: 'echo' }]);
    expect((await list(app, '')).data.map((j) => j.id)).toEqual([c!.id, b!.id, a!.id]);
    expect((await list(app, '?order=asc')).data.map((j) => j.id)).toEqual([a!.id, b!.id, c!.id]);
    expect((await list(app, '')).next_cursor).toBeNull();
  });

  it('filters by status (several values) and by type', async () => {
    const { app, store } = await scope.open();
    // One succeeded and one running job, made through the store (no pool here).
    const succeeded = await createJob(app, { type: 'echo', priority: 100 });
    const [claimedEcho] = await store.claim({
      types: ['echo'],
      max: 1,
      workerId: 'w',
      leaseId: 'l1',
      leaseMs: 60_000,
      now: Date.now(),
    });
    expect(claimedEcho?.id).toBe(succeeded.id);
    await store.finish({ jobId: succeeded.id, leaseId: 'l1' }, { kind: 'succeeded', result: 1 }, Date.now());
    const running = await createJob(app, { type: 'sleep', input: { ms: 10 }, priority: 100 });
    await store.claim({ types: ['sleep'], max: 1, workerId: 'w', leaseId: 'l2', leaseMs: 60_000, now: Date.now() });
    const queuedEcho = await createJob(app, { type: 'echo' });
    const queuedSleep = await createJob(app, { type: 'sleep', input: { ms: 10 } });
    const canceled = await createJob(app, { type: 'echo' });
    await app.inject({ method: 'POST', url: `/v1/jobs/${canceled.id}/cancel` });

    const ids = (jobs: { id: string }[]) => jobs.map((j) => j.id).sort();
    const queuedOrCanceled = await list(app, '?status=queued,canceled');
    expect(ids(queuedOrCanceled.data)).toEqual(ids([queuedEcho, queuedSleep, canceled]));
    expect(queuedOrCanceled.data.every((j) => j.status === 'queued' || j.status === 'canceled')).toBe(true);
    expect(ids((await list(app, '?status=running')).data)).toEqual([running.id]);
    expect(ids((await list(app, '?status=succeeded')).data)).toEqual([succeeded.id]);
    expect(ids((await list(app, '?type=sleep')).data)).toEqual(ids([running, queuedSleep]));
    expect(ids((await list(app, '?type=sleep&status=queued')).data)).toEqual([queuedSleep.id]);
    expect((await list(app, '?type=nope')).data).toEqual([]);
  });

  it('filters by created_after and created_before (exclusive)', async () => {
    const { app } = await scope.open();
    const [a, b, c] = await createSpaced(app, [{ type: 'echo' }, { type: 'echo' }, { type: 'echo' }]);
    const q = (params: Record<string, string>) => `?${new URLSearchParams(params).toString()}`;
    expect((await list(app, q({ created_after: a!.created_at }))).data.map((j) => j.id)).toEqual([c!.id, b!.id]);
    expect((await list(app, q({ created_before: c!.created_at }))).data.map((j) => j.id)).toEqual([b!.id, a!.id]);
    expect(
      (await list(app, q({ created_after: a!.created_at, created_before: c!.created_at }))).data.map((j) => j.id),
    ).toEqual([b!.id]);
    expect((await list(app, q({ created_after: c!.created_at }))).data).toEqual([]);
    expectProblem(await app.inject({ method: 'GET', url: '/v1/jobs?created_after=yesterday' }), 400, 'bad-request');
  });

  it('bounds limit to 1..100', async () => {
    const { app } = await scope.open();
    await createJob(app, { type: 'echo' });
    await createJob(app, { type: 'echo' });
    const one = await list(app, '?limit=1');
    expect(one.data).toHaveLength(1);
    expect(one.next_cursor).toEqual(expect.any(String));
    expect((await list(app, '?limit=100')).data).toHaveLength(2);
    for (const limit of ['0', '101', 'ten']) {
      const problem = expectProblem(
        await app.inject({ method: 'GET', url: `/v1/jobs?limit=${limit}` }),
        400,
        'bad-request',
      );
      expect(problem.errors?.map((e) => e.pointer)).toEqual(['limit']);
      expect(problem.detail).toContain('limit');
    }
  });

  it.each(['desc', 'asc'] as const)(
    'pages through 25 jobs with limit 10 (%s), each job exactly once',
    async (order) => {
      const { app } = await scope.open();
      const created: string[] = [];
      for (let i = 0; i < 25; i++) created.push((await createJob(app, { type: 'echo', input: { value: i } })).id);
      const seen: string[] = [];
      const pageSizes: number[] = [];
      let cursor: string | null = null;
      do {
        const page = await list(app, `?limit=10&order=${order}${cursor ? `&cursor=${cursor}` : ''}`);
        pageSizes.push(page.data.length);
        seen.push(...page.data.map((j) => j.id));
        cursor = page.next_cursor;
      } while (cursor !== null && pageSizes.length < 10);
      expect(pageSizes).toEqual([10, 10, 5]);
      expect(new Set(seen).size).toBe(25);
      expect([...seen].sort()).toEqual([...created].sort());
      expect(seen).toEqual(order === 'asc' ? [...seen].sort() : [...seen].sort().reverse());
    },
  );

  it('400 naming cursor for a bad cursor, also one from the other order', async () => {
    const { app } = await scope.open();
    for (let i = 0; i < 3; i++) await createJob(app, { type: 'echo' });
    const descCursor = (await list(app, '?limit=1')).next_cursor!;
    for (const url of ['/v1/jobs?cursor=garbage', `/v1/jobs?order=asc&cursor=${descCursor}`]) {
      const problem = expectProblem(await app.inject({ method: 'GET', url }), 400, 'bad-request');
      expect(problem.errors?.map((e) => e.pointer)).toEqual(['cursor']);
      expect(problem.detail).toContain('cursor');
    }
  });

  it('400 naming status for an unknown status, and for an unknown query parameter', async () => {
    const { app } = await scope.open();
    const badStatus = expectProblem(
      await app.inject({ method: 'GET', url: '/v1/jobs?status=queued,bogus' }),
      400,
      'bad-request',
    );
    expect(badStatus.errors?.map((e) => e.pointer)).toEqual(['status']);
    expect(badStatus.detail).toContain('status');
    const unknown = expectProblem(await app.inject({ method: 'GET', url: '/v1/jobs?colour=blue' }), 400, 'bad-request');
    expect(unknown.errors).toEqual([{ pointer: 'colour', detail: 'unknown field' }]);
    expect(unknown.detail).toContain('colour');
    expectProblem(await app.inject({ method: 'GET', url: '/v1/jobs?order=sideways' }), 400, 'bad-request');
  });
});

describe('GET /v1/job-types', () => {
  it('lists echo and sleep with a JSON Schema of their input', async () => {
    const { app } = await scope.open();
    const response = await app.inject({ method: 'GET', url: '/v1/job-types' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json<{
      data: { type: string; input_schema: Record<string, unknown>; timeout_s: number | null; max_attempts: number }[];
    }>();
    expect(body.data.map((t) => t.type)).toEqual(['echo', 'sleep']);
    const sleep = body.data.find((t) => t.type === 'sleep')!;
    expect(sleep.input_schema).toMatchObject({
      type: 'object',
      properties: { ms: { type: 'integer' } },
      required: ['ms'],
    });
    expect(sleep.input_schema.additionalProperties).toBe(false);
    expect(sleep).toMatchObject({ timeout_s: null, max_attempts: 3 });
    const echo = body.data.find((t) => t.type === 'echo')!;
    expect(echo.input_schema).toMatchObject({ type: 'object', properties: { value: expect.any(Object) as unknown } });
  });
});
