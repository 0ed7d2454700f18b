// @ts-check
/*
 * What the page keeps between views, in one place: who is signed in, which view is current (so work started
 * for a view the operator has left is dropped), and what the page has learnt about the service.
 */

/** @import { Session } from './api-types.js' */
/** @import { Live } from './live.js' */
import { BASE } from './paths.js';

export const state = {
  /** GET /admin/session: {role, key_id, expires_at, via}, or null when signed out. */
  me: /** @type {Session | null} */ (null),
  /** Bumped on every navigation: work started for an older view is dropped. */
  generation: 0,
  /** The current view's Live (its event stream or polling). */
  live: /** @type {Live | null} */ (null),
  /** The event stream, across views: when it may be tried again after failing, and how often it failed in a row. */
  stream: { retryAt: 0, failures: 0 },
  /** Endpoints that answered 404 (not on this service yet): not asked again until the page reloads. */
  missing: /** @type {Set<string>} */ (new Set()),
  /** The jobs list as last shown (with its filters), where a job page's "← Jobs" goes back to. */
  lastListUrl: `${BASE}/jobs`,
  /** Job types seen on the overview: the jobs list's type field suggests them. */
  typeNames: /** @type {string[]} */ ([]),
  /** The schedules list as last shown (with its filters), where a schedule page's "← Schedules" goes back to. */
  lastSchedulesUrl: `${BASE}/schedules`,
};

/** Whether the view of `generation` is still the one shown. */
export const isCurrent = (/** @type {number} */ generation) => generation === state.generation;

/**
 * Whether the signed-in key may act (operator or admin). Views that know it hide their write buttons from a
 * viewer; the API refuses a viewer's write anyway (403).
 */
export const canAct = () => state.me !== null && state.me.role !== 'viewer';
