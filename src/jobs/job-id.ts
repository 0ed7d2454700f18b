import { randomFillSync } from 'node:crypto';

/**
 * Job ids are ULIDs: 48 bits of milliseconds, a 10-bit count of the ids this process made in that millisecond,
 * then 70 random bits (never the monotonic variant, whose next id in the same millisecond is guessable: the count
 * orders them, the random bits stay unguessable). Their lexicographic order is creation order, which the stores
 * use for listing (an id is its own time index and its own paging cursor) and to break ties between ready jobs
 * of one millisecond: one client's submits of a key in the same millisecond run in submit order.
 *
 * Written here rather than taken from the `ulid` package, which draws one crypto call per character:
 * that cost ~50 µs per id and was the largest single cost of submitting a job. This draws random bytes
 * from the same CSPRNG in 4 KiB blocks.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32
const TIME_CHARS = 10;
const SEQUENCE_CHARS = 2;
const RANDOM_CHARS = 14;
/** The most ids of one millisecond the count orders (1024: two base32 characters); later ones share its last value. */
const SEQUENCE_MAX = 32 ** SEQUENCE_CHARS - 1;
const MAX_TIME = 2 ** 48 - 1;

const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomChars(): string {
  if (poolOffset + RANDOM_CHARS > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let out = '';
  // One byte per character, keeping its low 5 bits: 14 × 5 = 70 uniformly random bits.
  for (let i = 0; i < RANDOM_CHARS; i++) out += ALPHABET[pool[poolOffset + i]! & 31];
  poolOffset += RANDOM_CHARS;
  return out;
}

function encodeTime(ms: number): string {
  let time = Math.min(MAX_TIME, Math.max(0, Math.floor(ms)));
  let out = '';
  for (let i = 0; i < TIME_CHARS; i++) {
    out = ALPHABET[time % 32]! + out;
    time = Math.floor(time / 32);
  }
  return out;
}

let sequenceMs = -1;
let sequence = 0;

export function newJobId(now: number): string {
  const ms = Math.floor(now);
  if (ms === sequenceMs) sequence = Math.min(SEQUENCE_MAX, sequence + 1);
  else {
    sequenceMs = ms;
    sequence = 0;
  }
  return encodeTime(ms) + ALPHABET[sequence >> 5]! + ALPHABET[sequence & 31]! + randomChars();
}

/**
 * A partitioned Redis store (redis-job-store.ts) writes the partition it placed a job in over the first two random
 * characters (0 to 1023; 60 random bits remain), so reading the job by its id touches that partition alone.
 */
const PARTITION_AT = TIME_CHARS + SEQUENCE_CHARS;

export function withPartition(id: string, partition: number): string {
  return id.slice(0, PARTITION_AT) + ALPHABET[partition >> 5]! + ALPHABET[partition & 31]! + id.slice(PARTITION_AT + 2);
}

/** The partition `withPartition` wrote into `id` (meaningless for an id it did not write). */
export function partitionInId(id: string): number {
  return ALPHABET.indexOf(id[PARTITION_AT]!) * 32 + ALPHABET.indexOf(id[PARTITION_AT + 1]!);
}

const canonicalUlid = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** Only the canonical (upper-case) spelling: ids are compared as stored. */
export const isJobId = (value: string): boolean => canonicalUlid.test(value);

export function jobIdTime(id: string): number {
  let time = 0;
  for (let i = 0; i < TIME_CHARS; i++) time = time * 32 + ALPHABET.indexOf(id[i]!);
  return time;
}

/** The smallest id any job created at `ms` can have. */
export const lowestIdAt = (ms: number): string => encodeTime(ms) + '0'.repeat(RANDOM_CHARS);

/** The largest id any job created at `ms` can have. */
export const highestIdAt = (ms: number): string => encodeTime(ms) + 'Z'.repeat(RANDOM_CHARS);
