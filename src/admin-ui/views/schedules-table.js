// @ts-check
/*
 * The schedules list's table: one row per schedule (its tenant and id, linking to its page; its type, rule,
 * state, next and last run, its last job's status linking to the job, what its fire times came to) and, for
 * an operator, its buttons. On a phone app.css turns the rows into cards, labelled by `data-label`.
 */

/** @import { Schedule } from '../api-types.js' */
import { agoTime, badge, h, link } from '../dom.js';
import { num, scheduleRule } from '../format.js';
import { jobHref, scheduleHref } from '../paths.js';
import { canAct } from '../state.js';
import { scheduleButtons } from './schedule-actions.js';

/** Paused or active, as a badge. @param {Schedule} schedule */
export const scheduleState = (schedule) =>
  schedule.paused
    ? h('span', { class: 'badge status-canceled schedule-state', 'data-state': 'paused' }, 'paused')
    : h('span', { class: 'badge status-running schedule-state', 'data-state': 'active' }, 'active');

/** The next fire time: when, or why there is none. @param {Schedule} schedule */
export const nextRun = (schedule) =>
  schedule.next_run_at
    ? agoTime(schedule.next_run_at)
    : h('span', { class: 'muted' }, schedule.paused ? 'none while paused' : 'none left');

/** The last job's status, linking to the job while it is there. @param {Schedule} schedule */
export const lastJob = (schedule) => {
  const job = schedule.last_job;
  if (!job) return h('span', { class: 'muted' }, 'none yet');
  return job.status === 'gone'
    ? h('span', { title: `Job ${job.id} was deleted or has expired` }, badge(job.status))
    : h('a', { href: jobHref(job.id), title: `Job ${job.id}` }, badge(job.status));
};

/** "12 made · 1 skipped · 0 missed". @param {Schedule} schedule */
export const fireCounts = (schedule) =>
  h(
    'span',
    {
      class: 'fire-counts',
      title:
        'Fire times that made a job · skipped (overlap, or the type could not be submitted) · missed (no instance was firing)',
    },
    `${num(schedule.fires?.created)} made · ${num(schedule.fires?.skipped)} skipped · ${num(schedule.fires?.missed)} missed`,
  );

/**
 * @param {Schedule[]} schedules this page of the list
 * @param {() => Promise<void>} reload reads the list again after an action
 */
export function scheduleTable(schedules, reload) {
  if (schedules.length === 0) return h('p', { class: 'muted empty' }, 'No schedules match these filters.');
  const actions = canAct();
  const columns = ['Schedule', 'Tenant', 'Type', 'When', 'State', 'Next run', 'Last run', 'Last job', 'Fires'];
  return h(
    'table',
    { class: 'grid schedules', id: 'schedules' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((title) => h('th', {}, title)),
        actions ? h('th', {}, 'Actions') : null,
      ),
    ),
    h(
      'tbody',
      {},
      schedules.map((schedule) =>
        h(
          'tr',
          { 'data-tenant': schedule.tenant, 'data-schedule-id': schedule.id, class: schedule.paused ? 'paused' : null },
          h(
            'td',
            { 'data-label': 'Schedule' },
            link(scheduleHref(schedule.tenant, schedule.id), h('code', {}, schedule.id)),
          ),
          h('td', { 'data-label': 'Tenant' }, schedule.tenant),
          h('td', { 'data-label': 'Type' }, schedule.type),
          h('td', { 'data-label': 'When' }, h('code', { class: 'rule' }, scheduleRule(schedule))),
          h('td', { 'data-label': 'State' }, scheduleState(schedule)),
          h('td', { 'data-label': 'Next run', class: 'next-run' }, nextRun(schedule)),
          h('td', { 'data-label': 'Last run' }, schedule.last_run_at ? agoTime(schedule.last_run_at) : '—'),
          h('td', { 'data-label': 'Last job', class: 'last-job' }, lastJob(schedule)),
          h('td', { 'data-label': 'Fires' }, fireCounts(schedule)),
          actions ? h('td', { 'data-label': 'Actions' }, scheduleButtons(schedule, reload)) : null,
        ),
      ),
    ),
  );
}
