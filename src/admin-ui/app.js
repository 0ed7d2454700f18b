/* global document, window, fetch, history, location, setTimeout, clearTimeout, URLSearchParams, Node, Element */
/*
 * The operator dashboard: plain ES module, no framework, no build step. It reads and acts through the admin
 * API only, with the HttpOnly session cookie set by POST /admin/session (same-origin fetches, so writes
 * carry Sec-Fetch-Site: same-origin). Views live under /admin/ui (overview, jobs?filters, jobs/<id>); every
 * view polls while the tab is visible. All text goes into the page as text nodes, never as HTML.
 */

const BASE = '/admin/ui';
const POLL_MS = 2500;
const PAGE_SIZE = 50;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const FILTERS = ['status', 'type', 'tenant', 'error', 'created_after', 'created_before', 'id'];

const main = document.getElementById('main');
const flashBox = document.getElementById('flash');

const state = {
  /** GET /admin/session: {role, key_id, expires_at, via}, or null when signed out. */
  me: null,
  /** Bumped on every navigation: work started for an older view is dropped. */
  generation: 0,
  timer: undefined,
  refresh: undefined,
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

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.round((seconds % 86400) / 3600)} h`;
}

function ago(iso) {
  if (!iso) return '—';
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(seconds)) return String(iso);
  return seconds < 0 ? `in ${fmtDuration(-seconds)}` : `${fmtDuration(seconds)} ago`;
}

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
  clearTimeout(state.timer);
  state.timer = undefined;
  state.refresh = undefined;
}

/** Runs `refresh` now, then every POLL_MS while this view is shown and the tab is visible. */
function live(generation, refresh) {
  const guarded = async () => {
    try {
      await refresh();
    } catch (error) {
      // API problems are shown by each view; this is a fault of the page itself (say, an answer it cannot read).
      if (generation === state.generation) flash(`This view could not be updated: ${error.message}`, 'error');
    }
  };
  state.refresh = guarded;
  const tick = async () => {
    if (generation !== state.generation) return;
    if (document.visibilityState === 'visible') await guarded();
    if (generation !== state.generation) return;
    state.timer = setTimeout(() => void tick(), POLL_MS);
  };
  void tick();
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.refresh) void state.refresh();
});

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

  const refresh = async () => {
    const [stats, historyAnswer, workers, types] = await Promise.allSettled([
      api('GET', '/admin/stats'),
      optional('/admin/stats/history?window=1h', 'history'),
      optional('/admin/workers', 'workers'),
      optional('/admin/types', 'types'),
    ]);
    if (generation !== state.generation) return;
    if (stats.status === 'rejected') {
      problem.textContent = stats.reason.message;
      problem.hidden = false;
      return;
    }
    problem.hidden = true;
    state.typeNames = Object.keys(stats.value.by_type ?? {}).sort();
    const typeInfo = new Map(types.status === 'fulfilled' && Array.isArray(types.value?.data) ? types.value.data.map((entry) => [entry.type, entry]) : []);
    const alarms = [...typeInfo.values()].filter((entry) => entry.alarm);
    body.replaceChildren(
      alarms.length > 0
        ? h('p', { class: 'form-error', role: 'alert', id: 'alarms' }, `Alarm: jobs are queued and no live worker runs ${alarms.map((entry) => entry.type).join(', ')}.`)
        : '',
      statusTiles(stats.value),
      queueTiles(stats.value),
      section('Last hour', chartOf(historyAnswer)),
      section('Job types', typeTable(stats.value, typeInfo)),
      section('Workers', workersOf(workers, stats.value)),
    );
    updated.textContent = `Live · updated ${fmtTime(new Date().toISOString()).slice(11)}`;
  };
  live(generation, refresh);
}

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

function typeTable(stats, typeInfo) {
  const types = Object.entries(stats.by_type ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (types.length === 0) return h('p', { class: 'muted' }, 'No jobs yet.');
  const flags = (type) => {
    const info = typeInfo.get(type);
    if (!info) return null;
    return [
      info.paused ? h('span', { class: 'badge status-canceled', title: `Paused by ${info.paused.by}: ${info.paused.reason}` }, 'paused') : null,
      info.alarm ? h('span', { class: 'badge status-failed', title: 'Jobs are queued and no live worker runs this type' }, 'no worker') : null,
    ];
  };
  return h(
    'table',
    { class: 'grid' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Type'), STATUSES.map((status) => h('th', { class: 'num' }, status)))),
    h(
      'tbody',
      {},
      types.map(([type, counts]) =>
        h(
          'tr',
          {},
          h('td', { 'data-label': 'Type' }, h('span', { class: 'type-name' }, link(`${BASE}/jobs?type=${encodeURIComponent(type)}`, type), flags(type))),
          STATUSES.map((status) =>
            h('td', { class: 'num', 'data-label': status }, num(counts?.[status]) === 0 ? '0' : link(`${BASE}/jobs?type=${encodeURIComponent(type)}&status=${status}`, String(num(counts?.[status])))),
          ),
        ),
      ),
    ),
  );
}

/**
 * GET /admin/stats/history: {from, to, bucket_s, buckets: [{at, types: {<type>: {finished, failed, …}}}]}, where
 * only buckets with activity are listed: one point per bucket from `from` to `to`, summed over the types.
 */
function historyPoints(data) {
  const buckets = Array.isArray(data?.buckets) ? data.buckets : [];
  const stepMs = num(data?.bucket_s) * 1000;
  const totals = new Map();
  for (const bucket of buckets) {
    const at = Date.parse(bucket.at);
    if (!Number.isFinite(at)) continue;
    let finished = 0;
    let failed = 0;
    for (const counts of Object.values(bucket.types ?? {})) {
      failed += num(counts.failed);
      finished += num(counts.finished ?? num(counts.succeeded) + num(counts.failed) + num(counts.canceled));
    }
    totals.set(at, { at, finished: Math.max(finished, failed), failed });
  }
  const from = Date.parse(data?.from);
  const to = Date.parse(data?.to);
  if (!(stepMs > 0) || !Number.isFinite(from) || !Number.isFinite(to) || (to - from) / stepMs > 2000) return [...totals.values()].sort((a, b) => a.at - b.at);
  const points = [];
  for (let at = Math.floor(from / stepMs) * stepMs; at < to; at += stepMs) points.push(totals.get(at) ?? { at, finished: 0, failed: 0 });
  for (const point of totals.values()) if (!points.some((candidate) => candidate.at === point.at)) points.push(point);
  return points.sort((a, b) => a.at - b.at);
}

function chartOf(settled) {
  if (settled.status === 'rejected') return h('p', { class: 'form-error' }, `History: ${settled.reason.message}`);
  if (settled.value === null) return h('p', { class: 'muted' }, 'Throughput history is not available on this service (GET /admin/stats/history answers 404).');
  const points = historyPoints(settled.value);
  if (!points.some((point) => point.finished > 0)) return h('p', { class: 'muted' }, 'No job finished in the last hour.');
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
      const label = `${fmtTime(new Date(point.at).toISOString())}: ${point.finished} finished, ${point.failed} failed`;
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

function workersOf(settled, stats) {
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
    h('thead', {}, h('tr', {}, ['Worker', 'State', 'Host / pid', 'Slots', 'Last beat', 'Running', 'Leases lost'].map((title) => h('th', {}, title)))),
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
          {},
          h('td', { 'data-label': 'Worker' }, h('code', {}, String(worker.id ?? '?')), worker.version ? h('span', { class: 'muted' }, ` v${worker.version}`) : null),
          h('td', { 'data-label': 'State' }, h('span', { class: `badge worker-${String(worker.state ?? 'unknown')}` }, String(worker.state ?? 'unknown')), worker.draining ? h('span', { class: 'badge status-canceled' }, 'draining') : null),
          h('td', { 'data-label': 'Host / pid' }, `${worker.host ?? '—'}${worker.pid !== undefined ? ` / ${worker.pid}` : ''}`),
          h('td', { 'data-label': 'Slots' }, busy === undefined ? '—' : `${busy} / ${total ?? '?'}`),
          h('td', { 'data-label': 'Last beat' }, beat === undefined ? '—' : `${fmtDuration(beat)} ago`),
          h('td', { 'data-label': 'Running' }, current.length === 0 ? '—' : [current.slice(0, 3).map((id) => [link(jobHref(String(id)), shortId(String(id))), ' ']), current.length > 3 ? `+${current.length - 3}` : null]),
          h('td', { 'data-label': 'Leases lost', class: 'num' }, String(worker.leases_lost ?? 0)),
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
  main.replaceChildren(h('div', { class: 'view-head' }, h('h1', {}, 'Jobs'), updated), form, problem, results, pager);

  // The URL's query is the API's query, so any search the admin API knows can be bookmarked.
  const query = new URLSearchParams(params);
  if (!query.has('limit')) query.set('limit', String(PAGE_SIZE));
  let last = '';
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
    updated.textContent = `Live · updated ${fmtTime(new Date().toISOString()).slice(11)}`;
    const signature = JSON.stringify(page);
    if (signature === last) return;
    last = signature;
    results.replaceChildren(jobTable(page.data ?? [], Boolean(page.next_cursor)));
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
  live(generation, refresh);
}

function progressText(job) {
  const percent = job.progress?.percent;
  return percent === null || percent === undefined ? (job.status === 'running' ? '…' : '') : `${percent}%`;
}

function jobTable(jobs, more) {
  if (jobs.length === 0) return h('p', { class: 'muted empty' }, more ? 'No match among the jobs looked at so far: follow “Older →” to look further.' : 'No jobs match these filters.');
  return h(
    'table',
    { class: 'grid jobs' },
    h('thead', {}, h('tr', {}, ['Job', 'Type', 'Status', 'Attempt', 'Progress', 'Created', 'Finished', 'Error'].map((title) => h('th', {}, title)))),
    h(
      'tbody',
      {},
      jobs.map((job) =>
        h(
          'tr',
          { 'data-job-id': job.id },
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
    updated.textContent = `Live · updated ${fmtTime(new Date().toISOString()).slice(11)}`;
    const signature = JSON.stringify(job);
    if (signature === last) return;
    last = signature;
    for (const details of body.querySelectorAll('details[data-key]')) open.set(details.getAttribute('data-key'), details.open);
    body.replaceChildren(...renderJob(job, open, act));
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
    if (generation === state.generation) await state.refresh?.();
  }

  live(generation, refresh);
}

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

function confirmDialog(text, note, verb) {
  const dialog = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-note').textContent = note ?? '';
  ok.textContent = verb;
  ok.className = verb === 'Delete' ? 'danger' : 'primary';
  return new Promise((resolve) => {
    const finish = (answer) => {
      ok.removeEventListener('click', yes);
      cancel.removeEventListener('click', no);
      dialog.removeEventListener('cancel', no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => finish(true);
    const no = (event) => {
      event?.preventDefault();
      finish(false);
    };
    ok.addEventListener('click', yes);
    cancel.addEventListener('click', no);
    dialog.addEventListener('cancel', no);
    dialog.showModal();
    cancel.focus();
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
