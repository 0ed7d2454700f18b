// @ts-check
/*
 * The jobs list's table: one row per job (a tick box for bulk actions, a link to the job, its status,
 * attempt, progress, times and error). On a phone app.css turns the rows into cards, labelled by `data-label`.
 */

/** @import { Job } from '../api-types.js' */
import { agoTime, badge, h, link } from '../dom.js';
import { shortId } from '../format.js';
import { jobHref } from '../paths.js';

/**
 * The ticked jobs, as the table reads and changes them (views/bulk.js owns them).
 * @typedef {{ has: (id: string) => boolean, toggle: (id: string, on: boolean) => void, all: (on: boolean) => void }} Selection
 */

const COLUMNS = ['Job', 'Type', 'Status', 'Attempt', 'Progress', 'Created', 'Finished', 'Error'];

/** "40%"; "…" for a running job that has reported none; '' otherwise. @param {Job} job */
function progressText(job) {
  const percent = job.progress?.percent;
  return percent === null || percent === undefined ? (job.status === 'running' ? '…' : '') : `${percent}%`;
}

/**
 * @param {Job[]} jobs this page of the list
 * @param {boolean} more whether older jobs follow (the search stops after looking at a page's worth)
 * @param {Selection} selection
 */
export function jobTable(jobs, more, selection) {
  if (jobs.length === 0)
    return h(
      'p',
      { class: 'muted empty' },
      more
        ? 'No match among the jobs looked at so far: follow “Older →” to look further.'
        : 'No jobs match these filters.',
    );
  const all = h('input', {
    type: 'checkbox',
    id: 'select-page',
    'aria-label': 'Select every job on this page',
    onchange: () => selection.all(all.checked),
  });
  return h(
    'table',
    { class: 'grid jobs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { class: 'pick-cell' }, all),
        COLUMNS.map((title) => h('th', {}, title)),
      ),
    ),
    h(
      'tbody',
      {},
      jobs.map((job) => {
        const pick = h('input', {
          type: 'checkbox',
          class: 'pick',
          'data-id': job.id,
          'aria-label': `Select job ${job.id}`,
          checked: selection.has(job.id),
          onchange: () => selection.toggle(job.id, pick.checked),
        });
        return h(
          'tr',
          { 'data-job-id': job.id },
          h('td', { 'data-label': 'Select', class: 'pick-cell' }, pick),
          h('td', { 'data-label': 'Job' }, link(jobHref(job.id), h('code', { title: job.id }, shortId(job.id)))),
          h('td', { 'data-label': 'Type' }, job.type),
          h('td', { 'data-label': 'Status' }, badge(job.status)),
          h('td', { 'data-label': 'Attempt', class: 'num' }, `${job.attempt}/${job.max_attempts}`),
          h('td', { 'data-label': 'Progress', class: 'num' }, progressText(job)),
          h('td', { 'data-label': 'Created' }, agoTime(job.created_at)),
          h('td', { 'data-label': 'Finished' }, job.completed_at ? agoTime(job.completed_at) : '—'),
          h(
            'td',
            { 'data-label': 'Error', class: 'error-cell' },
            job.error ? `${job.error.code}: ${job.error.detail}` : '',
          ),
        );
      }),
    ),
  );
}
