import { afterEach, describe, expect, it } from 'vitest';
import { createJob, expectProblem, harnessScope } from './helpers.js';

/* GET /admin/events: what the dashboard listens to instead of polling. */

const scope = harnessScope();
afterEach(() => scope.closeAll());

interface SseEvent {
  event: string;
  data: { id?: string; status?: string; counts?: Record<string, number> };
}

/** Reads an event stream over real HTTP, collecting its events, until `stop()`. */
async function listen(url: string) {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  const events: SseEvent[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as SseEvent['data'] });
        }
      }
    } catch {
      // aborted
    }
  })();
  return { response, events, stop: async () => (controller.abort(), await reading) };
}

describe('GET /admin/events', () => {
  it('sends the stats and the watched jobs at once, then their changes, and gone on delete', async () => {
    const { app } = await scope.open();
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const job = await createJob(app, { type: 'echo', input: {}, delay_s: 600 });
    const stream = await listen(`${base}/admin/events?job_id=${job.id}`);
    try {
      expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      await expect.poll(() => stream.events.map((event) => event.event)).toEqual(['stats', 'job']);
      expect(stream.events[0]!.data.counts).toMatchObject({ queued: 1 });
      expect(stream.events[1]!.data).toMatchObject({ id: job.id, status: 'queued' });

      await app.inject({ method: 'POST', url: `/admin/jobs/${job.id}/cancel` });
      await expect
        .poll(() => stream.events.some((event) => event.event === 'job' && event.data.status === 'canceled'))
        .toBe(true);
      await expect
        .poll(() => stream.events.some((event) => event.event === 'stats' && event.data.counts?.canceled === 1), {
          timeout: 6000,
        })
        .toBe(true);
      await app.inject({ method: 'DELETE', url: `/admin/jobs/${job.id}` });
      await expect.poll(() => stream.events.at(-1)).toEqual({ event: 'gone', data: { id: job.id } });
    } finally {
      await stream.stop();
    }
  });

  it('refuses bad job ids, and asks for a key like every admin route', async () => {
    const { app } = await scope.open({ adminToken: 'an-admin-token-0123456789' });
    expectProblem(await app.inject({ method: 'GET', url: '/admin/events' }), 401, 'unauthorized');
    const bad = await app.inject({
      method: 'GET',
      url: '/admin/events?job_id=nope',
      headers: { authorization: 'Bearer an-admin-token-0123456789' },
    });
    expectProblem(bad, 400, 'bad-request');
  });
});
