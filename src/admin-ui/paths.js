// @ts-check
/*
 * The dashboard's URLs: which view a path shows, and the links between views. Pure (no DOM, no location),
 * so the router's path parsing is unit-tested in Node (test/ui/paths.test.ts). Signatures: paths.d.ts.
 */

/** @type {typeof import('./paths.js').BASE} */
export const BASE = '/admin/ui';

const JOB_PATH = /^\/admin\/ui\/jobs\/([^/]+)$/;
const SCHEDULE_PATH = /^\/admin\/ui\/schedules\/([^/]+)\/([^/]+)$/;

/** @type {typeof import('./paths.js').parsePath} */
export function parsePath(pathname) {
  const path = pathname.replace(/\/+$/, '');
  // `/admin` is the page too until start() has replaced it with /admin/ui in the address bar.
  if (path === BASE || path === `${BASE}/overview` || path === '/admin') return { view: 'overview' };
  if (path === `${BASE}/jobs`) return { view: 'jobs' };
  if (path === `${BASE}/schedules`) return { view: 'schedules' };
  const match = JOB_PATH.exec(path);
  if (match?.[1]) {
    const id = decodeOrNull(match[1]);
    // A hand-typed path with broken percent-encoding names no job: show "not found", not a page stuck loading.
    return id === null ? { view: 'not-found' } : { view: 'job', id };
  }
  const schedule = SCHEDULE_PATH.exec(path);
  if (schedule?.[1] && schedule[2]) {
    const tenant = decodeOrNull(schedule[1]);
    const id = decodeOrNull(schedule[2]);
    return tenant === null || id === null ? { view: 'not-found' } : { view: 'schedule', tenant, id };
  }
  return { view: 'not-found' };
}

/** @param {string} text */
function decodeOrNull(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/** @type {typeof import('./paths.js').isDashboardPath} */
export const isDashboardPath = (pathname) => pathname === BASE || pathname.startsWith(`${BASE}/`);

/** @type {typeof import('./paths.js').navSection} */
export const navSection = (pathname) =>
  pathname.startsWith(`${BASE}/jobs`)
    ? 'jobs'
    : pathname === `${BASE}/schedules` || pathname.startsWith(`${BASE}/schedules/`)
      ? 'schedules'
      : 'overview';

/** @type {typeof import('./paths.js').jobHref} */
export const jobHref = (id) => `${BASE}/jobs/${encodeURIComponent(id)}`;

/** @type {typeof import('./paths.js').jobsHref} */
export function jobsHref(query = '') {
  const text = String(query);
  return `${BASE}/jobs${text ? `?${text}` : ''}`;
}

/** @type {typeof import('./paths.js').scheduleHref} */
export const scheduleHref = (tenant, id) => `${BASE}/schedules/${encodeURIComponent(tenant)}/${encodeURIComponent(id)}`;

/** @type {typeof import('./paths.js').schedulesHref} */
export function schedulesHref(query = '') {
  const text = String(query);
  return `${BASE}/schedules${text ? `?${text}` : ''}`;
}
