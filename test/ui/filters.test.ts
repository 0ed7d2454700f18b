import { describe, expect, it } from 'vitest';
import {
  bulkFilter,
  describeFilter,
  filtersQuery,
  isoToLocalInput,
  listQuery,
  localInputToIso,
  pagerLinks,
  statusesOf,
} from '../../src/admin-ui/filters.js';

/* The jobs list's filters → URL and API queries (src/admin-ui/filters.js, served to the page as is), in Node. */

const params = (query: string) => new URLSearchParams(query);
/** A datetime-local value as the browser's time zone (here: the test process's) reads it. */
const local = (value: string) => new Date(value).toISOString();

describe("filtersQuery (the form applied: the list's new URL query)", () => {
  it("puts the form's filters in the URL, trimmed, and leaves the empty ones out", () => {
    const next = filtersQuery(params(''), { status: 'failed', type: ' report ', tenant: '', error: '   ', id: '' });
    expect(next.toString()).toBe('status=failed&type=report');
  });

  it('keeps the parameters the form does not show, replaces the ones it does, and starts again at page one', () => {
    const current = params(
      'status=queued&metadata.batch=b1&finished_after=2026-01-01T00:00:00.000Z&cursor=abc&limit=20',
    );
    const next = filtersQuery(current, { status: '', type: 'sleep' });
    expect(Object.fromEntries(next)).toEqual({
      'metadata.batch': 'b1',
      finished_after: '2026-01-01T00:00:00.000Z',
      limit: '20',
      type: 'sleep',
    });
    expect(current.get('cursor')).toBe('abc'); // the URL it came from is not changed
  });

  it("turns the datetime-local times (browser's zone) into ISO, and drops one that is no time", () => {
    const next = filtersQuery(params(''), { created_after: '2026-01-02T10:30', created_before: 'not a time' });
    expect(Object.fromEntries(next)).toEqual({ created_after: local('2026-01-02T10:30') });
  });

  it("reads a filter it does not know from the values as nothing (only the form's own filters are taken)", () => {
    expect(filtersQuery(params('worker=w1'), { worker: 'w2', status: 'running' }).toString()).toBe(
      'worker=w1&status=running',
    );
  });
});

describe('times between the URL (ISO) and a datetime-local input', () => {
  it("shows an ISO time in the browser's zone to the minute, and reads it back", () => {
    const iso = local('2026-03-04T05:06:59');
    expect(isoToLocalInput(iso)).toBe('2026-03-04T05:06');
    expect(localInputToIso(isoToLocalInput(iso))).toBe(local('2026-03-04T05:06'));
    expect(isoToLocalInput('')).toBe('');
    expect(isoToLocalInput('yesterday')).toBe('');
    expect(localInputToIso('')).toBeNull();
  });
});

describe("the API's query, the pager and the bulk filter", () => {
  it('asks GET /admin/jobs for a page of 50 unless the URL says otherwise', () => {
    expect(listQuery(params('status=failed')).toString()).toBe('status=failed&limit=50');
    expect(listQuery(params('limit=5&status=failed')).toString()).toBe('limit=5&status=failed');
  });

  it('links back to the newest page when paged, and on to older jobs when there are more', () => {
    expect(pagerLinks(params('status=failed'), null)).toEqual({ newest: null, older: null });
    expect(pagerLinks(params('status=failed'), 'c1')).toEqual({
      newest: null,
      older: '/admin/ui/jobs?status=failed&cursor=c1',
    });
    expect(pagerLinks(params('status=failed&cursor=c1'), 'c2')).toEqual({
      newest: '/admin/ui/jobs?status=failed',
      older: '/admin/ui/jobs?status=failed&cursor=c2',
    });
    expect(pagerLinks(params('cursor=c1'), undefined)).toEqual({ newest: '/admin/ui/jobs', older: null });
  });

  it('describes the filters as the URL writes them, without paging', () => {
    expect(describeFilter(params('status=failed&metadata.batch=b1&limit=20&cursor=x&order=asc&type='))).toBe(
      'status=failed, metadata.batch=b1',
    );
    expect(describeFilter(params('limit=20'))).toBe('');
  });

  it('reads the status filter as a list', () => {
    expect(statusesOf(params('status=failed, canceled,'))).toEqual(['failed', 'canceled']);
    expect(statusesOf(params(''))).toEqual([]);
  });

  it("makes POST /admin/bulk's filter: metadata.<key> as metadata, status as text or as an array, no paging", () => {
    const list = params('status=failed,canceled&type=report&metadata.batch=b1&metadata.=x&limit=20&cursor=c&tenant=');
    expect(bulkFilter(list)).toEqual({
      status: 'failed,canceled',
      type: 'report',
      'metadata.': 'x',
      metadata: { batch: 'b1' },
    });
    expect(bulkFilter(list, true)).toEqual({
      status: ['failed', 'canceled'],
      type: 'report',
      'metadata.': 'x',
      metadata: { batch: 'b1' },
    });
    expect(bulkFilter(params(''))).toEqual({});
  });
});
