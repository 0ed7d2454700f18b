import { describe, expect, it } from 'vitest';
import { DeclaredTypes } from '../../src/job-types/declared-types.js';
import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import type { DeclaredTypeDef } from '../../src/ops/ops-store.js';

const def = (type: string): DeclaredTypeDef => ({
  type,
  input_schema: { type: 'object' },
  description: null,
  timeout_s: null,
  max_attempts: null,
  max_concurrency: null,
  rate: null,
  lease_s: null,
  key_concurrency: null,
  fair_by: null,
  created_at: 0,
  updated_at: 0,
});

describe('declared types on an instance that has not heard of a change yet', () => {
  it('reads the declarations again when a type is not known here, at most once a second for misses', async () => {
    const ops = new MemoryOpsStore();
    // This instance hears no control messages: it learns of declarations only by reading them.
    ops.subscribeControl = async () => () => undefined;
    const types = await DeclaredTypes.load(ops);
    await ops.declareType(def('research')); // declared through another instance
    expect(types.get('research')).toBeUndefined();
    let reads = 0;
    const read = ops.declaredTypes.bind(ops);
    ops.declaredTypes = () => {
      reads++;
      return read();
    };
    expect(await types.knowsAll(['research'])).toBe(true);
    expect(reads).toBe(1);
    expect(await types.knowsAll(['research'])).toBe(true);
    expect(reads).toBe(1); // known: no read
    expect(await types.knowsAll(['nope'])).toBe(false);
    expect(await types.knowsAll(['nope'])).toBe(false);
    expect(reads).toBe(1); // the second miss within a second of the first read nothing
    await types.close();
  });
});
