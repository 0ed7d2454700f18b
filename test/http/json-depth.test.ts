import { describe, expect, it } from 'vitest';
import { findTooDeep, findTooDeepValue, MAX_JSON_DEPTH, tooDeepPointer } from '../../src/http/json-depth.js';
import { canonicalJson } from '../../src/jobs/canonical-json.js';
import { seededRandom } from '../helpers/seeded-random.js';

/* The nesting limit's scan, and canonical JSON without recursion. */

const keys = ['a', 'b', 'a/b', '~', '"', '\\', '[', '{', '}', ']', ',', ':', '', 'é', '\u2028', '__proto__x'];

function randomJson(next: () => number, depth: number): unknown {
  const roll = next();
  if (depth <= 0 || roll < 0.3) return [null, true, 1.5, -0, 'x', '[{"\\', '', 1e300][Math.floor(next() * 8)];
  if (roll < 0.65) return Array.from({ length: Math.floor(next() * 4) }, () => randomJson(next, depth - 1));
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 4); i > 0; i--)
    object[keys[Math.floor(next() * keys.length)]!] = randomJson(next, depth - 1);
  return object;
}

/** The reference: the recursive canonical JSON the service used before. */
function recursiveCanonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => recursiveCanonical(item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${recursiveCanonical(item)}`).join(',')}}`;
}

/** The depth of a parsed value, recursively (test values are shallow). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe("findTooDeep (the body parser's scan of the text)", () => {
  it('agrees with the parsed value on random JSON, strings full of brackets included', () => {
    const next = seededRandom(7);
    for (let i = 0; i < 2000; i++) {
      const value = randomJson(next, 8);
      const text = JSON.stringify(value, null, next() < 0.5 ? 0 : 2);
      for (const limit of [1, 2, 3, 5]) {
        const fromText = findTooDeep(text, limit);
        expect(fromText, text).toEqual(findTooDeepValue(value, limit));
        expect(fromText === undefined, text).toBe(depthOf(value) <= limit);
      }
    }
  });

  it('names the first container past the limit, with keys decoded', () => {
    expect(findTooDeep('{"a":[1,{"b\\"c":[[]]}]}', 3)).toEqual(['a', 1, 'b"c']);
    expect(findTooDeep('{"a":[1,{"b":[]}]}', 4)).toBeUndefined();
    expect(findTooDeep('[[["[[[["]]]', 3)).toBeUndefined();
    expect(findTooDeep('"just a string"', 0)).toBeUndefined();
    expect(findTooDeep('[]', 0)).toEqual([]);
  });

  it('scans a million levels in one pass, without recursion', () => {
    const text = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(findTooDeep(text)).toEqual(Array.from({ length: MAX_JSON_DEPTH }, () => 0));
    expect(findTooDeepValue(JSON.parse(text) as unknown)).toEqual(Array.from({ length: MAX_JSON_DEPTH }, () => 0));
  });

  it('keeps pointers short by naming an ancestor, whole segments at a time', () => {
    expect(tooDeepPointer(['input', 'a/b', '~', 0])).toBe('/input/a~1b/~0/0');
    const long = tooDeepPointer(Array.from({ length: 64 }, () => 'x'.repeat(40)));
    expect(long.length).toBeLessThanOrEqual(512);
    expect(long).toMatch(/^(\/x{40})+$/);
    expect(tooDeepPointer(['y'.repeat(10_000), 'z'])).toBe('');
  });
});

describe('canonicalJson', () => {
  it('gives what the recursive version gave', () => {
    const next = seededRandom(11);
    for (let i = 0; i < 2000; i++) {
      const value = randomJson(next, 6);
      expect(canonicalJson(value)).toBe(recursiveCanonical(value));
    }
    expect(canonicalJson({ b: 1, a: [undefined, { d: undefined, c: 2 }], e: undefined })).toBe(
      '{"a":[null,{"c":2}],"b":1}',
    );
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson('\ud800')).toBe('"\\ud800"');
  });

  it('handles any depth', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    expect(canonicalJson(deep)).toHaveLength(400_000);
  });
});
