import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../../src/handlers/handler.js';
import { claimLimitOf, HandlerRegistry } from '../../src/handlers/registry.js';

/* A type's scheduling settings as claims and submits get them: the handler's own, each overridden by TYPE_LIMITS. */

const handler = (type: string, settings: Partial<Parameters<typeof defineHandler>[0]> = {}) =>
  defineHandler({ type, input: z.object({}), run: async () => null, ...settings });

describe('HandlerRegistry.limits', () => {
  it('carries key_concurrency and fair_by, and lists a type that sets only them', () => {
    const registry = new HandlerRegistry([
      handler('docs', { key_concurrency: 1, fair_by: 'key' }),
      handler('mail', { max_concurrency: 5, rate: { max: 10, per_s: 2 } }),
      handler('fair', { fair_by: 'tenant' }),
      handler('plain'),
    ]);
    expect(registry.limits()).toEqual({
      docs: { keyConcurrency: 1, fairBy: 'key' },
      mail: { maxConcurrency: 5, rate: { max: 10, perMs: 2000 } },
      fair: { fairBy: 'tenant' },
    });
  });

  it("lets each TYPE_LIMITS setting override the handler's own, keeping the others", () => {
    const registry = new HandlerRegistry([handler('docs', { key_concurrency: 1, fair_by: 'key', max_concurrency: 9 })]);
    expect(registry.limits({ docs: { keyConcurrency: 3 }, plain: { fairBy: 'key' } })).toEqual({
      docs: { keyConcurrency: 3, fairBy: 'key', maxConcurrency: 9 },
    });
    expect(registry.limits({ docs: { fairBy: 'tenant' } }).docs).toEqual({
      keyConcurrency: 1,
      fairBy: 'tenant',
      maxConcurrency: 9,
    });
  });

  it("reads a declaration's nulls as unset", () => {
    expect(claimLimitOf({ max_concurrency: null, rate: null, key_concurrency: null, fair_by: null })).toBeUndefined();
    expect(claimLimitOf({ key_concurrency: 2, fair_by: null }, { fairBy: 'key' })).toEqual({
      keyConcurrency: 2,
      fairBy: 'key',
    });
  });
});
