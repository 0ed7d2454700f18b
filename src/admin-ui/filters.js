// @ts-check
/*
 * The jobs list's filters. The list's URL query *is* GET /admin/jobs's query (the same names), so a filtered
 * list is a bookmark and filters the form does not show (finished_after, worker, metadata.<key>, …) work in
 * the URL too. Pure (no DOM), unit-tested in Node (test/ui/filters.test.ts). Signatures: filters.d.ts.
 */

import { jobsHref } from './paths.js';

/** @type {typeof import('./filters.js').STATUSES} */
export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
/** @type {typeof import('./filters.js').FILTERS} */
export const FILTERS = [
  'status',
  'type',
  'tenant',
  'concurrency_key',
  'error',
  'created_after',
  'created_before',
  'id',
];
/** @type {typeof import('./filters.js').TIME_FILTERS} */
export const TIME_FILTERS = ['created_after', 'created_before'];
/** @type {typeof import('./filters.js').PAGING} */
export const PAGING = ['limit', 'cursor', 'order'];
/** @type {typeof import('./filters.js').PAGE_SIZE} */
export const PAGE_SIZE = 50;

/** @type {(n: number) => string} */
const pad = (n) => String(n).padStart(2, '0');

/** @type {typeof import('./filters.js').isoToLocalInput} */
export function isoToLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** @type {typeof import('./filters.js').localInputToIso} */
export function localInputToIso(value) {
  // A datetime-local value has no zone: Date reads it in the browser's, which is what the operator typed in.
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** @type {typeof import('./filters.js').filtersQuery} */
export function filtersQuery(current, values) {
  const next = new URLSearchParams(current);
  next.delete('cursor');
  for (const name of FILTERS) {
    next.delete(name);
    const value = values[name]?.trim() ?? '';
    if (!value) continue;
    if (TIME_FILTERS.includes(name)) {
      const iso = localInputToIso(value);
      if (iso) next.set(name, iso);
    } else next.set(name, value);
  }
  return next;
}

/** @type {typeof import('./filters.js').listQuery} */
export function listQuery(params) {
  const query = new URLSearchParams(params);
  if (!query.has('limit')) query.set('limit', String(PAGE_SIZE));
  return query;
}

/** @type {typeof import('./filters.js').pagerLinks} */
export function pagerLinks(params, nextCursor, hrefOf = jobsHref) {
  let newest = null;
  if (params.get('cursor')) {
    const first = new URLSearchParams(params);
    first.delete('cursor');
    newest = hrefOf(first);
  }
  let older = null;
  if (nextCursor) {
    const next = new URLSearchParams(params);
    next.set('cursor', nextCursor);
    older = hrefOf(next);
  }
  return { newest, older };
}

/** @type {typeof import('./filters.js').describeFilter} */
export function describeFilter(params) {
  return [...params]
    .filter(([name, value]) => !PAGING.includes(name) && value !== '')
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
}

/** @type {typeof import('./filters.js').statusesOf} */
export const statusesOf = (params) =>
  (params.get('status') ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

/**
 * `metadata.<key>` parameters become `metadata`; `status` stays the comma-separated text the search takes, or
 * becomes an array (`statusAsArray`) for a service whose bulk filter takes only that (as its OpenAPI says).
 *
 * @type {typeof import('./filters.js').bulkFilter}
 */
export function bulkFilter(params, statusAsArray = false) {
  /** @type {Record<string, unknown>} */
  const filter = {};
  /** @type {Record<string, string>} */
  const metadata = {};
  for (const [name, value] of params) {
    if (PAGING.includes(name) || value === '') continue;
    if (name.startsWith('metadata.') && name.length > 'metadata.'.length)
      metadata[name.slice('metadata.'.length)] = value;
    else if (name === 'status' && statusAsArray)
      filter.status = value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
    else filter[name] = value;
  }
  if (Object.keys(metadata).length > 0) filter.metadata = metadata;
  return filter;
}
