import { afterEach, describe, expect, it } from 'vitest';
import { expectProblem, harnessScope, parseJob } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

const post = (key: string | undefined, payload: Record<string, unknown>) => ({
  method: 'POST' as const,
  url: '/v1/jobs',
  payload,
  headers: key === undefined ? {} : { 'idempotency-key': key },
});

describe('Idempotency-Key on POST /v1/jobs', () => {
  it('returns the same job for a repeat with the same key and body, marked Idempotent-Replayed', async () => {
    const { app } = await scope.open();
    const body = { type: 'echo', input: { value: { b: 1, a: [1, 2] } }, priority: 3 };
    const first = await app.inject(post('order-42', body));
    expect(first.statusCode).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // Same body with its keys in another order: the same request.
    const again = await app.inject(
      post('order-42', { priority: 3, input: { value: { a: [1, 2], b: 1 } }, type: 'echo' }),
    );
    expect(again.statusCode).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(parseJob(again).id).toBe(parseJob(first).id);
    expect(again.headers.location).toBe(`/v1/jobs/${parseJob(first).id}`);
    const list = await app.inject({ method: 'GET', url: '/v1/jobs' });
    expect(list.json<{ data: unknown[] }>().data).toHaveLength(1);
  });

  it('refuses the same key with a different body (422 idempotency-key-reused) and makes nothing', async () => {
    const { app } = await scope.open();
    await app.inject(post('k', { type: 'echo', input: { value: 1 } }));
    const reused = expectProblem(
      await app.inject(post('k', { type: 'echo', input: { value: 2 } })),
      422,
      'idempotency-key-reused',
    );
    expect(reused.errors?.[0]?.pointer).toBe('Idempotency-Key');
    expect((await app.inject({ method: 'GET', url: '/v1/jobs' })).json<{ data: unknown[] }>().data).toHaveLength(1);
  });

  it('finds the job whose create answer was lost by its key, and nothing for an unknown key', async () => {
    const { app } = await scope.open();
    const created = parseJob(await app.inject(post('lost-answer', { type: 'echo' })));
    await app.inject(post(undefined, { type: 'echo' }));
    const found = await app.inject({ method: 'GET', url: '/v1/jobs?idempotency_key=lost-answer' });
    expect(found.statusCode).toBe(200);
    expect(found.json<{ data: { id: string }[]; next_cursor: null }>()).toMatchObject({
      data: [{ id: created.id }],
      next_cursor: null,
    });
    const none = await app.inject({ method: 'GET', url: '/v1/jobs?idempotency_key=never-used' });
    expect(none.json()).toEqual({ data: [], next_cursor: null });
    const filteredOut = await app.inject({ method: 'GET', url: '/v1/jobs?idempotency_key=lost-answer&status=failed' });
    expect(filteredOut.json()).toEqual({ data: [], next_cursor: null });
  });

  it('makes one job for concurrent repeats', async () => {
    const { app } = await scope.open();
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => app.inject(post('burst', { type: 'echo', input: { value: 'x' } }))),
    );
    expect(new Set(responses.map((response) => parseJob(response).id)).size).toBe(1);
    expect(responses.filter((response) => response.headers['idempotent-replayed'] === 'true')).toHaveLength(4);
  });

  it('rejects a malformed key with 400 naming the header', async () => {
    const { app } = await scope.open();
    const bad = expectProblem(await app.inject(post('has space', { type: 'echo' })), 400, 'bad-request');
    expect(bad.errors?.[0]?.pointer).toBe('Idempotency-Key');
    expectProblem(await app.inject(post('x'.repeat(256), { type: 'echo' })), 400, 'bad-request');
  });
});
