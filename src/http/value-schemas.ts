import { z } from 'zod';

/**
 * Zod schemas of single values that the HTTP contract (src/routes) and the operator tools beside it
 * (src/search, src/cli) share, and how the service renders its epoch-millisecond times into the first.
 */

/** Every time the API shows or takes. */
export const timestamp = z.iso.datetime({ offset: true }).describe('RFC 3339 time, UTC');

/** An epoch-millisecond time as the API shows it (`timestamp`). */
export const rfc3339 = (ms: number): string => new Date(ms).toISOString();

/** A comma-separated query value (`queued,running`) as an array of `item`s; empty parts are dropped. */
export const commaList = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part.length > 0),
    )
    .pipe(z.array(item));
