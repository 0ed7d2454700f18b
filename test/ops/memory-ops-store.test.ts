import { MemoryOpsStore } from '../../src/ops/memory-ops-store.js';
import { describeOpsStoreContract } from './ops-store.contract.js';

describeOpsStoreContract('memory', async (options) => {
  const ops = new MemoryOpsStore(options);
  return { ops, close: () => ops.close() };
});
