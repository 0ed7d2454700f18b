/** A value still to write, told apart from the literal text between values. */
class Pending {
  constructor(readonly value: unknown) {}
}

/**
 * JSON with object keys sorted at every level: equal values give equal text, whatever the key order.
 * Iterative (an explicit stack, no recursion), so no nesting depth can overflow the call stack.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const work: (Pending | string)[] = [new Pending(value)];
  while (work.length > 0) {
    const item = work.pop()!;
    if (typeof item === 'string') {
      out.push(item);
      continue;
    }
    const current = item.value;
    if (current === null || typeof current !== 'object') {
      out.push(JSON.stringify(current) ?? 'null');
    } else if (Array.isArray(current)) {
      out.push('[');
      work.push(']');
      for (let i = current.length - 1; i >= 0; i--) {
        work.push(new Pending(current[i]));
        if (i > 0) work.push(',');
      }
    } else {
      const entries = Object.entries(current as Record<string, unknown>)
        .filter(([, entry]) => entry !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      out.push('{');
      work.push('}');
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, entry] = entries[i]!;
        work.push(new Pending(entry));
        work.push(`${JSON.stringify(key)}:`);
        if (i > 0) work.push(',');
      }
    }
  }
  return out.join('');
}
