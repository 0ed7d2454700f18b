import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../../src/handlers/handler.js';
import { parseApiKeys } from '../../src/http/api-auth.js';
import { createJob, harnessScope, parseJob, waitForStatus } from './helpers.js';

/* Result reuse: a type that opts in (`cache` in its handler) runs once for equal inputs. */

const harnesses = harnessScope();
afterEach(() => harnesses.closeAll());

function countingLookup(gate?: Promise<void>) {
  const runs: unknown[] = [];
  const handler = defineHandler({
    type: 'lookup',
    input: z.object({ q: z.string(), page: z.number().default(1) }).strict(),
    cache: { ttl_s: 60 },
    async run(input) {
      runs.push(input);
      await gate;
      return { hits: [`${input.q}-1`, `${input.q}-2`], page: input.page };
    },
  });
  return { handler, runs };
}

describe('result reuse', () => {
  it('answers a repeat of a finished job at once, with 200, the same result and cached_from, without running it', async () => {
    const { handler, runs } = countingLookup();
    const { app } = await harnesses.open({ workers: true, extraHandlers: [handler] });
    const first = await createJob(app, { type: 'lookup', input: { q: 'cats', page: 1 } });
    expect(first.cached_from).toBeNull();
    const done = await waitForStatus(app, first.id, 'succeeded');
    // Key order does not matter: inputs are compared as canonical JSON.
    const repeat = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { input: { page: 1, q: 'cats' }, type: 'lookup' },
    });
    expect(repeat.statusCode).toBe(200);
    expect(repeat.headers.location).toMatch(/^\/v1\/jobs\//);
    const reused = parseJob(repeat);
    expect(reused).toMatchObject({
      status: 'succeeded',
      done: true,
      cached_from: first.id,
      result: done.result,
      attempt: 0,
    });
    expect(reused.id).not.toBe(first.id);
    const result = await app.inject({ method: 'GET', url: `/v1/jobs/${reused.id}/result` });
    expect(result.json()).toEqual({ hits: ['cats-1', 'cats-2'], page: 1 });
    expect(runs).toHaveLength(1);

    const other = await createJob(app, { type: 'lookup', input: { q: 'dogs' } });
    expect(other.cached_from).toBeNull();
    await waitForStatus(app, other.id, 'succeeded');
    expect(runs).toHaveLength(2);
  });

  it('runs again with Cache-Control: no-cache, and later repeats reuse that newer result', async () => {
    const { handler, runs } = countingLookup();
    const { app } = await harnesses.open({ workers: true, extraHandlers: [handler] });
    const first = await createJob(app, { type: 'lookup', input: { q: 'x' } });
    await waitForStatus(app, first.id, 'succeeded');
    const fresh = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'cache-control': 'no-cache' },
      payload: { type: 'lookup', input: { q: 'x' } },
    });
    expect(fresh.statusCode).toBe(202);
    const freshJob = parseJob(fresh);
    expect(freshJob.cached_from).toBeNull();
    await waitForStatus(app, freshJob.id, 'succeeded');
    expect(runs).toHaveLength(2);
    const repeat = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'lookup', input: { q: 'x' } },
    });
    expect(parseJob(repeat).cached_from).toBe(freshJob.id);
  });

  it('makes a repeat of a running job follow it: both finish together and the handler runs once', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { handler, runs } = countingLookup(gate);
    const { app } = await harnesses.open({ workers: true, extraHandlers: [handler] });
    const leader = await createJob(app, { type: 'lookup', input: { q: 'slow' } });
    await waitForStatus(app, leader.id, 'running');
    const follower = await createJob(app, { type: 'lookup', input: { q: 'slow' } });
    expect(follower).toMatchObject({ status: 'queued', cached_from: leader.id });
    open();
    const [leaderDone, followerDone] = await Promise.all([
      waitForStatus(app, leader.id, 'succeeded'),
      waitForStatus(app, follower.id, 'succeeded'),
    ]);
    expect(followerDone.result).toEqual(leaderDone.result);
    expect(runs).toHaveLength(1);
  });

  it('never hands one tenant the result of another', async () => {
    const { handler, runs } = countingLookup();
    const { app } = await harnesses.open({
      workers: true,
      extraHandlers: [handler],
      apiKeys: parseApiKeys([
        { key: 'key-of-acme-0123456789', tenant: 'acme' },
        { key: 'key-of-globex-012345678', tenant: 'globex' },
      ]),
    });
    const submit = (key: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { authorization: `Bearer ${key}` },
        payload: { type: 'lookup', input: { q: 'secret' } },
      });
    const acme = parseJob(await submit('key-of-acme-0123456789'));
    await expect.poll(() => runs.length).toBe(1);
    const globex = parseJob(await submit('key-of-globex-012345678'));
    expect(globex.cached_from).toBeNull();
    await expect.poll(() => runs.length).toBe(2);
    // The same tenant does reuse its own.
    const again = parseJob(await submit('key-of-acme-0123456789'));
    expect(again.cached_from).toBe(acme.id);
  });

  it('rejects a handler defined with a cache TTL that is not positive', () => {
    expect(() => defineHandler({ type: 'bad', input: z.object({}), cache: { ttl_s: 0 }, run: async () => 1 })).toThrow(
      /cache.ttl_s/,
    );
  });
});
