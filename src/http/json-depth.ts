/**
 * The nesting limit of client JSON. Every JSON body is checked once, in the body parser, before it is
 * parsed: an iterative scan of the text, so even a body nested a million levels deep costs one pass and can
 * never blow the stack. Everything downstream (zod's z.json(), canonical JSON for idempotency and result
 * reuse, JSON.stringify into the store, webhooks, export) then only ever sees values at most this deep.
 * Lua cjson in Redis never decodes a job's input (it is kept as a JSON string), and its own limit (1000) is
 * far above this one anyway.
 */

/** Deepest nesting of arrays and objects in a JSON body; the body's own object or array is level 1. */
export const MAX_JSON_DEPTH = 64;

/** Longest JSON Pointer a too-deep answer names; a longer one is cut back, whole segments at a time, to an ancestor. */
const MAX_POINTER_LENGTH = 512;

const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

interface Level {
  array: boolean;
  /** Arrays: the index of the current item. */
  index: number;
  /** Objects: the raw text of the current key (with its quotes), or undefined before the first key. */
  key: string | undefined;
  /** Objects: the next string is a key (just after `{` or `,`). */
  expectKey: boolean;
}

/** The position just past the closing quote of the string starting at `start`, or text.length when unterminated. */
function endOfString(text: string, start: number): number {
  let at = start;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at === -1) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at + 1;
  }
}

function decodeKey(raw: string): string {
  try {
    const key: unknown = JSON.parse(raw);
    return typeof key === 'string' ? key : raw;
  } catch {
    return raw;
  }
}

/** One JSON Pointer (RFC 6901) segment, with its leading slash. */
const pointerSegment = (segment: string | number): string =>
  `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`;

/**
 * The path (JSON Pointer segments) of the first array or object in the JSON `text` that sits deeper than
 * `maxDepth` levels, or undefined when none does. Exact for valid JSON; for invalid JSON the answer does
 * not matter (the parser refuses it) but the scan still ends, in one pass, without recursion.
 */
export function findTooDeep(text: string, maxDepth: number = MAX_JSON_DEPTH): (string | number)[] | undefined {
  const levels: Level[] = [];
  const length = text.length;
  for (let at = 0; at < length; at++) {
    const char = text.charCodeAt(at);
    if (char === QUOTE) {
      const end = endOfString(text, at);
      const top = levels[levels.length - 1];
      if (top && !top.array && top.expectKey) {
        top.key = text.slice(at, end);
        top.expectKey = false;
      }
      at = end - 1;
    } else if (char === OPEN_OBJECT || char === OPEN_ARRAY) {
      if (levels.length >= maxDepth)
        return levels.map((level) => (level.array ? level.index : decodeKey(level.key ?? '""')));
      levels.push({ array: char === OPEN_ARRAY, index: 0, key: undefined, expectKey: char === OPEN_OBJECT });
    } else if (char === CLOSE_OBJECT || char === CLOSE_ARRAY) {
      levels.pop();
    } else if (char === COMMA) {
      const top = levels[levels.length - 1];
      if (top?.array) top.index++;
      else if (top) top.expectKey = true;
    }
  }
  return undefined;
}

/** The pointer to name for a too-deep `path`: the whole path, or its deepest ancestor whose pointer fits MAX_POINTER_LENGTH. */
export function tooDeepPointer(path: readonly (string | number)[]): string {
  let pointer = '';
  for (const segment of path) {
    const next = pointer + pointerSegment(segment);
    if (next.length > MAX_POINTER_LENGTH) break;
    pointer = next;
  }
  return pointer;
}

/**
 * Where an already parsed JSON `value` nests deeper than `maxDepth` (same answer as findTooDeep on its
 * text), or undefined. Iterative, for values that did not come through the body parser (an import file).
 */
export function findTooDeepValue(value: unknown, maxDepth: number = MAX_JSON_DEPTH): (string | number)[] | undefined {
  const isContainer = (item: unknown): item is object => item !== null && typeof item === 'object';
  if (!isContainer(value)) return undefined;
  if (maxDepth < 1) return [];
  interface Frame {
    node: object;
    keys: string[] | undefined;
    size: number;
    next: number;
  }
  const frame = (node: object): Frame => {
    const keys = Array.isArray(node) ? undefined : Object.keys(node);
    return { node, keys, size: keys ? keys.length : (node as unknown[]).length, next: 0 };
  };
  const stack: Frame[] = [frame(value)];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next >= top.size) {
      stack.pop();
      continue;
    }
    const i = top.next++;
    const child = top.keys ? (top.node as Record<string, unknown>)[top.keys[i]!] : (top.node as unknown[])[i];
    if (!isContainer(child)) continue;
    if (stack.length >= maxDepth) return stack.map((f) => (f.keys ? f.keys[f.next - 1]! : f.next - 1));
    stack.push(frame(child));
  }
  return undefined;
}
