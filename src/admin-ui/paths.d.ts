// The signatures of paths.js (the dashboard's URLs), read by the TypeScript tests and by paths.js itself
// (see format.d.ts for why the signatures live here). No DOM types: the Node tsconfig reads this file too.

/** Where the dashboard lives: every path under it is the page (src/routes/admin-ui.ts). */
export const BASE: '/admin/ui';

/** What a path of the page shows. */
export type Route =
  | { view: 'overview' }
  | { view: 'jobs' }
  | { view: 'job'; id: string }
  | { view: 'schedules' }
  | { view: 'schedule'; tenant: string; id: string }
  | { view: 'not-found' };

/** The view a path names (trailing slashes ignored); a job id, a schedule's tenant and id are decoded from the path. */
export function parsePath(pathname: string): Route;

/** Whether a link to this path is the dashboard's own (followed without a page load). */
export function isDashboardPath(pathname: string): boolean;

/** Which link of the header's nav is current on this path. */
export function navSection(pathname: string): 'overview' | 'jobs' | 'schedules';

/** The page of one job. */
export function jobHref(id: string): string;

/** The jobs list with this query (the admin API's own names), e.g. jobsHref('status=failed'). */
export function jobsHref(query?: string | URLSearchParams): string;

/** The page of one recurring schedule (ids are unique per tenant). */
export function scheduleHref(tenant: string, id: string): string;

/** The schedules list with this query (GET /admin/schedules's own names: tenant, type, paused). */
export function schedulesHref(query?: string | URLSearchParams): string;
