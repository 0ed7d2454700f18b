import { afterEach, describe, expect, it } from 'vitest';
import { jobSchema } from '../../src/routes/schemas.js';
import { harnessScope, parseJob, waitForStatus, type Harness } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

interface SseEvent {
  event: string;
  id: string;
  data: Record<string, unknown>;
}

/**
 * Reads a whole event stream over real HTTP (bounded in time), parsing its events and comments. `received.text`
 * grows as the stream arrives, for a test that acts once some of it came.
 */
async function readStream(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  received: { text: string } = { text: '' },
): Promise<{ status: number; headers: Headers; events: SseEvent[]; pings: number }> {
  const response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(15_000) });
  const decoder = new TextDecoder();
  const reader = response.body?.getReader(); // none for a 204
  while (reader) {
    const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
    if (done) break;
    received.text += decoder.decode(value, { stream: true });
  }
  received.text += decoder.decode();
  const text = received.text;
  const events: SseEvent[] = [];
  let pings = 0;
  for (const block of text.split('\n\n').filter(Boolean)) {
    if (block.startsWith(': ping')) {
      pings++;
      continue;
    }
    const fields = Object.fromEntries(
      block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
    );
    events.push({ event: fields.event!, id: fields.id!, data: JSON.parse(fields.data!) as Record<string, unknown> });
  }
  return { status: response.status, headers: response.headers, events, pings };
}

async function listening(harness: Harness): Promise<string> {
  const address = await harness.app.listen({ port: 0, host: '127.0.0.1' });
  return address;
}

describe('GET /v1/jobs/{id}/events', () => {
  it('streams snapshot, progress and status, then done, with version ids, and closes', async () => {
    const harness = await scope.open({ workers: true });
    const base = await listening(harness);
    const job = parseJob(
      await harness.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { type: 'sleep', input: { ms: 900, steps: 3 } },
      }),
    );
    const { status, headers, events } = await readStream(base, `/v1/jobs/${job.id}/events`);
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(headers.get('x-accel-buffering')).toBe('no');
    expect(headers.get('cache-control')).toContain('no-cache');
    expect(events[0]!.event).toBe('snapshot');
    jobSchema.parse(events[0]!.data);
    expect(events.at(-1)!.event).toBe('done');
    const done = jobSchema.parse(events.at(-1)!.data);
    expect(done).toMatchObject({ status: 'succeeded', done: true, result: { slept_ms: 900, attempt: 1 } });
    const kinds = events.map((event) => event.event);
    expect(kinds).toContain('progress');
    expect(kinds.filter((kind) => kind === 'done')).toHaveLength(1);
    const versions = events.map((event) => Number(event.id));
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions.at(-1)).toBe(done.version);
    const progress = events.find((event) => event.event === 'progress')!;
    expect(progress.data).toMatchObject({ version: Number(progress.id), progress: { step: 'sleeping' } });
  });

  it('answers 204 to a reconnect after done, and snapshot + done to a first connect to a finished job', async () => {
    const harness = await scope.open({ workers: true });
    const base = await listening(harness);
    const job = parseJob(
      await harness.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo', input: { value: 1 } } }),
    );
    const done = await waitForStatus(harness.app, job.id, 'succeeded');
    const reconnect = await fetch(`${base}/v1/jobs/${job.id}/events`, {
      headers: { 'last-event-id': String(done.version) },
    });
    expect(reconnect.status).toBe(204);
    const first = await readStream(base, `/v1/jobs/${job.id}/events`);
    expect(first.events.map((event) => event.event)).toEqual(['snapshot', 'done']);
  });

  it('ends the stream of a job deleted while streaming, and answers 404, 410 as GET does', async () => {
    const harness = await scope.open(); // no workers: the job stays queued
    const base = await listening(harness);
    const job = parseJob(await harness.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } }));
    const received = { text: '' };
    const streaming = readStream(base, `/v1/jobs/${job.id}/events`, {}, received);
    await waitFor(() => received.text.includes('event: snapshot'), { what: 'the snapshot event' });
    await harness.app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
    const { events } = await streaming;
    expect(events.map((event) => event.event)).toEqual(['snapshot']);
    expect((await fetch(`${base}/v1/jobs/${job.id}/events`)).status).toBe(410);
    expect((await fetch(`${base}/v1/jobs/01M80000000000000000000000/events`)).status).toBe(404);
  });
});

describe('GET /v1/events?job_id=…', () => {
  it('streams several jobs on one connection, each event naming its job, and ends when all are done', async () => {
    const harness = await scope.open({ workers: true });
    const base = await listening(harness);
    const a = parseJob(
      await harness.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { type: 'sleep', input: { ms: 300, steps: 2 } },
      }),
    );
    const b = parseJob(
      await harness.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { type: 'sleep', input: { ms: 600, steps: 2 } },
      }),
    );
    const { status, events } = await readStream(base, `/v1/events?job_id=${a.id}&job_id=${b.id}`);
    expect(status).toBe(200);
    for (const id of [a.id, b.id]) {
      const mine = events.filter((event) => event.data.job_id === id);
      expect(mine[0]!.event).toBe('snapshot');
      expect(mine.at(-1)!.event).toBe('done');
      expect(mine.every((event) => event.id.startsWith(`${id}:`))).toBe(true);
    }
  });

  it('refuses a bad or too long list of ids with 400 naming job_id', async () => {
    const harness = await scope.open();
    const bad = await harness.app.inject({ method: 'GET', url: '/v1/events?job_id=nope' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ errors: { pointer: string }[] }>().errors[0]!.pointer).toBe('job_id');
  });
});

describe('event streams and shutdown', () => {
  it('are ended when the app closes, so closing does not wait for them', async () => {
    const harness = await scope.open();
    const base = await listening(harness);
    const job = parseJob(await harness.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } }));
    const received = { text: '' };
    const streaming = readStream(base, `/v1/jobs/${job.id}/events`, {}, received);
    await waitFor(() => received.text.includes('event: snapshot'), { what: 'the snapshot event' });
    const started = Date.now();
    await harness.close();
    expect(Date.now() - started).toBeLessThan(3000);
    const { events } = await streaming;
    expect(events.map((event) => event.event)).toEqual(['snapshot']);
  });
});
