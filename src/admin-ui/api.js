// @ts-check
/*
 * The admin API, as the page calls it: same-origin fetches with the HttpOnly session cookie (the browser
 * adds it; the page never sees it). Being same-origin, writes carry `Sec-Fetch-Site: same-origin`, which is
 * what the service's CSRF check asks of a cookie-authenticated write. Problems (application/problem+json)
 * become ApiError, whose message is the problem's `detail`, shown to the operator as it is.
 */

/** @import { Problem } from './api-types.js' */
import { state } from './state.js';

export class ApiError extends Error {
  /** @param {number} status @param {Problem} problem */
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code;
  }
}

/** @type {(message: string) => void} */
let sessionEnded = () => {};

/** What to do when the API says the session is over (401 while signed in): the router shows the sign-in. */
export function onSessionEnded(/** @type {(message: string) => void} */ handler) {
  sessionEnded = handler;
}

/**
 * Calls the admin API; resolves to the answer's JSON (or its text, or null when empty). The caller names
 * what it expects by the type of the variable it assigns to (`@type {Stats}`); nothing checks it at run time.
 *
 * @template [T=unknown]
 * @param {'GET' | 'POST' | 'DELETE'} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<T>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json, application/problem+json' };
  /** @type {RequestInit} */
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, { title: 'Network error', detail: `The service did not answer (${messageOf(error)}).` });
  }
  const text = await response.text();
  /** @type {unknown} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const problem =
      data && typeof data === 'object'
        ? /** @type {Problem} */ (data)
        : {
            title: response.statusText,
            detail: `HTTP ${response.status}${typeof data === 'string' ? `: ${data.slice(0, 200)}` : ''}`,
          };
    const error = new ApiError(response.status, problem);
    if (response.status === 401 && !path.startsWith('/admin/session') && state.me) sessionEnded(error.message);
    throw error;
  }
  return /** @type {T} */ (data);
}

/**
 * GET an optional endpoint (another part of the service may not have it yet): null when it answers 404 (or
 * 405), and from then on without asking again until the page reloads.
 *
 * @template [T=unknown]
 * @param {string} path
 * @param {string} key what the endpoint is, in state.missing
 * @returns {Promise<T | null>}
 */
export async function optional(path, key) {
  if (state.missing.has(key)) return null;
  try {
    return await api('GET', path);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
      state.missing.add(key);
      return null;
    }
    throw error;
  }
}

/** Whether a 404 or 405 says the route is not on this service (rather than that the job is not found). */
export const isRouteMissing = (/** @type {unknown} */ error) =>
  error instanceof ApiError && (error.status === 404 || error.status === 405) && error.code !== 'job-not-found';

/** The text of a failure, whatever was thrown. */
export const messageOf = (/** @type {unknown} */ error) => (error instanceof Error ? error.message : String(error));
