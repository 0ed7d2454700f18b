import { inject } from 'vitest';
import { describeScheduleStoreContract } from './schedule-store.contract.js';
import { storePair } from './schedule-fixtures.js';

for (const kind of ['memory', 'redis'] as const)
  describeScheduleStoreContract(kind, () => storePair(kind, inject('redisUrl')));
