/* global document, window, fetch, history, location, setTimeout, clearTimeout, URLSearchParams, Node, Element, EventSource */
/*
 * The operator dashboard: plain ES module, no framework, no build step. It reads and acts through the admin
 * API only, with the HttpOnly session cookie set by POST /admin/session (same-origin fetches, so writes
 * carry Sec-Fetch-Site: same-origin). Views live under /admin/ui (overview, jobs?filters, jobs/<id>); each
 * listens to GET /admin/events (Server-Sent Events) while the tab is visible, and polls instead when the
 * stream is not available. All text goes into the page as text nodes, never as HTML.
 */

import { ago as agoAt, fmtDuration, historyPoints } from './format.js';

const BASE = '/admin/ui';
const POLL_MS = 2500;
/** While the event stream is live, a view still reloads this often (times such as "3 min ago" move on). */
const SAFETY_MS = 15_000;
/** Errors in a row, without an event between them, after which the stream is given up for polling. */
const STREAM_MAX_ERRORS = 3;
/** After giving up, the stream is tried again after this long (doubling up to STREAM_RETRY_MAX_MS). */
const STREAM_RETRY_MS = 30_000;
const STREAM_RETRY_MAX_MS = 5 * 60_000;
/** Within this long of a change of the work, workers have written it into the worker registry and the stats history. */
const REGISTRY_LAG_MS = 1200;
/** Most job ids one stream watches (GET /admin/events takes up to 50). */
const MAX_WATCHED = 50;
const PAGE_SIZE = 50;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const FILTERS = ['status', 'type', 'tenant', 'error', 'created_after', 'created_before', 'id'];
/** URL parameters of the jobs list that are paging, not filters. */
const PAGING = ['limit', 'cursor', 'order'];
const JOB_ID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

const main = document.getElementById('main');
const flashBox = document.getElementById('flash');

const state = {
  /** GET /admin/session: {role, key_id, expires_at, via}, or null when signed out. */
  me: null,
  /** Bumped on every navigation: work started for an older view is dropped. */
  generation: 0,
  /** The current view's Live (its event stream or polling). */
  live: null,
  /** The event stream, across views: when it may be tried again after failing, and how often it failed in a row. */
  stream: { retryAt: 0, failures: 0 },
  /** Endpoints that answered 404 (not on this service yet): not asked again until the page reloads. */
  missing: new Set(),
  lastListUrl: `${BASE}/jobs`,
  typeNames: [],
};

// ---------------------------------------------------------------------------------------------------------
// DOM helpers: elements with attributes and text children only; strings always become text nodes.

function h(tag, props, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  appendAll(element, children);
  return element;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, props, ...children) {
  const element = document.createElementNS(SVG, tag);
  setProps(element, props);
  appendAll(element, children);
  return element;
}

function setProps(element, props) {
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
}

function appendAll(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false || child === '') continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

const link = (href, ...children) => h('a', { href }, ...children);
const jobHref = (id) => `${BASE}/jobs/${encodeURIComponent(id)}`;
const badge = (status) => h('span', { class: `badge status-${STATUSES.includes(status) ? status : 'other'}` }, status);

function flash(message, kind = 'info') {
  flashBox.replaceChildren(h('span', {}, message), h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss', onclick: () => (flashBox.hidden = true) }, '×'));
  flashBox.className = `flash flash-${kind}`;
  flashBox.hidden = false;
  clearTimeout(flash.timer);
  if (kind !== 'error') flash.timer = setTimeout(() => (flashBox.hidden = true), 6000);
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

function fmtTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

// fmtDuration and historyPoints come from format.js (pure, unit-tested in Node).
const ago = (iso) => agoAt(iso, Date.now());

/** A time as text with its exact value (ISO) on hover. */
const when = (iso) => h('time', { datetime: iso ?? undefined, title: iso ?? undefined }, iso ? `${fmtTime(iso)} (${ago(iso)})` : '—');
const shortId = (id) => (id.length > 12 ? `${id.slice(0, 4)}…${id.slice(-6)}` : id);
const num = (value) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
const pretty = (value) => JSON.stringify(value, null, 2) ?? 'undefined';

// ---------------------------------------------------------------------------------------------------------
// The API: same-origin fetch with the session cookie; problems (application/problem+json) become ApiError.

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json, application/problem+json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, { title: 'Network error', detail: `The service did not answer (${error.message}).` });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const problem = data && typeof data === 'object' ? data : { title: response.statusText, detail: `HTTP ${response.status}${typeof data === 'string' ? `: ${data.slice(0, 200)}` : ''}` };
    const error = new ApiError(response.status, problem);
    if (response.status === 401 && !path.startsWith('/admin/session') && state.me) signedOut(error.message);
    throw error;
  }
  return data;
}

/** GET an optional endpoint (another part of the service may not have it yet): null when it answers 404. */
async function optional(path, key) {
  if (state.missing.has(key)) return null;
  try {
    return await api('GET', path);
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      state.missing.add(key);
      return null;
    }
    throw error;
  }
}

const isRouteMissing = (error) => error instanceof ApiError && (error.status === 404 || error.status === 405) && error.code !== 'job-not-found';

// ---------------------------------------------------------------------------------------------------------
// Navigation and live updates

function navigate(url, { replace = false } = {}) {
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
  route();
}

document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = event.target instanceof Element ? event.target.closest('a') : null;
  if (!anchor || anchor.target || anchor.hasAttribute('download')) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || !(url.pathname === BASE || url.pathname.startsWith(`${BASE}/`))) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => route());

function stopLive() {
  state.live?.stop();
  state.live = null;
}

/** The indicator in the header bar: how the view keeps itself current. */
function showMode(mode) {
  const indicator = document.getElementById('live-mode');
  indicator.hidden = !mode;
  if (!mode) return;
  indicator.setAttribute('data-mode', mode);
  indicator.textContent = { connecting: 'connecting…', live: 'live', polling: 'polling', paused: 'paused' }[mode];
  indicator.title = {
    connecting: 'Opening the event stream (GET /admin/events)…',
    live: 'Live: the event stream (GET /admin/events) says when something changes',
    polling: `The event stream is not available: this view reloads every ${POLL_MS / 1000} s`,
    paused: 'The tab is hidden: nothing is reloaded until it is shown again',
  }[mode];
}

/** Keys in sorted order: the same value always gives the same text. */
function stable(value) {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((key) => value[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${stable(value[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/** Whether `known` already says everything the event `fresh` says (the fields they share are equal). */
const sameAs = (fresh, known) => Boolean(known) && Object.keys(fresh).every((key) => stable(fresh[key]) === stable(known[key]));

/**
 * How a view stays current. `refresh` runs at once. Then, when the view names `events` (handlers of `stats`,
 * `job`, `gone`), an EventSource on GET /admin/events (watching the ids given to `watch`) tells it when to
 * look again, with a slow reload every SAFETY_MS besides; without EventSource, or after the stream failed
 * (closed by the server, or STREAM_MAX_ERRORS errors without an event), it polls every POLL_MS and tries the
 * stream again later. Nothing runs while the tab is hidden; everything stops when the view is left.
 */
class Live {
  constructor(generation, refresh, events) {
    this.generation = generation;
    this.refreshView = refresh;
    this.events = events ?? null;
    this.ids = [];
    this.source = null;
    this.mode = null;
    this.errors = 0;
    this.lastRefresh = 0;
    this.running = null;
    this.again = false;
    this.timer = undefined;
    this.soonTimer = undefined;
  }

  get current() {
    return this.generation === state.generation && state.live === this;
  }

  start() {
    void this.refresh();
    if (document.visibilityState !== 'visible') this.setMode('paused');
    else this.openStream();
    this.schedule();
  }

  stop() {
    this.closeStream();
    clearTimeout(this.timer);
    clearTimeout(this.soonTimer);
    this.timer = undefined;
    this.soonTimer = undefined;
    if (state.live === this) showMode(null);
  }

  setMode(mode) {
    this.mode = mode;
    if (this.current) showMode(mode);
  }

  /** Runs the view's refresh, one at a time: a call while one runs makes it run once more afterwards. */
  refresh() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          this.lastRefresh = Date.now();
          try {
            await this.refreshView();
          } catch (error) {
            // API problems are shown by each view; this is a fault of the page itself (say, an answer it cannot read).
            if (this.current) flash(`This view could not be updated: ${error.message}`, 'error');
          }
        } while (this.again && this.current);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  /** A refresh soon (not before `delayMs` from now), at most one per `gapMs` (many events in a burst make one reload). */
  refreshSoon(gapMs, delayMs = 0) {
    if (this.soonTimer !== undefined || !this.current) return;
    const wait = Math.max(delayMs, this.lastRefresh + gapMs - Date.now());
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      if (this.current && document.visibilityState === 'visible') void this.refresh();
    }, wait);
  }

  /** The job ids the stream reports on: it is opened again when they change. */
  watch(ids) {
    const next = watchable(ids);
    if (next.join(',') === this.ids.join(',')) return;
    this.ids = next;
    if (this.source) this.openStream();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.current) return;
      if (document.visibilityState === 'visible') {
        if (this.mode !== 'live' || Date.now() - this.lastRefresh >= SAFETY_MS) void this.refresh();
        if (this.mode === 'polling' && this.events && Date.now() >= state.stream.retryAt) this.openStream();
      }
      this.schedule();
    }, POLL_MS);
  }

  openStream() {
    this.closeStream();
    if (!this.current) return;
    if (!this.events || typeof EventSource !== 'function' || Date.now() < state.stream.retryAt) {
      this.setMode('polling');
      return;
    }
    const query = new URLSearchParams();
    for (const id of this.ids) query.append('job_id', id);
    const source = new EventSource(`/admin/events${this.ids.length > 0 ? `?${query}` : ''}`);
    this.source = source;
    this.errors = 0;
    this.setMode('connecting');
    for (const name of ['stats', 'job', 'gone']) {
      source.addEventListener(name, (event) => {
        if (this.source !== source || !this.current) return;
        this.errors = 0;
        state.stream.failures = 0;
        if (this.mode !== 'live') this.setMode('live');
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        this.events[name]?.(data);
      });
    }
    source.addEventListener('error', () => {
      if (this.source !== source) return;
      this.errors += 1;
      // CLOSED: the server refused the stream (401, 403, 404, 503…) and EventSource does not try again.
      if (source.readyState === EventSource.CLOSED || this.errors >= STREAM_MAX_ERRORS) this.fallBack();
      else this.setMode('connecting');
    });
  }

  closeStream() {
    this.source?.close();
    this.source = null;
  }

  /** Gives the stream up for polling, and tries it again later. */
  fallBack() {
    this.closeStream();
    state.stream.failures += 1;
    state.stream.retryAt = Date.now() + Math.min(STREAM_RETRY_MAX_MS, STREAM_RETRY_MS * 2 ** (state.stream.failures - 1));
    this.setMode('polling');
    void this.refresh();
  }

  visibility() {
    if (!this.current) return;
    if (document.visibilityState !== 'visible') {
      this.closeStream();
      this.setMode('paused');
      return;
    }
    void this.refresh();
    this.openStream();
  }
}

/** Job ids GET /admin/events takes (well-formed, at most MAX_WATCHED): a malformed one would refuse the whole stream. */
const watchable = (ids) => [...new Set(ids)].filter((id) => JOB_ID.test(id)).slice(0, MAX_WATCHED);

/** Starts keeping the view of `generation` current (see Live), its stream watching the jobs `watch`; returns its Live. */
function live(generation, refresh, events, watch = []) {
  const controller = new Live(generation, refresh, events);
  controller.ids = watchable(watch);
  if (generation !== state.generation) return controller;
  stopLive();
  state.live = controller;
  controller.start();
  return controller;
}

document.addEventListener('visibilitychange', () => state.live?.visibility());

function route() {
  stopLive();
  const generation = ++state.generation;
  renderChrome();
  if (!state.me) return signInView();
  const path = location.pathname.replace(/\/+$/, '');
  markNav(path);
  window.scrollTo(0, 0);
  if (path === BASE || path === `${BASE}/overview` || path === '/admin') return overviewView(generation);
  if (path === `${BASE}/jobs`) return jobsView(generation);
  const match = /^\/admin\/ui\/jobs\/([^/]+)$/.exec(path);
  if (match) return jobView(generation, decodeURIComponent(match[1]));
  main.replaceChildren(h('section', { class: 'card' }, h('h1', {}, 'Not found'), h('p', {}, 'This dashboard has no such page. '), link(BASE, 'Go to the overview')));
}

function markNav(path) {
  for (const anchor of document.querySelectorAll('#nav a')) {
    const view = anchor.getAttribute('data-view');
    const current = view === 'jobs' ? path.startsWith(`${BASE}/jobs`) : !path.startsWith(`${BASE}/jobs`);
    if (current) anchor.setAttribute('aria-current', 'page');
    else anchor.removeAttribute('aria-current');
  }
}

function renderChrome() {
  const signedIn = Boolean(state.me);
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  if (signedIn) {
    const me = state.me;
    document.getElementById('identity').textContent = me.via === 'loopback' ? 'admin (loopback, no keys configured)' : `${me.role} · key ${me.key_id}`;
    document.getElementById('sign-out').hidden = me.via !== 'session';
  }
}

function signedOut(message) {
  state.me = null;
  stopLive();
  state.generation += 1;
  renderChrome();
  signInView(message);
}

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await api('DELETE', '/admin/session');
  } catch {
    // the cookie is cleared by the server's answer; nothing else to undo
  }
  signedOut('Signed out.');
});

// ---------------------------------------------------------------------------------------------------------
// Sign in

function signInView(message) {
  const input = h('input', { type: 'password', id: 'admin-key', name: 'key', required: true, autocomplete: 'current-password', spellcheck: 'false' });
  const error = h('p', { class: 'form-error', id: 'signin-error', role: 'alert', hidden: !message }, message ?? '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin-form', id: 'signin-form', novalidate: true },
    h('label', { for: 'admin-key' }, 'Admin key'),
    input,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!input.value) {
      error.textContent = 'Enter an admin key.';
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      state.me = await api('POST', '/admin/session', { key: input.value });
      input.value = '';
      flashBox.hidden = true;
      route();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(
    h(
      'section',
      { class: 'card signin' },
      h('h1', {}, 'Sign in'),
      h('p', { class: 'muted' }, 'Use an admin key (ADMIN_KEYS or ADMIN_TOKEN). The browser keeps a signed session cookie for 12 hours, never the key itself.'),
      form,
      error,
    ),
  );
  input.focus();
}

// ---------------------------------------------------------------------------------------------------------
// Overview

function overviewView(generation) {
  const updated = h('span', { class: 'updated muted' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const body = h('div', { class: 'overview' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(h('div', { class: 'view-head' }, h('h1', {}, 'Overview'), updated), problem, body);

  /** The latest answers: stats from GET /admin/stats or the stream's `stats` event, the others from their GETs. */
  let stats = null;
  let historyAnswer = null;
  let workers = null;
  let types = null;
  let countsSeen = '';

  const render = () => {
    if (!stats || !historyAnswer) return;
    state.typeNames = Object.keys(stats.by_type ?? {}).sort();
    const typeInfo = new Map(types?.status === 'fulfilled' && Array.isArray(types.value?.data) ? types.value.data.map((entry) => [entry.type, entry]) : []);
    const alarms = [...typeInfo.values()].filter((entry) => entry.alarm);
    body.replaceChildren(
      alarms.length > 0
        ? h('p', { class: 'form-error', role: 'alert', id: 'alarms' }, `Alarm: jobs are queued and no live worker runs ${alarms.map((entry) => entry.type).join(', ')}.`)
        : '',
      statusTiles(stats),
      queueTiles(stats),
      section('Last hour', chartOf(historyAnswer, stats)),
      section('Job types', typeTable(stats, typeInfo, { pause: pauseType, resume: resumeType })),
      section('Workers', workersOf(workers, stats, { drain: drainWorker, resume: resumeWorker })),
    );
    updated.textContent = `updated ${fmtTime(new Date().toISOString()).slice(11)}`;
  };

  const refresh = async () => {
    const [statsAnswer, historyAnswerNow, workersAnswer, typesAnswer] = await Promise.allSettled([
      api('GET', '/admin/stats'),
      optional('/admin/stats/history?window=1h', 'history'),
      optional('/admin/workers', 'workers'),
      optional('/admin/types', 'types'),
    ]);
    if (generation !== state.generation) return;
    if (statsAnswer.status === 'rejected') {
      problem.textContent = statsAnswer.reason.message;
      problem.hidden = false;
      return;
    }
    problem.hidden = true;
    stats = statsAnswer.value;
    countsSeen = stable({ ...stats, pool: undefined });
    historyAnswer = historyAnswerNow;
    workers = workersAnswer;
    types = typesAnswer;
    render();
  };

  const view = live(generation, refresh, {
    // New counts are shown at once; the panels they do not carry (types, workers, history) are read again soon:
    // not before REGISTRY_LAG_MS, the time the worker registry and the history take to follow the work (workers
    // write them on change, coalesced, within a second), so the reload does not fetch them just before that.
    stats: (fresh) => {
      stats = fresh;
      render();
      const counts = stable({ ...fresh, pool: undefined });
      if (counts === countsSeen) return;
      countsSeen = counts;
      view.refreshSoon(2000, REGISTRY_LAG_MS);
    },
  });

  async function pauseType(type, info) {
    const queued = num(info?.queued);
    const reason = await confirmDialog(
      `Pause job type ${type}? ${plural(queued, 'queued job')} of it ${queued === 1 ? 'waits' : 'wait'} until it is resumed.`,
      `Workers claim no ${type} jobs while it is paused; ${plural(num(info?.running), 'running job')} ${num(info?.running) === 1 ? 'finishes' : 'finish'}. Needs the admin role.`,
      'Pause',
      { label: 'Reason (shown to other operators and kept in the audit log)', placeholder: 'e.g. the upstream API is down' },
    );
    if (reason === false) return;
    try {
      await api('POST', `/admin/types/${encodeURIComponent(type)}/pause`, { reason });
    } catch (error) {
      flash(`Pause failed: ${error.message}`, 'error');
      return;
    }
    flash(`Paused job type ${type}.`, 'ok');
    if (generation === state.generation) await view.refresh();
  }

  async function resumeType(type, info) {
    const queued = num(info?.queued);
    const pause = info?.paused;
    const ok = await confirmDialog(
      `Resume job type ${type}? Workers claim its ${plural(queued, 'queued job')} again.`,
      pause ? `Paused by ${pause.by} at ${fmtTime(pause.at)}: ${pause.reason}` : '',
      'Resume',
    );
    if (!ok) return;
    try {
      await api('POST', `/admin/types/${encodeURIComponent(type)}/resume`);
    } catch (error) {
      flash(`Resume failed: ${error.message}`, 'error');
      return;
    }
    flash(`Resumed job type ${type}.`, 'ok');
    if (generation === state.generation) await view.refresh();
  }

  async function drainWorker(worker) {
    const running = Array.isArray(worker.job_ids) ? worker.job_ids.length : num(worker.slots_busy);
    const ok = await confirmDialog(
      `Drain worker ${worker.id}? ${running === 0 ? 'It runs no job now' : `It finishes the ${plural(running, 'job')} it runs`} and claims no new ones.`,
      'Until it is resumed (a drain survives its restarts).',
      'Drain',
    );
    if (!ok) return;
    await workerAction(worker, 'drain', 'Drain', `Worker ${worker.id} is draining.`);
  }

  async function resumeWorker(worker) {
    const ok = await confirmDialog(`Resume worker ${worker.id}? It claims jobs again.`, '', 'Resume');
    if (!ok) return;
    await workerAction(worker, 'resume', 'Resume', `Worker ${worker.id} claims jobs again.`);
  }

  async function workerAction(worker, action, verb, done) {
    try {
      await api('POST', `/admin/workers/${encodeURIComponent(worker.id)}/${action}`);
    } catch (error) {
      flash(`${verb} failed: ${error.message}`, 'error');
      return;
    }
    flash(done, 'ok');
    if (generation === state.generation) await view.refresh();
  }
}

/** "1 job", "3 jobs". */
const plural = (count, noun) => `${count} ${noun}${count === 1 ? '' : 's'}`;

const section = (title, ...content) => h('section', { class: 'card' }, h('h2', {}, title), ...content);

function statusTiles(stats) {
  return h(
    'div',
    { class: 'tiles', id: 'status-tiles' },
    STATUSES.map((status) =>
      h('a', { class: `tile tile-${status}`, href: `${BASE}/jobs?status=${status}` }, h('span', { class: 'tile-value' }, String(num(stats.counts?.[status]))), h('span', { class: 'tile-label' }, status)),
    ),
  );
}

function queueTiles(stats) {
  const tile = (label, value, hint) => h('div', { class: 'tile tile-plain', title: hint }, h('span', { class: 'tile-value' }, value), h('span', { class: 'tile-label' }, label));
  return h(
    'div',
    { class: 'tiles tiles-small' },
    tile('ready to run', String(num(stats.queue_depth)), 'Queued jobs whose run_at has come'),
    tile('delayed', String(num(stats.delayed)), 'Queued jobs waiting for a later run_at (delay or retry backoff)'),
    tile('oldest queued', stats.oldest_queued_age_s === null || stats.oldest_queued_age_s === undefined ? '—' : fmtDuration(stats.oldest_queued_age_s), 'How long the oldest ready job has waited'),
    tile('finished last minute', String(num(stats.finished_last_minute)), 'Jobs that finished in the last 60 s'),
  );
}

function typeTable(stats, typeInfo, act) {
  // Every type with jobs, and every type the service knows (GET /admin/types): a type can be paused before its first job.
  const names = [...new Set([...Object.keys(stats.by_type ?? {}), ...typeInfo.keys()])].sort((a, b) => a.localeCompare(b));
  if (names.length === 0) return h('p', { class: 'muted' }, 'No jobs yet.');
  const control = typeInfo.size > 0;
  const flags = (info) => {
    if (!info) return null;
    return [
      info.paused ? h('span', { class: 'badge status-canceled', title: `Paused by ${info.paused.by}: ${info.paused.reason}` }, 'paused') : null,
      info.alarm ? h('span', { class: 'badge status-failed', title: 'Jobs are queued and no live worker runs this type' }, 'no worker') : null,
    ];
  };
  return h(
    'table',
    { class: 'grid types', id: 'types' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Type'), STATUSES.map((status) => h('th', { class: 'num' }, status)), control ? h('th', {}, 'Queue') : null)),
    h(
      'tbody',
      {},
      names.map((type) => {
        const info = typeInfo.get(type);
        const counts = stats.by_type?.[type] ?? info?.counts ?? {};
        const pause = info?.paused;
        return h(
          'tr',
          { 'data-type': type, class: pause ? 'paused' : undefined },
          h(
            'td',
            { 'data-label': 'Type' },
            h('span', { class: 'type-name' }, link(`${BASE}/jobs?type=${encodeURIComponent(type)}`, type), flags(info)),
            pause
              ? h('div', { class: 'pause-note' }, `Paused by ${pause.by} `, h('time', { datetime: pause.at, title: pause.at }, ago(pause.at)), ': ', h('q', { class: 'pause-reason' }, pause.reason))
              : null,
          ),
          STATUSES.map((status) =>
            h('td', { class: 'num', 'data-label': status }, num(counts?.[status]) === 0 ? '0' : link(`${BASE}/jobs?type=${encodeURIComponent(type)}&status=${status}`, String(num(counts?.[status])))),
          ),
          control
            ? h(
                'td',
                { 'data-label': 'Queue' },
                info
                  ? pause
                    ? h('button', { type: 'button', class: 'small', 'data-action': 'resume', title: 'Workers claim its jobs again (admin role)', onclick: () => void act.resume(type, info) }, 'Resume')
                    : h('button', { type: 'button', class: 'small', 'data-action': 'pause', title: 'Workers claim none of its jobs until resumed (admin role)', onclick: () => void act.pause(type, info) }, 'Pause')
                  : null,
              )
            : null,
        );
      }),
    ),
  );
}

/**
 * The "Last hour" panel: jobs finished per bucket (GET /admin/stats/history), the current, partial bucket
 * included and topped up to the stats' `finished_last_minute` shown beside it (see historyPoints), so the two
 * panels never disagree (no "No job finished in the last hour" next to "7 finished last minute").
 */
function chartOf(settled, stats) {
  if (settled.status === 'rejected') return h('p', { class: 'form-error' }, `History: ${settled.reason.message}`);
  if (settled.value === null) return h('p', { class: 'muted' }, 'Throughput history is not available on this service (GET /admin/stats/history answers 404).');
  const points = historyPoints(settled.value, num(stats?.finished_last_minute), Date.now());
  if (!points.some((point) => point.finished > 0)) return h('p', { class: 'muted', id: 'history-empty' }, 'No job finished in the last hour.');
  const width = 600;
  const height = 140;
  const max = Math.max(1, ...points.map((point) => point.finished));
  const slot = width / points.length;
  const barWidth = Math.max(1, slot * 0.8);
  const y = (value) => height - (value / max) * (height - 4);
  const totalFinished = points.reduce((sum, point) => sum + point.finished, 0);
  const totalFailed = points.reduce((sum, point) => sum + point.failed, 0);
  const chart = svg(
    'svg',
    { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `Jobs finished per interval over the last hour: ${totalFinished} finished, ${totalFailed} failed` },
    svg('line', { class: 'chart-axis', x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5 }),
    points.map((point, index) => {
      const x = index * slot + (slot - barWidth) / 2;
      const label = `${fmtTime(new Date(point.at).toISOString())}: ${point.finished} finished, ${point.failed} failed${point.pending ? ` (${point.pending} just now, not yet in the history)` : ''}`;
      return svg(
        'g',
        {},
        svg('title', {}, label),
        svg('rect', { class: 'bar-finished', x, width: barWidth, y: y(point.finished), height: height - y(point.finished) }),
        point.failed > 0 ? svg('rect', { class: 'bar-failed', x, width: barWidth, y: y(point.failed), height: height - y(point.failed) }) : null,
      );
    }),
  );
  return h(
    'figure',
    { class: 'chart-figure' },
    chart,
    h(
      'figcaption',
      { class: 'chart-caption' },
      h('span', {}, fmtTime(new Date(points[0].at).toISOString()).slice(11, 16)),
      h('span', { class: 'legend' }, h('span', { class: 'key key-finished' }), `${totalFinished} finished `, h('span', { class: 'key key-failed' }), `${totalFailed} failed · peak ${max}`),
      h('span', {}, fmtTime(new Date(points[points.length - 1].at).toISOString()).slice(11, 16)),
    ),
  );
}

function workersOf(settled, stats, act) {
  const pool = stats.pool ?? {};
  const thisInstance = h(
    'p',
    { class: 'muted' },
    pool.worker_id ? `This instance (${pool.worker_id}): ${num(pool.busy)} of ${num(pool.concurrency)} slots busy; since start ${num(pool.started)} attempts, ${num(pool.succeeded)} succeeded, ${num(pool.failed)} failed.` : 'This instance runs no workers.',
  );
  if (settled.status === 'rejected') return [h('p', { class: 'form-error' }, `Workers: ${settled.reason.message}`), thisInstance];
  if (settled.value === null) return [thisInstance, h('p', { class: 'muted' }, 'The fleet-wide worker registry (GET /admin/workers) is not available on this service.')];
  const data = settled.value;
  const workers = Array.isArray(data) ? data : (data.data ?? data.workers ?? []);
  if (workers.length === 0) return [h('p', { class: 'muted' }, 'No workers have reported.'), thisInstance];
  return h(
    'table',
    { class: 'grid' },
    h('thead', {}, h('tr', {}, ['Worker', 'State', 'Host / pid', 'Slots', 'Last beat', 'Running', 'Leases lost', 'Claims'].map((title) => h('th', {}, title)))),
    h(
      'tbody',
      {},
      workers.map((worker) => {
        const busy = worker.slots_busy;
        const total = worker.slots_total;
        const current = Array.isArray(worker.job_ids) ? worker.job_ids : [];
        const beat = worker.beat_age_s;
        return h(
          'tr',
          { 'data-worker-id': String(worker.id ?? '') },
          h('td', { 'data-label': 'Worker' }, h('code', {}, String(worker.id ?? '?')), worker.version ? h('span', { class: 'muted' }, ` v${worker.version}`) : null),
          h('td', { 'data-label': 'State' }, h('span', { class: `badge worker-${String(worker.state ?? 'unknown')}` }, String(worker.state ?? 'unknown')), worker.draining ? h('span', { class: 'badge status-canceled' }, 'draining') : null),
          h('td', { 'data-label': 'Host / pid' }, `${worker.host ?? '—'}${worker.pid !== undefined ? ` / ${worker.pid}` : ''}`),
          h('td', { 'data-label': 'Slots' }, busy === undefined ? '—' : `${busy} / ${total ?? '?'}`),
          h('td', { 'data-label': 'Last beat' }, beat === undefined ? '—' : `${fmtDuration(beat)} ago`),
          h('td', { 'data-label': 'Running' }, current.length === 0 ? '—' : [current.slice(0, 3).map((id) => [link(jobHref(String(id)), shortId(String(id))), ' ']), current.length > 3 ? `+${current.length - 3}` : null]),
          h('td', { 'data-label': 'Leases lost', class: 'num' }, String(worker.leases_lost ?? 0)),
          h(
            'td',
            { 'data-label': 'Claims' },
            worker.id === undefined
              ? null
              : worker.draining
                ? h('button', { type: 'button', class: 'small', 'data-action': 'resume', title: 'It claims jobs again (operator role)', onclick: () => void act.resume(worker) }, 'Resume')
                : h('button', { type: 'button', class: 'small', 'data-action': 'drain', title: 'It finishes what it runs and claims nothing new (operator role)', onclick: () => void act.drain(worker) }, 'Drain'),
          ),
        );
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Jobs list: the filters are the URL's query (the admin API's own names), so a list is a bookmark.

/** ISO time ↔ the value of a datetime-local input (the browser's time zone). */
function isoToLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function jobsView(generation) {
  const params = new URLSearchParams(location.search);
  state.lastListUrl = location.pathname + location.search;
  const field = (name, label, input) => h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), input);
  const text = (name, placeholder) => h('input', { id: `f-${name}`, name, type: 'search', value: params.get(name) ?? '', placeholder, autocomplete: 'off' });
  const timeInput = (name) => h('input', { id: `f-${name}`, name, type: 'datetime-local', value: params.get(name) ? isoToLocalInput(params.get(name)) : '' });
  const statusOptions = params.get('status') && !STATUSES.includes(params.get('status')) ? [params.get('status'), ...STATUSES] : STATUSES;
  const status = h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, 'any'), statusOptions.map((value) => h('option', { value, selected: params.get('status') === value }, value)));
  const typeInput = h('input', { id: 'f-type', name: 'type', type: 'search', list: 'type-names', value: params.get('type') ?? '', placeholder: 'any', autocomplete: 'off' });
  const typeList = h('datalist', { id: 'type-names' }, state.typeNames.map((name) => h('option', { value: name })));
  const form = h(
    'form',
    { class: 'filters', id: 'filters', role: 'search' },
    field('status', 'Status', status),
    field('type', 'Type', typeInput),
    typeList,
    field('tenant', 'Tenant', text('tenant', 'any')),
    field('error', 'Error code or text', text('error', 'e.g. timeout')),
    field('created_after', 'Created after', timeInput('created_after')),
    field('created_before', 'Created before', timeInput('created_before')),
    field('id', 'Job id', text('id', 'exact id')),
    h('div', { class: 'field field-buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'), h('button', { type: 'button', onclick: () => navigate(`${BASE}/jobs`) }, 'Clear')),
  );
  const apply = (event) => {
    event?.preventDefault();
    // Parameters the form does not show (finished_after, worker, metadata.<key>, …) are kept; a new filter starts at page one.
    const next = new URLSearchParams(params);
    next.delete('cursor');
    for (const name of FILTERS) {
      next.delete(name);
      const input = form.elements.namedItem(name);
      const value = input?.value?.trim() ?? '';
      if (!value) continue;
      if (input.type === 'datetime-local') {
        const date = new Date(value);
        if (!Number.isNaN(date.getTime())) next.set(name, date.toISOString());
      } else next.set(name, value);
    }
    const query = next.toString();
    navigate(`${BASE}/jobs${query ? `?${query}` : ''}`);
  };
  form.addEventListener('submit', apply);
  status.addEventListener('change', apply);

  const updated = h('span', { class: 'updated muted' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const results = h('div', { id: 'job-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });

  // Bulk actions: on every job matching the filters (by a dry run's snapshot), or on the rows ticked.
  const described = describeFilter(params);
  const selected = new Set();
  /** The jobs on this page, by id. */
  let shown = new Map();
  const selectedCount = h('span', { id: 'selected-count', class: 'bulk-label' });
  const selectionBar = h(
    'div',
    { class: 'bulk-row', id: 'bulk-selected', hidden: true },
    selectedCount,
    h('button', { type: 'button', class: 'small', id: 'selected-retry', onclick: () => void bulkSelected('retry') }, 'Retry selected'),
    h('button', { type: 'button', class: 'small', id: 'selected-cancel', onclick: () => void bulkSelected('cancel') }, 'Cancel selected'),
    h('button', { type: 'button', class: 'small danger', id: 'selected-delete', onclick: () => void bulkSelected('delete') }, 'Delete selected'),
    h('button', { type: 'button', class: 'link', id: 'selected-clear', onclick: () => setSelection([]) }, 'Clear selection'),
  );
  const bulkBar = h(
    'section',
    { class: 'bulk', id: 'bulk-bar', 'aria-label': 'Bulk actions' },
    h(
      'div',
      { class: 'bulk-row' },
      h('span', { class: 'bulk-label' }, described ? ['All jobs matching ', h('code', { class: 'bulk-filter' }, described), ':'] : 'All jobs (no filter):'),
      h('button', { type: 'button', class: 'small', id: 'bulk-retry', onclick: () => void bulkAll('retry') }, 'Retry all'),
      h('button', { type: 'button', class: 'small', id: 'bulk-cancel', onclick: () => void bulkAll('cancel') }, 'Cancel all'),
      h('button', { type: 'button', class: 'small danger', id: 'bulk-delete', onclick: () => void bulkAll('delete') }, 'Delete all'),
    ),
    selectionBar,
  );
  main.replaceChildren(h('div', { class: 'view-head' }, h('h1', {}, 'Jobs'), updated), form, bulkBar, problem, results, pager);

  const setSelection = (ids) => {
    selected.clear();
    for (const id of ids) selected.add(id);
    for (const box of results.querySelectorAll('input.pick')) box.checked = selected.has(box.getAttribute('data-id'));
    showSelection();
  };
  const showSelection = () => {
    selectionBar.hidden = selected.size === 0;
    selectedCount.textContent = `${plural(selected.size, 'job')} selected:`;
    const all = results.querySelector('#select-page');
    if (all) {
      all.checked = shown.size > 0 && selected.size === shown.size;
      all.indeterminate = selected.size > 0 && selected.size < shown.size;
    }
  };
  const selection = {
    has: (id) => selected.has(id),
    toggle: (id, on) => {
      if (on) selected.add(id);
      else selected.delete(id);
      showSelection();
    },
    all: (on) => setSelection(on ? [...shown.keys()] : []),
  };

  // The URL's query is the API's query, so any search the admin API knows can be bookmarked.
  const query = new URLSearchParams(params);
  if (!query.has('limit')) query.set('limit', String(PAGE_SIZE));
  let last = '';
  let countsSeen = null;
  const refresh = async () => {
    let page;
    try {
      page = await api('GET', `/admin/jobs?${query}`);
    } catch (error) {
      if (generation !== state.generation) return;
      problem.textContent = error.message;
      problem.hidden = false;
      if (!last) results.replaceChildren();
      return;
    }
    if (generation !== state.generation) return;
    problem.hidden = true;
    updated.textContent = `updated ${fmtTime(new Date().toISOString()).slice(11)}`;
    const jobs = page.data ?? [];
    shown = new Map(jobs.map((job) => [job.id, job]));
    view.watch([...shown.keys()]);
    const signature = JSON.stringify(page);
    if (signature === last) return;
    last = signature;
    // A ticked job that left the page is not acted on unseen.
    for (const id of [...selected]) if (!shown.has(id)) selected.delete(id);
    results.replaceChildren(jobTable(jobs, Boolean(page.next_cursor), selection));
    showSelection();
    const links = [];
    if (params.get('cursor')) {
      const first = new URLSearchParams(params);
      first.delete('cursor');
      links.push(link(`${BASE}/jobs${first.toString() ? `?${first}` : ''}`, '← Newest'));
    }
    if (page.next_cursor) {
      const next = new URLSearchParams(params);
      next.set('cursor', page.next_cursor);
      links.push(link(`${BASE}/jobs?${next}`, 'Older →'));
    }
    pager.replaceChildren(...links);
  };

  const view = live(generation, refresh, {
    // Counts moved (a job was created, finished, deleted…): this page may have changed; read it again, at most once a second.
    stats: (stats) => {
      const counts = stable({ counts: stats.counts, by_type: stats.by_type });
      if (counts === countsSeen) return;
      countsSeen = counts;
      view.refreshSoon(1000);
    },
    // One of the jobs shown changed (progress, status…) or went.
    job: (job) => {
      if (shown.has(job.id) && !sameAs(job, shown.get(job.id))) view.refreshSoon(1000);
    },
    gone: ({ id }) => {
      if (shown.has(id)) view.refreshSoon(1000);
    },
  });

  async function bulkAll(action) {
    const { verb, past, note, applies } = BULK[action];
    const statuses = (params.get('status') ?? '').split(',').map((part) => part.trim()).filter(Boolean);
    if (applies && statuses.length > 0 && statuses.every((status) => !applies.includes(status))) {
      flash(`Nothing to ${action}: only ${applies.join(' or ')} jobs can be, and this list shows ${statuses.join(' and ')} jobs.`, 'info');
      return;
    }
    // Without a status filter that keeps to the jobs the action takes, say that the others are skipped.
    const mixed = applies && !(statuses.length > 0 && statuses.every((status) => applies.includes(status)));
    const howMany = mixed ? ` Only the ${applies.join(' or ')} ones among them are ${past.toLowerCase()}; the others are skipped.` : ` ${note}`;
    let dryRun;
    try {
      dryRun = await bulkDryRun(action, params);
    } catch (error) {
      flash(`${verb} all failed: ${error.message}`, 'error');
      return;
    }
    if (num(dryRun.count) === 0) {
      flash(`No job ${described ? `matches ${described}` : 'exists'}: nothing to ${action}.`, 'info');
      return;
    }
    const count = num(dryRun.count);
    const which = described ? `${plural(count, 'job')} matching ${described}` : `all ${plural(count, 'job')} (no filter)`;
    const text = dryRun.truncated
      ? `${verb} the first ${plural(count, 'job')} ${described ? `matching ${described}` : '(no filter)'}? More match than one bulk action takes: run it again for the rest. Jobs that match later are not included.`
      : `${verb} ${which}? Jobs that match later are not included.`;
    const expires = dryRun.expires_at ? ` Confirm before ${fmtTime(dryRun.expires_at).slice(11)}.` : '';
    if (!(await confirmDialog(text, `Only these ${plural(count, 'job')} are touched.${howMany}${expires}`, verb))) return;
    let outcome;
    try {
      outcome = await api('POST', '/admin/bulk', { action, snapshot: dryRun.snapshot });
    } catch (error) {
      flash(`${verb} all failed: ${error.message}`, 'error');
      return;
    }
    flash(`${past} ${plural(num(outcome.affected), 'job')}${num(outcome.skipped) > 0 ? `, skipped ${num(outcome.skipped)} (changed since)` : ''}.`, 'ok');
    if (generation === state.generation) await view.refresh();
  }

  async function bulkSelected(action) {
    const { verb, past, note, applies } = BULK[action];
    const ids = [...selected];
    if (ids.length === 0) return;
    const fitting = ids.filter((id) => !applies || applies.includes(shown.get(id)?.status)).length;
    const fit = applies && fitting < ids.length ? ` ${fitting} of them ${fitting === 1 ? 'is' : 'are'} ${applies.join(' or ')} now; the others are skipped.` : '';
    if (!(await confirmDialog(`${verb} ${plural(ids.length, 'selected job')}?`, `Only these ${plural(ids.length, 'job')} are touched. ${note}${fit}`, verb))) return;
    let outcome;
    try {
      outcome = await api('POST', '/admin/bulk', { action, ids });
    } catch (error) {
      flash(`${verb} selected failed: ${error.message}`, 'error');
      return;
    }
    flash(`${past} ${plural(num(outcome.affected), 'job')}${num(outcome.skipped) > 0 ? `, skipped ${num(outcome.skipped)} (gone, or not ${applies ? applies.join(' or ') : 'there'})` : ''}.`, 'ok');
    if (generation !== state.generation) return;
    setSelection([]);
    await view.refresh();
  }
}

/** What each bulk action is called, and which jobs it takes (POST /admin/bulk checks each job again when acting). */
const BULK = {
  retry: { verb: 'Retry', past: 'Retried', applies: ['failed', 'canceled'], note: 'Each is checked again when acted on: one no longer failed or canceled is skipped.' },
  cancel: { verb: 'Cancel', past: 'Canceled', applies: ['queued', 'running'], note: 'Each is checked again when acted on: one no longer queued or running is skipped; running ones have their handler aborted.' },
  delete: { verb: 'Delete', past: 'Deleted', applies: null, note: 'They are removed for good (active ones are canceled first).' },
};

/** The list's filters as written in its URL ("status=failed, type=report"), or '' when there are none. */
function describeFilter(params) {
  return [...params]
    .filter(([name, value]) => !PAGING.includes(name) && value !== '')
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
}

/**
 * The `filter` of POST /admin/bulk from the list's URL (the same names as GET /admin/jobs): `metadata.<key>`
 * parameters become `metadata`; `status` stays the comma-separated text the search takes, or an array.
 */
function bulkFilter(params, statusAsArray = false) {
  const filter = {};
  const metadata = {};
  for (const [name, value] of params) {
    if (PAGING.includes(name) || value === '') continue;
    if (name.startsWith('metadata.') && name.length > 'metadata.'.length) metadata[name.slice('metadata.'.length)] = value;
    else if (name === 'status' && statusAsArray) filter.status = value.split(',').map((part) => part.trim()).filter(Boolean);
    else filter[name] = value;
  }
  if (Object.keys(metadata).length > 0) filter.metadata = metadata;
  return filter;
}

/** The dry run of a bulk action on the list's filters: {count, truncated, snapshot, expires_at}. */
async function bulkDryRun(action, params) {
  try {
    return await api('POST', '/admin/bulk', { action, filter: bulkFilter(params), dry_run: true });
  } catch (error) {
    // A service whose bulk filter takes `status` only as an array (as its OpenAPI document describes it).
    const statusRefused = error.status === 422 && params.get('status') && (error.problem.errors ?? []).some((entry) => entry.pointer === '/filter/status');
    if (!statusRefused) throw error;
    return api('POST', '/admin/bulk', { action, filter: bulkFilter(params, true), dry_run: true });
  }
}

function progressText(job) {
  const percent = job.progress?.percent;
  return percent === null || percent === undefined ? (job.status === 'running' ? '…' : '') : `${percent}%`;
}

function jobTable(jobs, more, selection) {
  if (jobs.length === 0) return h('p', { class: 'muted empty' }, more ? 'No match among the jobs looked at so far: follow “Older →” to look further.' : 'No jobs match these filters.');
  const all = h('input', { type: 'checkbox', id: 'select-page', 'aria-label': 'Select every job on this page', onchange: (event) => selection.all(event.target.checked) });
  return h(
    'table',
    { class: 'grid jobs' },
    h('thead', {}, h('tr', {}, h('th', { class: 'pick-cell' }, all), ['Job', 'Type', 'Status', 'Attempt', 'Progress', 'Created', 'Finished', 'Error'].map((title) => h('th', {}, title)))),
    h(
      'tbody',
      {},
      jobs.map((job) =>
        h(
          'tr',
          { 'data-job-id': job.id },
          h(
            'td',
            { 'data-label': 'Select', class: 'pick-cell' },
            h('input', { type: 'checkbox', class: 'pick', 'data-id': job.id, 'aria-label': `Select job ${job.id}`, checked: selection.has(job.id), onchange: (event) => selection.toggle(job.id, event.target.checked) }),
          ),
          h('td', { 'data-label': 'Job' }, link(jobHref(job.id), h('code', { title: job.id }, shortId(job.id)))),
          h('td', { 'data-label': 'Type' }, job.type),
          h('td', { 'data-label': 'Status' }, badge(job.status)),
          h('td', { 'data-label': 'Attempt', class: 'num' }, `${job.attempt}/${job.max_attempts}`),
          h('td', { 'data-label': 'Progress', class: 'num' }, progressText(job)),
          h('td', { 'data-label': 'Created' }, h('time', { datetime: job.created_at, title: job.created_at }, ago(job.created_at))),
          h('td', { 'data-label': 'Finished' }, job.completed_at ? h('time', { datetime: job.completed_at, title: job.completed_at }, ago(job.completed_at)) : '—'),
          h('td', { 'data-label': 'Error', class: 'error-cell' }, job.error ? `${job.error.code}: ${job.error.detail}` : ''),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------
// One job

async function fetchJob(id) {
  const path = `/admin/jobs/${encodeURIComponent(id)}`;
  if (!state.missing.has('job-detail')) {
    try {
      return await api('GET', path);
    } catch (error) {
      if (!isRouteMissing(error)) throw error;
      state.missing.add('job-detail');
    }
  }
  // A service without GET /admin/jobs/{id}: the search's exact id lookup.
  const page = await api('GET', `/admin/jobs?id=${encodeURIComponent(id)}&limit=1`);
  const job = (page.data ?? []).find((candidate) => candidate.id === id);
  if (!job) throw new ApiError(404, { title: 'Job not found', detail: `No job with id ${id}.`, code: 'job-not-found' });
  return job;
}

function jobView(generation, id) {
  const updated = h('span', { class: 'updated muted' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const body = h('div', { class: 'job' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    h('p', { class: 'crumbs' }, link(state.lastListUrl, '← Jobs')),
    h('div', { class: 'view-head' }, h('h1', { class: 'job-title' }, 'Job ', h('code', {}, id)), updated),
    problem,
    body,
  );
  /** Which <details> are open, so a refresh keeps them open. */
  const open = new Map();
  let last = '';
  let job = null;

  const refresh = async () => {
    try {
      job = await fetchJob(id);
    } catch (error) {
      if (generation !== state.generation) return;
      problem.textContent = error.status === 410 ? `This job is gone: ${error.message}` : error.message;
      problem.hidden = false;
      if (error.status === 404 || error.status === 410) {
        body.replaceChildren();
        last = '';
      }
      return;
    }
    if (generation !== state.generation) return;
    problem.hidden = true;
    updated.textContent = `updated ${fmtTime(new Date().toISOString()).slice(11)}`;
    show(job);
  };

  const show = (shown) => {
    const signature = JSON.stringify(shown);
    if (signature === last) return;
    last = signature;
    for (const details of body.querySelectorAll('details[data-key]')) open.set(details.getAttribute('data-key'), details.open);
    body.replaceChildren(...renderJob(shown, open, act));
  };

  async function act(action) {
    if (!job) return;
    const verb = { retry: 'Retry', cancel: 'Cancel', delete: 'Delete' }[action];
    const note = {
      retry: 'It is queued again at once and may run up to its max_attempts more times.',
      cancel: job.status === 'running' ? 'Its handler is aborted.' : 'It will not run.',
      delete: 'It is removed for good (canceled first if it is still active).',
    }[action];
    if (!(await confirmDialog(`${verb} 1 job ${job.id}?`, note, verb))) return;
    try {
      if (action === 'delete') await api('DELETE', `/admin/jobs/${encodeURIComponent(job.id)}`);
      else await api('POST', `/admin/jobs/${encodeURIComponent(job.id)}/${action}`);
    } catch (error) {
      flash(`${verb} failed: ${error.message}`, 'error');
      return;
    }
    if (action === 'delete') {
      flash(`Deleted job ${job.id}.`, 'ok');
      navigate(state.lastListUrl);
      return;
    }
    flash(`${verb === 'Retry' ? 'Retried' : 'Canceled'} job ${job.id}.`, 'ok');
    if (generation === state.generation) await view.refresh();
  }

  const view = live(generation, refresh, {
    // The job changed. The event carries the job without its attempt timeline and logs (those come only with
    // GET /admin/jobs/{id}): a change of progress alone is shown at once; any other change (status, attempt,
    // worker, times, error, result) is shown from one read of the detail, status and timeline together, so the
    // page never says "succeeded · attempt 2 of 2" above a timeline that does not list attempt 2 yet.
    job: (fresh) => {
      if (fresh.id !== id || sameAs(fresh, job)) return;
      if (job && progressOnly(fresh, job)) {
        job = { ...job, ...fresh };
        show(job);
        view.refreshSoon(1000); // logs written meanwhile
        return;
      }
      void view.refresh();
    },
    gone: (gone) => {
      if (gone.id === id) void view.refresh();
    },
  }, [id]);
}

/** Fields of a job that only move its progress bar: any other change also changes its timeline or logs. */
const PROGRESS_FIELDS = new Set(['progress', 'updated_at', 'version']);

/** Whether the event `fresh` differs from `known` only in its progress. */
const progressOnly = (fresh, known) => Object.keys(fresh).every((key) => PROGRESS_FIELDS.has(key) || stable(fresh[key]) === stable(known[key]));

function renderJob(job, open, act) {
  const percent = job.progress?.percent;
  const progressBar =
    percent === null || percent === undefined
      ? h('progress', { max: 100, 'aria-label': 'Progress', class: job.status === 'running' ? '' : 'idle' })
      : h('progress', { max: 100, value: percent, 'aria-label': 'Progress' });
  const progressLine = [percent === null || percent === undefined ? null : `${percent}%`, job.progress?.step, job.progress?.message].filter(Boolean).join(' · ');
  const fact = (term, ...value) => [h('dt', {}, term), h('dd', {}, ...value)];
  const collapsible = (key, title, value) => {
    const details = h('details', { 'data-key': key, open: open.get(key) ?? false }, h('summary', {}, title), h('pre', { class: 'json' }, pretty(value)));
    return details;
  };
  const actions = h(
    'div',
    { class: 'actions' },
    h('button', { type: 'button', id: 'action-retry', onclick: () => void act('retry'), disabled: !['failed', 'canceled'].includes(job.status), title: 'Failed or canceled jobs can be retried' }, 'Retry'),
    h('button', { type: 'button', id: 'action-cancel', onclick: () => void act('cancel'), disabled: job.done, title: 'Queued or running jobs can be canceled' }, 'Cancel'),
    h('button', { type: 'button', id: 'action-delete', class: 'danger', onclick: () => void act('delete') }, 'Delete'),
  );
  return [
    h(
      'section',
      { class: 'card job-summary' },
      h('div', { class: 'job-status' }, h('span', { id: 'job-status' }, badge(job.status)), h('span', { class: 'muted' }, `attempt ${job.attempt} of ${job.max_attempts}`)),
      h('div', { class: 'progress' }, progressBar, h('span', { class: 'progress-text', id: 'job-progress' }, progressLine || (job.done ? '' : 'no progress reported'))),
      actions,
      job.error
        ? h('div', { class: 'job-error', role: 'note' }, h('strong', {}, job.error.code), ` ${job.error.title ? `${job.error.title}: ` : ''}${job.error.detail}`, job.error.retryable ? h('span', { class: 'muted' }, ' (retryable)') : null)
        : null,
      h(
        'dl',
        { class: 'facts' },
        fact('Type', link(`${BASE}/jobs?type=${encodeURIComponent(job.type)}`, job.type)),
        job.tenant !== undefined ? fact('Tenant', String(job.tenant)) : null,
        job.worker_id ? fact('Worker', h('code', {}, job.worker_id)) : null,
        fact('Priority', String(job.priority)),
        fact('Created', when(job.created_at)),
        fact('Run at', when(job.run_at)),
        fact('Started', when(job.started_at)),
        fact('Finished', when(job.completed_at)),
        fact('Updated', when(job.updated_at)),
        job.expires_at ? fact('Expires', when(job.expires_at)) : null,
        job.cached_from ? fact('Result from', link(jobHref(job.cached_from), job.cached_from)) : null,
        Object.keys(job.metadata ?? {}).length > 0 ? fact('Metadata', h('span', { class: 'chips' }, Object.entries(job.metadata).map(([key, value]) => h('span', { class: 'chip' }, `${key}=${value}`)))) : null,
        job.webhook ? fact('Webhook', `${job.webhook.url}${job.webhook.last_delivery ? ` · last delivery ${job.webhook.last_delivery.status}` : ''}`) : null,
      ),
    ),
    h('section', { class: 'card' }, h('h2', {}, 'Input and result'), collapsible('input', 'Input', job.input), collapsible('result', job.status === 'succeeded' ? 'Result' : 'Result (none yet)', job.result)),
    h('section', { class: 'card' }, h('h2', {}, 'Attempts'), attemptsOf(job, open)),
    h('section', { class: 'card' }, h('h2', {}, 'Logs'), logsOf(job)),
  ];
}

function attemptsOf(job, open) {
  if (!Array.isArray(job.attempts)) return h('p', { class: 'muted' }, 'This service does not record per-attempt history.');
  // Ended attempts are listed; the one running now shows in the job itself.
  const attempts = [...job.attempts];
  if (job.status === 'running' && !attempts.some((attempt) => attempt.attempt === job.attempt)) {
    attempts.push({ attempt: job.attempt, worker_id: job.worker_id ?? null, started_at: job.started_at, ended_at: null, outcome: 'running', error: null });
  }
  if (attempts.length === 0) return h('p', { class: 'muted' }, 'No attempt has started yet.');
  return h(
    'ol',
    { class: 'timeline', id: 'attempts' },
    attempts.map((attempt) => {
      const started = attempt.started_at ? new Date(attempt.started_at).getTime() : NaN;
      const ended = attempt.ended_at ? new Date(attempt.ended_at).getTime() : NaN;
      const outcome = attempt.outcome ?? (attempt.ended_at ? 'ended' : 'running');
      const error = attempt.error;
      const stackKey = `stack-${attempt.attempt}`;
      return h(
        'li',
        { class: `attempt outcome-${String(outcome)}` },
        h('div', { class: 'attempt-head' }, h('strong', {}, `Attempt ${attempt.attempt}`), h('span', { class: `badge outcome ${badgeClassOf(outcome)}` }, String(outcome)), Number.isFinite(started) && Number.isFinite(ended) ? h('span', { class: 'muted' }, fmtDuration((ended - started) / 1000)) : null),
        h('div', { class: 'muted attempt-meta' }, `worker ${attempt.worker_id ?? '—'} · `, when(attempt.started_at), ' → ', attempt.ended_at ? when(attempt.ended_at) : 'running'),
        error
          ? h(
              'div',
              { class: 'attempt-error' },
              typeof error === 'string' ? error : `${error.code ?? 'error'}: ${error.detail ?? error.message ?? ''}`,
              error.stack ? h('details', { 'data-key': stackKey, open: open.get(stackKey) ?? false }, h('summary', {}, 'Stack'), h('pre', { class: 'json' }, String(error.stack))) : null,
            )
          : null,
      );
    }),
  );
}

/** Attempt outcomes: succeeded, failed, retry (failed, another attempt follows), canceled, released, lease-expired, poison. */
const badgeClassOf = (outcome) =>
  outcome === 'succeeded' ? 'status-succeeded' : ['failed', 'lease-expired', 'poison'].includes(outcome) ? 'status-failed' : ['retry', 'canceled'].includes(outcome) ? 'status-canceled' : outcome === 'running' ? 'status-running' : 'status-other';

function logsOf(job) {
  if (!Array.isArray(job.logs)) return h('p', { class: 'muted' }, 'This service does not keep job logs.');
  if (job.logs.length === 0) return h('p', { class: 'muted' }, 'The handler logged nothing.');
  return h(
    'table',
    { class: 'grid logs', id: 'logs' },
    h('thead', {}, h('tr', {}, ['Time', 'Attempt', 'Level', 'Message'].map((title) => h('th', {}, title)))),
    h(
      'tbody',
      {},
      job.logs.map((line) =>
        h(
          'tr',
          { class: `level-${String(line.level)}` },
          h('td', { 'data-label': 'Time' }, h('time', { datetime: line.at, title: line.at }, fmtTime(line.at).slice(11))),
          h('td', { 'data-label': 'Attempt', class: 'num' }, String(line.attempt ?? '')),
          h('td', { 'data-label': 'Level' }, String(line.level ?? '')),
          h('td', { 'data-label': 'Message', class: 'log-message' }, String(line.message ?? '')),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Confirmation: a modal that says what is done to how many jobs.

/**
 * Asks, in a modal, `text` (what is done to how many) with `note` under it; `verb` names the button. Resolves
 * to true, or false when refused. With `input` ({label, placeholder}) it also asks for a text (a reason) and
 * resolves to that text, trimmed and not empty, or false.
 */
function confirmDialog(text, note, verb, input) {
  const dialog = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  const field = document.getElementById('confirm-field');
  const entry = document.getElementById('confirm-input');
  const error = document.getElementById('confirm-error');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-note').textContent = note ?? '';
  field.hidden = !input;
  error.hidden = true;
  entry.value = '';
  if (input) {
    document.getElementById('confirm-label').textContent = input.label;
    entry.placeholder = input.placeholder ?? '';
  }
  ok.textContent = verb;
  ok.className = verb === 'Delete' ? 'danger' : 'primary';
  return new Promise((resolve) => {
    const finish = (answer) => {
      ok.removeEventListener('click', yes);
      cancel.removeEventListener('click', no);
      dialog.removeEventListener('cancel', no);
      entry.removeEventListener('keydown', enter);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => {
      if (!input) return finish(true);
      const value = entry.value.trim();
      if (value) return finish(value);
      error.textContent = `${input.label.replace(/ \(.*$/, '')} is needed.`;
      error.hidden = false;
      entry.focus();
    };
    const no = (event) => {
      event?.preventDefault();
      finish(false);
    };
    const enter = (event) => {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      yes();
    };
    ok.addEventListener('click', yes);
    cancel.addEventListener('click', no);
    dialog.addEventListener('cancel', no);
    entry.addEventListener('keydown', enter);
    dialog.showModal();
    (input ? entry : cancel).focus();
  });
}

// ---------------------------------------------------------------------------------------------------------
// Start: who is signed in (the cookie is HttpOnly: only the server can say), then the view the URL names.

async function start() {
  try {
    state.me = await api('GET', '/admin/session');
  } catch (error) {
    state.me = null;
    if (error.status === 403) {
      renderChrome();
      main.replaceChildren(h('section', { class: 'card' }, h('h1', {}, 'Not allowed'), h('p', {}, error.message)));
      return;
    }
  }
  if (location.pathname === '/admin') history.replaceState(null, '', BASE);
  route();
}

void start();
