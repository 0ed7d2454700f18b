import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { describeJobStoreContract } from './job-store.contract.js';

describeJobStoreContract('memory', async ({ jobTtlMs }) => new MemoryJobStore({ jobTtlMs, sweepIntervalMs: 50 }));
