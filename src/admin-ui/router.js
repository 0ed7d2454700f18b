// @ts-check
/*
 * Which view the address shows. Links inside the dashboard change the address without a page load (the
 * history API), so the session and the event stream's back-off survive moving between views; Back and
 * Forward work as usual. The views themselves are given to startRouter by app.js, so that views can import
 * navigate() from here without a cycle.
 */

import { byId, h, link, main } from './dom.js';
import { stopLive } from './live.js';
import { BASE, isDashboardPath, navSection, parsePath } from './paths.js';
import { state } from './state.js';

/**
 * The views, each drawing itself into <main> for the navigation `generation` (see state.generation).
 * @typedef {{
 *   signIn: (message?: string) => void,
 *   overview: (generation: number) => void,
 *   jobs: (generation: number) => void,
 *   job: (generation: number, id: string) => void,
 *   schedules: (generation: number) => void,
 *   schedule: (generation: number, tenant: string, id: string) => void,
 * }} Views
 */

/** @type {Views | null} */
let views = null;

/** Shows the view the address names: the sign-in while nobody is signed in. */
export function route() {
  if (!views) throw new Error('route() before startRouter()');
  stopLive();
  const generation = ++state.generation;
  renderChrome();
  if (!state.me) return views.signIn();
  markNav(location.pathname);
  window.scrollTo(0, 0);
  const target = parsePath(location.pathname);
  switch (target.view) {
    case 'overview':
      return views.overview(generation);
    case 'jobs':
      return views.jobs(generation);
    case 'job':
      return views.job(generation, target.id);
    case 'schedules':
      return views.schedules(generation);
    case 'schedule':
      return views.schedule(generation, target.tenant, target.id);
    case 'not-found':
      main.replaceChildren(
        h(
          'section',
          { class: 'card' },
          h('h1', {}, 'Not found'),
          h('p', {}, 'This dashboard has no such page. '),
          link(BASE, 'Go to the overview'),
        ),
      );
  }
}

/** Goes to `url` (a path of the dashboard) without a page load; `replace` keeps the history as long as it is. */
export function navigate(/** @type {string} */ url, { replace = false } = {}) {
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
  route();
}

/** Marks the header's link of the part of the dashboard shown (Overview, Jobs or Schedules). */
function markNav(/** @type {string} */ pathname) {
  const section = navSection(pathname);
  for (const anchor of document.querySelectorAll('#nav a')) {
    if (anchor.getAttribute('data-view') === section) anchor.setAttribute('aria-current', 'page');
    else anchor.removeAttribute('aria-current');
  }
}

/** The header: the nav and who is signed in, shown only to someone signed in. */
export function renderChrome() {
  const me = state.me;
  byId('nav', HTMLElement).hidden = !me;
  byId('who', HTMLDivElement).hidden = !me;
  if (me) {
    byId('identity', HTMLSpanElement).textContent =
      me.via === 'loopback' ? 'admin (loopback, no keys configured)' : `${me.role} · key ${me.key_id}`;
    byId('sign-out', HTMLButtonElement).hidden = me.via !== 'session';
  }
}

/** The session is over (signed out, or the API answered 401): forget who it was and ask for a key, saying why. */
export function signedOut(/** @type {string} */ message) {
  if (!views) throw new Error('signedOut() before startRouter()');
  state.me = null;
  stopLive();
  state.generation += 1;
  renderChrome();
  views.signIn(message);
}

/** Takes over the dashboard's links and the Back and Forward buttons; call once, before the first route(). */
export function startRouter(/** @type {Views} */ given) {
  views = given;
  document.addEventListener('click', (event) => {
    // A click that asks for a new tab or window (a modifier, not the main button) is the browser's.
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey ||
      event.ctrlKey ||
      event.shiftKey ||
      event.altKey
    )
      return;
    const anchor = event.target instanceof Element ? event.target.closest('a') : null;
    if (!anchor || anchor.target || anchor.hasAttribute('download')) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || !isDashboardPath(url.pathname)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => route());
}
