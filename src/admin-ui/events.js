// @ts-check
/*
 * What the page makes of the event stream (GET /admin/events), without the DOM: whether an event says
 * anything the view does not show yet, and which job ids a stream may watch. Unit-tested in Node
 * (test/ui/events.test.ts); signatures in events.d.ts. The stream itself is live.js.
 */

/** @type {typeof import('./events.js').MAX_WATCHED} */
export const MAX_WATCHED = 50;
/** A job id as the service makes them (a ULID). */
const JOB_ID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
/** Fields of a job that only move its progress bar: any other change also changes its timeline or logs. */
const PROGRESS_FIELDS = new Set(['progress', 'updated_at', 'version']);

/** @type {typeof import('./events.js').stable} */
export function stable(value) {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object') {
    const record = /** @type {Record<string, unknown>} */ (value);
    return `{${Object.keys(record)
      .sort()
      .filter((key) => record[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${stable(record[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/** An object's field by name (the objects compared are JSON: plain records). */
const field = (/** @type {object} */ value, /** @type {string} */ key) =>
  /** @type {Record<string, unknown>} */ (value)[key];

/** @type {typeof import('./events.js').sameAs} */
export const sameAs = (fresh, known) =>
  Boolean(known) &&
  Object.keys(fresh).every((key) => stable(field(fresh, key)) === stable(known ? field(known, key) : undefined));

/** @type {typeof import('./events.js').progressOnly} */
export const progressOnly = (fresh, known) =>
  Object.keys(fresh).every(
    (key) => PROGRESS_FIELDS.has(key) || stable(field(fresh, key)) === stable(field(known, key)),
  );

/** @type {typeof import('./events.js').watchable} */
export const watchable = (ids) => [...new Set(ids)].filter((id) => JOB_ID.test(id)).slice(0, MAX_WATCHED);
