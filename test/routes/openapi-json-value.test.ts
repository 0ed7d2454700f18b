import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonValue } from '../../src/routes/schemas.js';
import { parseJob, startHarness, type Harness } from './helpers.js';

/** JsonValue is documented as any value; at runtime it still refuses what is not JSON data (as z.json() did). */
describe('the JsonValue schema (any-JSON fields)', () => {
  it.each([[{}], [[]], [null], [0], [-1.5], ['text'], [true], [{ a: [1, null, { b: 'c', d: [[], {}] }] }]])(
    'accepts %j',
    (value) => {
      expect(jsonValue.safeParse(value).success).toBe(true);
    },
  );

  it.each([
    ['undefined', undefined],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a function', () => 1],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a bigint', 1n],
    ['an undefined member', { a: undefined }],
    ['a nested function', [{ a: [() => 1] }]],
  ])('refuses %s', (_what, value) => {
    expect(jsonValue.safeParse(value).success).toBe(false);
  });

  it('checks any depth without overflowing the stack, and ends on a cycle', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(jsonValue.safeParse(deep).success).toBe(true);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(typeof jsonValue.safeParse(cyclic).success).toBe('boolean');
  });

  describe('over HTTP', () => {
    let harness: Harness;
    beforeAll(async () => {
      harness = await startHarness();
    });
    afterAll(() => harness.close());

    it('a submit keeps any JSON input as sent', async () => {
      const input = { value: { list: [1, 2.5, -3, null, true, 'four', [], {}], nested: { deeper: { n: 0 } } } };
      const job = parseJob(
        await harness.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo', input } }),
      );
      expect(job.input).toEqual(input);
      const empty = parseJob(await harness.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } }));
      expect(empty.input).toEqual({});
    });
  });
});
