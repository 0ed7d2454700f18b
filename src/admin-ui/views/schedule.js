// @ts-check
/*
 * One recurring schedule (/admin/ui/schedules/<tenant>/<id>): GET /admin/schedules/{tenant}/{id}, its buttons
 * (Pause or Resume, Run now, Delete), and the jobs it made, newest first (GET /admin/jobs with its tenant and
 * schedule_id), each linking to its job page. Read again when the counts of the jobs move, and every 15 s.
 */

/** @import { Job, Page, Schedule } from '../api-types.js' */
import { api, ApiError, messageOf } from '../api.js';
import { agoTime, badge, h, link, main, problemLine, section, when } from '../dom.js';
import { stable } from '../events.js';
import { pretty, scheduleRule, shortId, updatedAt } from '../format.js';
import { live } from '../live.js';
import { jobHref, jobsHref } from '../paths.js';
import { navigate } from '../router.js';
import { isCurrent, state } from '../state.js';
import { scheduleButtons } from './schedule-actions.js';
import { fireCounts, lastJob, nextRun, scheduleState } from './schedules-table.js';

/** The newest jobs of the schedule shown on its page; the jobs list shows them all. */
const JOBS_SHOWN = 20;

/** @param {number} generation @param {string} tenant @param {string} id */
export function scheduleView(generation, tenant, id) {
  const updated = h('span', { class: 'updated muted' });
  const problem = problemLine();
  const body = h('div', { class: 'schedule' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    h('p', { class: 'crumbs' }, link(state.lastSchedulesUrl, '← Schedules')),
    h(
      'div',
      { class: 'view-head' },
      h(
        'h1',
        { class: 'schedule-title' },
        'Schedule ',
        h('code', {}, id),
        h('span', { class: 'muted' }, ` of ${tenant}`),
      ),
      updated,
    ),
    problem,
    body,
  );
  const path = `/admin/schedules/${encodeURIComponent(tenant)}/${encodeURIComponent(id)}`;
  const itsJobs = new URLSearchParams({ tenant, schedule_id: id });
  let last = '';
  /** @type {string | null} */
  let countsSeen = null;
  const reload = async () => {
    if (isCurrent(generation)) await view.refresh();
  };

  const refresh = async () => {
    /** @type {Schedule} */
    let schedule;
    /** @type {Page<Job> | null} */
    let jobs;
    try {
      [schedule, jobs] = await Promise.all([
        /** @type {Promise<Schedule>} */ (api('GET', path)),
        // The jobs are a part of the page: when they cannot be read, the schedule still shows.
        /** @type {Promise<Page<Job>>} */ (api('GET', `/admin/jobs?${itsJobs}&limit=${JOBS_SHOWN}`)).catch(() => null),
      ]);
    } catch (error) {
      if (!isCurrent(generation)) return;
      problem.textContent = messageOf(error);
      problem.hidden = false;
      if (error instanceof ApiError && error.status === 404) {
        body.replaceChildren();
        last = '';
      }
      return;
    }
    if (!isCurrent(generation)) return;
    problem.hidden = true;
    updated.textContent = updatedAt(Date.now());
    const signature = JSON.stringify([schedule, jobs]);
    if (signature === last) return;
    last = signature;
    body.replaceChildren(
      summary(schedule, reload),
      section(
        'Jobs it made',
        jobs ? jobList(jobs) : h('p', { class: 'form-error' }, 'Its jobs could not be read.'),
        h('p', {}, link(jobsHref(itsJobs), 'All its jobs in the jobs list →')),
      ),
      section('Input of each job', h('pre', { class: 'json' }, pretty(schedule.input))),
    );
  };

  const view = live(generation, refresh, {
    stats: (stats) => {
      const counts = stable({ counts: stats.counts, by_type: stats.by_type });
      if (counts === countsSeen) return;
      countsSeen = counts;
      view.refreshSoon(1000);
    },
  });

  /** The schedule's state, buttons and facts. @param {Schedule} schedule @param {() => Promise<void>} reload */
  function summary(schedule, reload) {
    /** @param {string} term @param {...import('../dom.js').Child} value */
    const fact = (term, ...value) => [h('dt', {}, term), h('dd', {}, ...value)];
    const metadata = Object.entries(schedule.metadata ?? {});
    return h(
      'section',
      { class: 'card schedule-summary' },
      h(
        'div',
        { class: 'job-status' },
        h('span', { id: 'schedule-state' }, scheduleState(schedule)),
        h('code', { class: 'rule' }, scheduleRule(schedule)),
      ),
      h(
        'div',
        { class: 'actions' },
        scheduleButtons(schedule, reload, {
          withDelete: true,
          small: false,
          deleted: () => navigate(state.lastSchedulesUrl),
        }),
      ),
      h(
        'dl',
        { class: 'facts' },
        fact('Tenant', schedule.tenant),
        fact('Type', link(jobsHref(new URLSearchParams({ type: schedule.type })), schedule.type)),
        fact(
          'Next run',
          h('span', { id: 'schedule-next-run' }, schedule.next_run_at ? when(schedule.next_run_at) : nextRun(schedule)),
        ),
        fact('Last run', when(schedule.last_run_at)),
        fact('Last job', h('span', { id: 'schedule-last-job' }, lastJob(schedule))),
        fact('Fires', fireCounts(schedule)),
        fact(
          'Overlap',
          schedule.overlap === 'skip' ? 'skip a fire time while its last job is queued or running' : 'allow',
        ),
        fact('Catch-up', String(schedule.catch_up ?? '—')),
        schedule.start_at ? fact('Starts', when(schedule.start_at)) : null,
        schedule.end_at ? fact('Ends', when(schedule.end_at)) : null,
        fact('Priority', String(schedule.priority ?? 0)),
        fact(
          'Max attempts',
          typeof schedule.max_attempts === 'number' ? String(schedule.max_attempts) : "the type's default",
        ),
        fact('Timeout', typeof schedule.timeout_s === 'number' ? `${schedule.timeout_s} s` : "the type's default"),
        schedule.concurrency_key ? fact('Concurrency key', schedule.concurrency_key) : null,
        metadata.length > 0
          ? fact(
              'Metadata',
              h(
                'span',
                { class: 'chips' },
                metadata.map(([key, value]) => h('span', { class: 'chip' }, `${key}=${value}`)),
              ),
            )
          : null,
        fact('Created', when(schedule.created_at)),
        fact('Updated', when(schedule.updated_at)),
      ),
    );
  }
}

/** The schedule's newest jobs. @param {Page<Job>} page */
function jobList(page) {
  const jobs = page.data ?? [];
  if (jobs.length === 0)
    return h(
      'p',
      { class: 'muted empty' },
      page.next_cursor
        ? 'None among the newest jobs looked at: the jobs list looks further.'
        : 'It has made no job yet.',
    );
  return h(
    'table',
    { class: 'grid jobs', id: 'schedule-jobs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Job', 'Status', 'Fire time', 'Created', 'Finished'].map((title) => h('th', {}, title)),
      ),
    ),
    h(
      'tbody',
      {},
      jobs.map((job) =>
        h(
          'tr',
          { 'data-job-id': job.id },
          h('td', { 'data-label': 'Job' }, link(jobHref(job.id), h('code', { title: job.id }, shortId(job.id)))),
          h('td', { 'data-label': 'Status' }, badge(job.status)),
          h('td', { 'data-label': 'Fire time' }, job.scheduled_for ? agoTime(job.scheduled_for) : '—'),
          h('td', { 'data-label': 'Created' }, agoTime(job.created_at)),
          h('td', { 'data-label': 'Finished' }, job.completed_at ? agoTime(job.completed_at) : '—'),
        ),
      ),
    ),
  );
}
