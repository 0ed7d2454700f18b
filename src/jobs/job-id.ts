import { decodeTime, encodeTime, isValid, ulid } from 'ulid';

/**
 * Job ids are ULIDs: 48 bits of milliseconds then 80 fully random bits (never the monotonic variant,
 * whose next id in the same millisecond is guessable). Their lexicographic order is creation order,
 * which the stores use for listing: an id is its own time index and its own paging cursor.
 */
export const newJobId = (now: number): string => ulid(now);

const canonicalUlid = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** Only the canonical (upper-case) spelling: ids are compared as stored. */
export const isJobId = (value: string): boolean => canonicalUlid.test(value) && isValid(value);

export const jobIdTime = (id: string): number => decodeTime(id);

/** The smallest id any job created at `ms` can have. */
export const lowestIdAt = (ms: number): string => encodeTime(Math.max(0, ms), 10) + '0'.repeat(16);

/** The largest id any job created at `ms` can have. */
export const highestIdAt = (ms: number): string => encodeTime(Math.max(0, ms), 10) + 'Z'.repeat(16);
