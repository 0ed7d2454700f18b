import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, JobsClient, type Job } from '../../src/client/jobs-client.js';
import { z } from 'zod';
import { defineHandler, type Handler } from '../../src/handlers/handler.js';
import { harnessScope } from '../routes/helpers.js';

/* The typed client against the real app listening on 127.0.0.1, with a worker pool. */

const scope = harnessScope();
afterEach(() => scope.closeAll());

async function client(
  options: { workers?: boolean; fetch?: typeof fetch; extraHandlers?: Handler[] } = {},
): Promise<JobsClient> {
  const harness = await scope.open({ workers: options.workers ?? true, extraHandlers: options.extraHandlers });
  const baseUrl = await harness.app.listen({ port: 0, host: '127.0.0.1' });
  return new JobsClient({ baseUrl, fetch: options.fetch });
}

describe('JobsClient', () => {
  it('submits, waits over the event stream with updates, and reads the result', async () => {
    const jobs = await client();
    const job = await jobs.submit('sleep', { ms: 600, steps: 3 }, { metadata: { from: 'client' } });
    expect(job).toMatchObject({ status: 'queued', metadata: { from: 'client' } });
    const updates: Job[] = [];
    const done = await jobs.wait(job.id, { onUpdate: (update) => updates.push(update), timeoutMs: 10_000 });
    expect(done).toMatchObject({ id: job.id, status: 'succeeded', done: true });
    expect(updates.some((update) => update.progress.step === 'sleeping')).toBe(true);
    expect(await jobs.result(job.id)).toEqual({ slept_ms: 600, attempt: 1 });
  });

  it('submits a concurrency key, which the Job carries', async () => {
    const jobs = await client({ workers: false });
    const job = await jobs.submit('sleep', { ms: 0 }, { concurrencyKey: 'customer-42' });
    expect(job).toMatchObject({ concurrency_key: 'customer-42', waiting_for: null });
    expect((await jobs.get(job.id)).concurrency_key).toBe('customer-42');
  });

  it('turns problems into ApiError, carrying the failed Job', async () => {
    const jobs = await client();
    const failing = await jobs.submit('sleep', { ms: 0, fail_times: 5 }, { maxAttempts: 1 });
    const error = await jobs.result(failing.id, { timeoutMs: 10_000 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 409, problem: { code: 'job-failed' } });
    expect((error as ApiError).job?.error?.code).toBe('planned-failure');
    await expect(jobs.submit('nope')).rejects.toMatchObject({ status: 422, problem: { code: 'unknown-job-type' } });
  });

  it('submits idempotently, waits in the submit call, cancels, lists and deletes', async () => {
    const jobs = await client();
    const first = await jobs.submit('echo', { value: 1 }, { idempotencyKey: 'k-1' });
    const again = await jobs.submit('echo', { value: 1 }, { idempotencyKey: 'k-1' });
    expect(again.id).toBe(first.id);
    const finished = await jobs.submit('echo', { value: 2 }, { waitS: 5 });
    expect(finished).toMatchObject({ status: 'succeeded', result: { value: 2 } });
    const long = await jobs.submit('sleep', { ms: 60_000 });
    await jobs.cancel(long.id);
    expect((await jobs.wait(long.id, { timeoutMs: 10_000 })).status).toBe('canceled');
    const page = await jobs.list({ type: 'echo', order: 'asc' });
    expect(page.data.map((job) => job.id)).toEqual([first.id, finished.id]);
    expect((await jobs.list({ idempotencyKey: 'k-1' })).data.map((job) => job.id)).toEqual([first.id]);
    await jobs.delete(first.id);
    await expect(jobs.get(first.id)).rejects.toMatchObject({ status: 410 });
  });

  it('sends a webhook with the submit', async () => {
    const jobs = await client({ workers: false });
    // This service has no WEBHOOK_SECRET: the 422 names the webhook field, so the client sent it.
    await expect(
      jobs.submit('echo', {}, { webhook: { url: 'https://example.com/hook', events: ['job.succeeded'] } }),
    ).rejects.toMatchObject({
      status: 422,
      problem: { errors: [{ pointer: '/webhook' }] },
    });
  });

  it('skips result reuse with noCache', async () => {
    const cached = defineHandler({
      type: 'square',
      input: z.object({ n: z.number() }),
      cache: { ttl_s: 60 },
      run: async ({ n }) => n * n,
    });
    const jobs = await client({ extraHandlers: [cached] });
    const first = await jobs.wait((await jobs.submit('square', { n: 4 })).id, { timeoutMs: 10_000 });
    expect((await jobs.submit('square', { n: 4 })).cached_from).toBe(first.id);
    const fresh = await jobs.submit('square', { n: 4 }, { noCache: true });
    expect(fresh.cached_from).toBeNull();
  });

  it('falls back to long-polling where event streams cannot be read', async () => {
    // A fetch whose event-stream answers have no readable body, as behind some proxies and old runtimes.
    const noStreams: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (url.endsWith('/events')) {
        await response.body?.cancel();
        return new Response(null, { status: 200, headers: { 'content-type': 'text/event-stream' } });
      }
      return response;
    };
    const jobs = await client({ fetch: noStreams });
    const job = await jobs.submit('sleep', { ms: 400, steps: 2 });
    const updates: Job[] = [];
    const done = await jobs.wait(job.id, { onUpdate: (update) => updates.push(update), timeoutMs: 10_000 });
    expect(done.status).toBe('succeeded');
    expect(updates.length).toBeGreaterThan(0);
  });
});
