// The signatures of events.js (what the page makes of GET /admin/events), read by the TypeScript tests and
// by events.js itself (see format.d.ts for why the signatures live here). No DOM types.

/** Most job ids one stream watches (GET /admin/events takes up to 50). */
export const MAX_WATCHED: number;

/** A value as text with its keys in sorted order (undefined fields left out): the same value always gives the same text. */
export function stable(value: unknown): string;

/** Whether `known` already says everything the event `fresh` says (the fields they share are equal). */
export function sameAs(fresh: object, known: object | null | undefined): boolean;

/** Whether the job event `fresh` differs from the job `known` only in its progress (progress, updated_at, version). */
export function progressOnly(fresh: object, known: object): boolean;

/** The job ids a stream can watch: well-formed ones (a malformed one would refuse the whole stream), no repeats, at most MAX_WATCHED. */
export function watchable(ids: Iterable<string>): string[];
