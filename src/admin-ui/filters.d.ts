// The signatures of filters.js (the jobs list's filters), read by the TypeScript tests and by filters.js
// itself (see format.d.ts for why the signatures live here). No DOM types: the Node tsconfig reads it too.

/** The job statuses, in the order the page shows them. */
export const STATUSES: readonly string[];

/** The filters the list's form shows, by their names in the URL (the admin API's own names). */
export const FILTERS: readonly string[];

/** The form's filters that are times (datetime-local inputs, in the browser's time zone; ISO in the URL). */
export const TIME_FILTERS: readonly string[];

/** URL parameters of the jobs list that are paging, not filters. */
export const PAGING: readonly string[];

/** Jobs a page of the list shows unless the URL says `limit`. */
export const PAGE_SIZE: number;

/** An ISO time as the value of a datetime-local input (browser's time zone); '' when it is no time. */
export function isoToLocalInput(iso: string): string;

/** A datetime-local input's value as ISO; null when it is no time. */
export function localInputToIso(value: string): string | null;

/**
 * The list's new URL query after the form is applied: the form's filters from `values` (trimmed; empty ones
 * dropped; times as ISO), the URL's other parameters kept, and `cursor` dropped (a new filter starts at page one).
 */
export function filtersQuery(current: URLSearchParams, values: Readonly<Record<string, string>>): URLSearchParams;

/** GET /admin/jobs's query for the list's URL query: the same names, `limit` PAGE_SIZE unless given. */
export function listQuery(params: URLSearchParams): URLSearchParams;

/**
 * Links of a list's pager: back to the first page when paged, and on to the next when there are more. `hrefOf`: the
 * list's URL for a query (the jobs list's by default).
 */
export function pagerLinks(
  params: URLSearchParams,
  nextCursor: string | null | undefined,
  hrefOf?: (query: URLSearchParams) => string,
): { newest: string | null; older: string | null };

/** The list's filters as written in its URL ("status=failed, type=report"), or '' when there are none. */
export function describeFilter(params: URLSearchParams): string;

/** The statuses the list's `status` parameter names (it takes a comma-separated list). */
export function statusesOf(params: URLSearchParams): string[];

/** The `filter` of POST /admin/bulk from the list's URL query (the names GET /admin/jobs takes). */
export function bulkFilter(params: URLSearchParams, statusAsArray?: boolean): Record<string, unknown>;
