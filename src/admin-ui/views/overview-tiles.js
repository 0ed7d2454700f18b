// @ts-check
/*
 * The overview's tiles: jobs per status (each a link to the list of them) and the queue's figures.
 */

/** @import { Stats } from '../api-types.js' */
import { h } from '../dom.js';
import { STATUSES } from '../filters.js';
import { fmtDuration, num } from '../format.js';
import { jobsHref } from '../paths.js';

/** Jobs per status, each a link to the jobs list filtered to that status. @param {Stats} stats */
export function statusTiles(stats) {
  return h(
    'div',
    { class: 'tiles', id: 'status-tiles' },
    STATUSES.map((status) =>
      h(
        'a',
        { class: `tile tile-${status}`, href: jobsHref(`status=${status}`) },
        h('span', { class: 'tile-value' }, String(num(stats.counts?.[status]))),
        h('span', { class: 'tile-label' }, status),
      ),
    ),
  );
}

/** How much waits and how fast it moves: ready, delayed, the oldest wait, finished in the last minute. @param {Stats} stats */
export function queueTiles(stats) {
  /** @param {string} label @param {string} value @param {string} hint what it counts, on hover */
  const tile = (label, value, hint) =>
    h(
      'div',
      { class: 'tile tile-plain', title: hint },
      h('span', { class: 'tile-value' }, value),
      h('span', { class: 'tile-label' }, label),
    );
  return h(
    'div',
    { class: 'tiles tiles-small' },
    tile('ready to run', String(num(stats.queue_depth)), 'Queued jobs whose run_at has come'),
    tile('delayed', String(num(stats.delayed)), 'Queued jobs waiting for a later run_at (delay or retry backoff)'),
    tile(
      'oldest queued',
      stats.oldest_queued_age_s === null || stats.oldest_queued_age_s === undefined
        ? '—'
        : fmtDuration(stats.oldest_queued_age_s),
      'How long the oldest ready job has waited',
    ),
    tile('finished last minute', String(num(stats.finished_last_minute)), 'Jobs that finished in the last 60 s'),
  );
}
