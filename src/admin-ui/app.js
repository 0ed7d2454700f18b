// @ts-check
/*
 * The operator dashboard's entry point (index.html loads it as a module; it imports the rest). Plain ES
 * modules, no framework, no build step: the files under src/admin-ui are served as they are, each one an
 * allow-listed asset (src/routes/admin-ui.ts), so the page's CSP can stay `script-src 'self'`. The page
 * reads and acts through the admin API only, with the HttpOnly session cookie of POST /admin/session.
 *
 * Who owns what: paths.js (URLs) and router.js (which view a URL shows); api.js (the API), live.js (the
 * event stream, or polling), confirm.js (the confirmation dialog), dom.js (elements, text only);
 * format.js, filters.js and events.js (pure, unit-tested in Node); views/ (one module per view or panel).
 */

import { api, ApiError, onSessionEnded } from './api.js';
import { byId, h, main } from './dom.js';
import { BASE } from './paths.js';
import { renderChrome, route, signedOut, startRouter } from './router.js';
import { state } from './state.js';
import { jobView } from './views/job.js';
import { jobsView } from './views/jobs.js';
import { overviewView } from './views/overview.js';
import { scheduleView } from './views/schedule.js';
import { schedulesView } from './views/schedules.js';
import { signInView } from './views/sign-in.js';

startRouter({
  signIn: signInView,
  overview: overviewView,
  jobs: jobsView,
  job: jobView,
  schedules: schedulesView,
  schedule: scheduleView,
});
// A 401 while signed in: the session expired, or its key was removed. Back to the sign-in, saying why.
onSessionEnded(signedOut);

byId('sign-out', HTMLButtonElement).addEventListener('click', async () => {
  try {
    await api('DELETE', '/admin/session');
  } catch {
    // the cookie is cleared by the server's answer; nothing else to undo
  }
  signedOut('Signed out.');
});

/** Who is signed in (the cookie is HttpOnly: only the server can say), then the view the URL names. */
async function start() {
  try {
    state.me = await api('GET', '/admin/session');
  } catch (error) {
    state.me = null;
    if (error instanceof ApiError && error.status === 403) {
      renderChrome();
      main.replaceChildren(h('section', { class: 'card' }, h('h1', {}, 'Not allowed'), h('p', {}, error.message)));
      return;
    }
  }
  if (location.pathname === '/admin') history.replaceState(null, '', BASE);
  route();
}

void start();
