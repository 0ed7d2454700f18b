import { describe, expect, it } from 'vitest';
import {
  BASE,
  isDashboardPath,
  jobHref,
  jobsHref,
  navSection,
  parsePath,
  scheduleHref,
  schedulesHref,
} from '../../src/admin-ui/paths.js';

/* The dashboard's router path parsing and links (src/admin-ui/paths.js, served to the page as is), in Node. */

const ID = '01JD3M5W6SX1T4KQ8V0ZC2N7GH';

describe('parsePath (which view a path shows)', () => {
  it.each([
    ['/admin/ui', { view: 'overview' }],
    ['/admin/ui/', { view: 'overview' }],
    ['/admin/ui/overview', { view: 'overview' }],
    ['/admin', { view: 'overview' }], // until start() replaces it with /admin/ui
    ['/admin/ui/jobs', { view: 'jobs' }],
    ['/admin/ui/jobs//', { view: 'jobs' }],
    [`/admin/ui/jobs/${ID}`, { view: 'job', id: ID }],
    [`/admin/ui/jobs/${ID}/`, { view: 'job', id: ID }],
    ['/admin/ui/jobs/an%20id%2Fwith%20a%20slash', { view: 'job', id: 'an id/with a slash' }],
    [`/admin/ui/jobs/${ID}/logs`, { view: 'not-found' }],
    ['/admin/ui/workers', { view: 'not-found' }],
    ['/admin/uix', { view: 'not-found' }],
    ['/admin/ui/jobs/%E0%A4%A', { view: 'not-found' }], // broken percent-encoding names no job
    ['/admin/ui/schedules', { view: 'schedules' }],
    ['/admin/ui/schedules/', { view: 'schedules' }],
    ['/admin/ui/schedules/acme/nightly', { view: 'schedule', tenant: 'acme', id: 'nightly' }],
    ['/admin/ui/schedules/-/a%2Fb%20c', { view: 'schedule', tenant: '-', id: 'a/b c' }],
    ['/admin/ui/schedules/acme', { view: 'not-found' }],
    ['/admin/ui/schedules/acme/nightly/jobs', { view: 'not-found' }],
    ['/admin/ui/schedules/acme/%E0%A4%A', { view: 'not-found' }],
  ])('%s → %j', (path, route) => {
    expect(parsePath(path)).toEqual(route);
  });
});

describe('links', () => {
  it("keeps only the dashboard's own paths for navigation without a page load", () => {
    expect(isDashboardPath(BASE)).toBe(true);
    expect(isDashboardPath('/admin/ui/jobs')).toBe(true);
    expect(isDashboardPath('/admin/uix')).toBe(false);
    expect(isDashboardPath('/admin/jobs')).toBe(false); // the API, not a view
    expect(isDashboardPath('/admin')).toBe(false);
  });

  it('marks Jobs in the nav on the list and on a job, Schedules on theirs, Overview elsewhere', () => {
    expect(navSection('/admin/ui/jobs')).toBe('jobs');
    expect(navSection(`/admin/ui/jobs/${ID}`)).toBe('jobs');
    expect(navSection('/admin/ui/schedules')).toBe('schedules');
    expect(navSection('/admin/ui/schedules/acme/nightly')).toBe('schedules');
    expect(navSection('/admin/ui/schedulesx')).toBe('overview');
    expect(navSection('/admin/ui')).toBe('overview');
    expect(navSection('/admin/ui/nothing-here')).toBe('overview');
  });

  it('builds the links between views, encoding what needs it', () => {
    expect(jobHref(ID)).toBe(`/admin/ui/jobs/${ID}`);
    expect(jobHref('a/b c')).toBe('/admin/ui/jobs/a%2Fb%20c');
    expect(parsePath(jobHref('a/b c'))).toEqual({ view: 'job', id: 'a/b c' });
    expect(jobsHref()).toBe('/admin/ui/jobs');
    expect(jobsHref('')).toBe('/admin/ui/jobs');
    expect(jobsHref('status=failed')).toBe('/admin/ui/jobs?status=failed');
    expect(jobsHref(new URLSearchParams({ type: 'report', 'metadata.batch': 'b 1' }))).toBe(
      '/admin/ui/jobs?type=report&metadata.batch=b+1',
    );
    expect(jobsHref(new URLSearchParams())).toBe('/admin/ui/jobs');
    expect(scheduleHref('acme', 'a/b c')).toBe('/admin/ui/schedules/acme/a%2Fb%20c');
    expect(parsePath(scheduleHref('-', 'a/b c'))).toEqual({ view: 'schedule', tenant: '-', id: 'a/b c' });
    expect(schedulesHref()).toBe('/admin/ui/schedules');
    expect(schedulesHref(new URLSearchParams({ tenant: 'acme', paused: 'true' }))).toBe(
      '/admin/ui/schedules?tenant=acme&paused=true',
    );
  });
});
