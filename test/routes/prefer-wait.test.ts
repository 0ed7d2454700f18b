import { afterEach, describe, expect, it, vi } from 'vitest';
import { harnessScope, parseJob, waitForStatus } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

describe('Prefer: wait=N on POST /v1/jobs', () => {
  it('answers 200 with the finished Job when it finishes within N seconds', async () => {
    const { app } = await scope.open({ workers: true });
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { prefer: 'wait=5' },
      payload: { type: 'echo', input: { value: 7 } },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['preference-applied']).toBe('wait=5');
    expect(response.headers.location).toBe(`/v1/jobs/${parseJob(response).id}`);
    expect(parseJob(response)).toMatchObject({ status: 'succeeded', done: true, result: { value: 7 } });
  });

  it('answers the usual 202 once N seconds pass without the job finishing', async () => {
    const { app } = await scope.open({ workers: true });
    const started = Date.now();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { prefer: 'respond-async, wait=1' },
      payload: { type: 'sleep', input: { ms: 5000 } },
    });
    const waited = Date.now() - started;
    expect(response.statusCode).toBe(202);
    expect(response.headers['preference-applied']).toBe('wait=1');
    expect(response.headers['retry-after']).toBeDefined();
    expect(parseJob(response).done).toBe(false);
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(3000);
  });

  it('caps the wait at 60 seconds', async () => {
    const { app } = await scope.open({ workers: true });
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { prefer: 'wait=600' },
      payload: { type: 'echo' },
    });
    expect(response.headers['preference-applied']).toBe('wait=60');
    expect(response.statusCode).toBe(200);
  });
});

describe('long-poll: GET /v1/jobs/{id} with Prefer: wait=N and If-None-Match', () => {
  it('is held until the job changes, then answers 200 with the new version', async () => {
    const { app } = await scope.open({ workers: true });
    const created = parseJob(
      await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'sleep', input: { ms: 600, steps: 3 } } }),
    );
    const running = await waitForStatus(app, created.id, 'running');
    const started = Date.now();
    const response = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${created.id}`,
      headers: { prefer: 'wait=10', 'if-none-match': `"v${running.version}"` },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['preference-applied']).toBe('wait=10');
    const changed = parseJob(response);
    expect(changed.version).toBeGreaterThan(running.version);
    expect(response.headers.etag).toBe(`"v${changed.version}"`);
    expect(Date.now() - started).toBeLessThan(2000); // woke on the change (a progress step), not at the timeout
  });

  it('answers 304 after N seconds when nothing changed', async () => {
    const { app } = await scope.open(); // no workers: the job stays queued
    const created = parseJob(await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } }));
    const started = Date.now();
    const response = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${created.id}`,
      headers: { prefer: 'wait=1', 'if-none-match': '"v1"' },
    });
    expect(response.statusCode).toBe(304);
    expect(response.headers['preference-applied']).toBe('wait=1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('answers at once when the ETag is already stale, and 410 when the job is deleted while held', async () => {
    const { app, store } = await scope.open();
    const created = parseJob(await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } }));
    const stale = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${created.id}`,
      headers: { prefer: 'wait=10', 'if-none-match': '"v0"' },
    });
    expect(stale.statusCode).toBe(200);
    const watch = vi.spyOn(store, 'watch');
    const held = app.inject({
      method: 'GET',
      url: `/v1/jobs/${created.id}`,
      headers: { prefer: 'wait=10', 'if-none-match': '"v1"' },
    });
    // Held: the long-poll watches the job (from then on a delete wakes it), so the DELETE below comes while it waits.
    await waitFor(() => watch.mock.calls.some(([id]) => id === created.id), {
      what: 'the GET to be held (watching the job)',
    });
    await app.inject({ method: 'DELETE', url: `/v1/jobs/${created.id}` });
    const response = await held;
    expect(response.statusCode).toBe(410);
  });
});
