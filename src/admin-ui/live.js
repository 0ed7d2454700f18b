// @ts-check
/*
 * How a view stays current: GET /admin/events (Server-Sent Events) says when something changed, and the
 * view reads again; when the stream is not available, the view polls instead. One view is live at a time
 * (state.live); leaving it stops its stream and timers. What an event means to a view is the view's own
 * business (its `events` handlers); events.js holds the pure parts.
 */

/** @import { Job, Page, Stats } from './api-types.js' */
import { api, messageOf } from './api.js';
import { byId, flash } from './dom.js';
import { stable, watchable } from './events.js';
import { updatedAt } from './format.js';
import { isCurrent, state } from './state.js';

const POLL_MS = 2500;
/** While the event stream is live, a view still reloads this often (times such as "3 min ago" move on). */
const SAFETY_MS = 15_000;
/** Errors in a row, without an event between them, after which the stream is given up for polling. */
const STREAM_MAX_ERRORS = 3;
/** After giving up, the stream is tried again after this long (doubling up to STREAM_RETRY_MAX_MS). */
const STREAM_RETRY_MS = 30_000;
const STREAM_RETRY_MAX_MS = 5 * 60_000;
const EVENT_NAMES = /** @type {const} */ (['stats', 'job', 'gone']);

/**
 * What a view does with each event of the stream (its JSON data); an event it has no handler for is only a
 * sign of life. `job` carries the job without its attempts and logs (those come only with GET /admin/jobs/{id}).
 * @typedef {{ stats?: (data: Stats) => void, job?: (data: Job) => void, gone?: (data: { id: string }) => void }} EventHandlers
 * @typedef {'connecting' | 'live' | 'polling' | 'paused'} Mode
 */

const indicator = byId('live-mode', HTMLSpanElement);

/** The indicator in the header bar: how the view keeps itself current. @param {Mode | null} mode */
function showMode(mode) {
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

/**
 * How a view stays current. `refresh` runs at once. Then, when the view names `events` (handlers of `stats`,
 * `job`, `gone`), an EventSource on GET /admin/events (watching the ids given to `watch`) tells it when to
 * look again, with a slow reload every SAFETY_MS besides; without EventSource, or after the stream failed
 * (closed by the server, or STREAM_MAX_ERRORS errors without an event), it polls every POLL_MS and tries the
 * stream again later. Nothing runs while the tab is hidden; everything stops when the view is left.
 */
export class Live {
  /** @param {number} generation @param {() => Promise<void>} refresh @param {EventHandlers | null | undefined} events */
  constructor(generation, refresh, events) {
    this.generation = generation;
    this.refreshView = refresh;
    this.events = events ?? null;
    /** @type {string[]} */
    this.ids = [];
    /** @type {EventSource | null} */
    this.source = null;
    /** @type {Mode | null} */
    this.mode = null;
    this.errors = 0;
    this.lastRefresh = 0;
    /** @type {Promise<void> | null} */
    this.running = null;
    this.again = false;
    /** @type {number | undefined} */
    this.timer = undefined;
    /** @type {number | undefined} */
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

  /** @param {Mode} mode */
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
            if (this.current) flash(`This view could not be updated: ${messageOf(error)}`, 'error');
          }
        } while (this.again && this.current);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  /** A refresh soon (not before `delayMs` from now), at most one per `gapMs` (many events in a burst make one reload). */
  refreshSoon(/** @type {number} */ gapMs, delayMs = 0) {
    if (this.soonTimer !== undefined || !this.current) return;
    const wait = Math.max(delayMs, this.lastRefresh + gapMs - Date.now());
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      if (this.current && document.visibilityState === 'visible') void this.refresh();
    }, wait);
  }

  /** The job ids the stream reports on: it is opened again when they change. @param {Iterable<string>} ids */
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
    for (const name of EVENT_NAMES) {
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
        this.events?.[name]?.(data);
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
    state.stream.retryAt =
      Date.now() + Math.min(STREAM_RETRY_MAX_MS, STREAM_RETRY_MS * 2 ** (state.stream.failures - 1));
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

/**
 * Starts keeping the view of `generation` current (see Live), its stream watching the jobs `watch`; returns
 * its Live. A view the operator has already left gets a Live that never starts.
 *
 * @param {number} generation
 * @param {() => Promise<void>} refresh
 * @param {EventHandlers | null} [events]
 * @param {string[]} [watch]
 */
export function live(generation, refresh, events, watch = []) {
  const controller = new Live(generation, refresh, events);
  controller.ids = watchable(watch);
  if (generation !== state.generation) return controller;
  stopLive();
  state.live = controller;
  controller.start();
  return controller;
}

/** Stops the current view's stream and timers (the router calls it before showing another view). */
export function stopLive() {
  state.live?.stop();
  state.live = null;
}

// A hidden tab keeps no stream open and reads nothing; shown again, it catches up and reconnects.
document.addEventListener('visibilitychange', () => state.live?.visibility());

/**
 * A list view's read of its page (GET `url()`): a failure shows its problem (and empties a list never shown), a
 * success the time; `seen` runs on every page read, `draw` only when the page changed (a redraw loses the focus).
 * @template T
 * @param {number} generation
 * @param {{ url: () => string, problem: HTMLElement, results: HTMLElement, updated: HTMLElement,
 *   seen?: (page: Page<T>) => void, draw: (page: Page<T>) => void }} parts
 * @returns {() => Promise<void>}
 */
export function pageReader(generation, { url, problem, results, updated, seen, draw }) {
  let last = '';
  return async () => {
    /** @type {Page<T>} */
    let page;
    try {
      page = await api('GET', url());
    } catch (error) {
      if (!isCurrent(generation)) return;
      problem.textContent = messageOf(error);
      problem.hidden = false;
      if (!last) results.replaceChildren();
      return;
    }
    if (!isCurrent(generation)) return;
    problem.hidden = true;
    updated.textContent = updatedAt(Date.now());
    seen?.(page);
    const signature = JSON.stringify(page);
    if (signature === last) return;
    last = signature;
    draw(page);
  };
}

/**
 * A `stats` handler for a list view: when the job counts moved (a job was made, finished, deleted…), its page may
 * have changed, so `refreshSoon` runs (the view reads again at most once a second).
 * @param {() => void} refreshSoon
 * @returns {(stats: Stats) => void}
 */
export function onCountsMoved(refreshSoon) {
  /** @type {string | null} */
  let seen = null;
  return (stats) => {
    const counts = stable({ counts: stats.counts, by_type: stats.by_type });
    if (counts === seen) return;
    seen = counts;
    refreshSoon();
  };
}
