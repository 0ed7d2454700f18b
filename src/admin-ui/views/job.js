// @ts-check
/*
 * One job (/admin/ui/jobs/<id>): GET /admin/jobs/{id} drawn by job-detail.js, its actions (Retry, Cancel,
 * Delete, each confirmed), and the stream watching this job while the page is shown.
 */

/** @import { Job, Page } from '../api-types.js' */
import { api, ApiError, isRouteMissing, messageOf } from '../api.js';
import { confirmDialog } from '../confirm.js';
import { flash, h, link, main, problemLine } from '../dom.js';
import { progressOnly, sameAs } from '../events.js';
import { updatedAt } from '../format.js';
import { live } from '../live.js';
import { navigate } from '../router.js';
import { isCurrent, state } from '../state.js';
import { renderJob } from './job-detail.js';

/** @typedef {'retry' | 'cancel' | 'delete'} JobAction */

/** GET /admin/jobs/{id}, or, from a service without it, the search's exact id lookup. @returns {Promise<Job>} */
async function fetchJob(/** @type {string} */ id) {
  const path = `/admin/jobs/${encodeURIComponent(id)}`;
  if (!state.missing.has('job-detail')) {
    try {
      return await api('GET', path);
    } catch (error) {
      if (!isRouteMissing(error)) throw error;
      state.missing.add('job-detail');
    }
  }
  /** @type {Page<Job>} */
  const page = await api('GET', `/admin/jobs?id=${encodeURIComponent(id)}&limit=1`);
  const job = (page.data ?? []).find((candidate) => candidate.id === id);
  if (!job) throw new ApiError(404, { title: 'Job not found', detail: `No job with id ${id}.`, code: 'job-not-found' });
  return job;
}

/** @param {number} generation @param {string} id */
export function jobView(generation, id) {
  const updated = h('span', { class: 'updated muted' });
  const problem = problemLine();
  const body = h('div', { class: 'job' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    h('p', { class: 'crumbs' }, link(state.lastListUrl, '← Jobs')),
    h('div', { class: 'view-head' }, h('h1', { class: 'job-title' }, 'Job ', h('code', {}, id)), updated),
    problem,
    body,
  );
  /** Which <details> are open, so a redraw keeps them open. @type {Map<string, boolean>} */
  const open = new Map();
  let last = '';
  /** @type {Job | null} */
  let job = null;

  const refresh = async () => {
    try {
      job = await fetchJob(id);
    } catch (error) {
      if (!isCurrent(generation)) return;
      const status = error instanceof ApiError ? error.status : 0;
      problem.textContent = status === 410 ? `This job is gone: ${messageOf(error)}` : messageOf(error);
      problem.hidden = false;
      if (status === 404 || status === 410) {
        body.replaceChildren();
        last = '';
      }
      return;
    }
    if (!isCurrent(generation)) return;
    problem.hidden = true;
    updated.textContent = updatedAt(Date.now());
    show(job);
  };

  /** Draws the job, unless it is what is shown already (a redraw would close what the operator opened). @param {Job} shown */
  const show = (shown) => {
    const signature = JSON.stringify(shown);
    if (signature === last) return;
    last = signature;
    for (const details of body.querySelectorAll('details[data-key]')) {
      if (details instanceof HTMLDetailsElement) open.set(details.getAttribute('data-key') ?? '', details.open);
    }
    body.replaceChildren(...renderJob(shown, open, (action) => void act(action)));
  };

  /** Retry, Cancel or Delete this job, after a confirmation saying what that does. @param {JobAction} action */
  async function act(action) {
    if (!job) return;
    const { id: jobId, status } = job;
    const verb = { retry: 'Retry', cancel: 'Cancel', delete: 'Delete' }[action];
    const note = {
      retry: 'It is queued again at once and may run up to its max_attempts more times.',
      cancel: status === 'running' ? 'Its handler is aborted.' : 'It will not run.',
      delete: 'It is removed for good (canceled first if it is still active).',
    }[action];
    if (!(await confirmDialog(`${verb} 1 job ${jobId}?`, note, verb))) return;
    try {
      if (action === 'delete') await api('DELETE', `/admin/jobs/${encodeURIComponent(jobId)}`);
      else await api('POST', `/admin/jobs/${encodeURIComponent(jobId)}/${action}`);
    } catch (error) {
      flash(`${verb} failed: ${messageOf(error)}`, 'error');
      return;
    }
    if (action === 'delete') {
      flash(`Deleted job ${jobId}.`, 'ok');
      navigate(state.lastListUrl);
      return;
    }
    flash(`${verb === 'Retry' ? 'Retried' : 'Canceled'} job ${jobId}.`, 'ok');
    if (isCurrent(generation)) await view.refresh();
  }

  const view = live(
    generation,
    refresh,
    {
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
    },
    [id],
  );
}
