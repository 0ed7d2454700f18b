// @ts-check
/*
 * The overview's "Workers" panel: the fleet's worker registry (GET /admin/workers: in-process pools and remote
 * workers, with their kind, name, state, host, slots, last beat (a remote worker's last call), running jobs, leases lost) with Drain / Resume per worker (POST /admin/workers/{id}/drain|resume,
 * operator role), and this instance's own pool from GET /admin/stats.
 */

/** @import { Page, Stats, Worker } from '../api-types.js' */
import { api, messageOf } from '../api.js';
import { confirmDialog } from '../confirm.js';
import { flash, h, link } from '../dom.js';
import { fmtDuration, num, plural, shortId } from '../format.js';
import { jobHref } from '../paths.js';

/**
 * GET /admin/workers: `{data}` today; a bare array or `{workers}` from other builds are read too.
 * @typedef {Page<Worker> | Worker[] | { workers?: Worker[] }} WorkersAnswer
 */

const COLUMNS = ['Worker', 'Kind', 'State', 'Host / pid', 'Slots', 'Last beat', 'Running', 'Leases lost', 'Claims'];

/**
 * @param {PromiseSettledResult<WorkersAnswer | null>} settled the registry, null when the service has none
 * @param {Stats} stats
 * @param {() => Promise<void>} reload reads the overview again after an action
 */
export function workersPanel(settled, stats, reload) {
  const pool = stats.pool ?? {};
  const thisInstance = h(
    'p',
    { class: 'muted' },
    pool.worker_id
      ? `This instance (${pool.worker_id}): ${num(pool.busy)} of ${num(pool.concurrency)} slots busy; since start ${num(pool.started)} attempts, ${num(pool.succeeded)} succeeded, ${num(pool.failed)} failed.`
      : 'This instance runs no workers.',
  );
  if (settled.status === 'rejected')
    return [h('p', { class: 'form-error' }, `Workers: ${settled.reason.message}`), thisInstance];
  if (settled.value === null)
    return [
      thisInstance,
      h(
        'p',
        { class: 'muted' },
        'The fleet-wide worker registry (GET /admin/workers) is not available on this service.',
      ),
    ];
  const data = settled.value;
  const listed = /** @type {{ data?: Worker[], workers?: Worker[] }} */ (data);
  const workers = Array.isArray(data) ? data : (listed.data ?? listed.workers ?? []);
  if (workers.length === 0) return [h('p', { class: 'muted' }, 'No workers have reported.'), thisInstance];
  return h(
    'table',
    { class: 'grid' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        COLUMNS.map((title) => h('th', {}, title)),
      ),
    ),
    h(
      'tbody',
      {},
      workers.map((worker) => workerRow(worker, reload)),
    ),
  );
}

/** @param {Worker} worker @param {() => Promise<void>} reload */
function workerRow(worker, reload) {
  const busy = worker.slots_busy;
  const total = worker.slots_total;
  const current = Array.isArray(worker.job_ids) ? worker.job_ids : [];
  const beat = worker.beat_age_s;
  const state = String(worker.state ?? 'unknown');
  return h(
    'tr',
    { 'data-worker-id': String(worker.id ?? '') },
    h(
      'td',
      { 'data-label': 'Worker' },
      worker.name ? [h('strong', {}, worker.name), ' '] : null,
      h('code', {}, String(worker.id ?? '?')),
      worker.version ? h('span', { class: 'muted' }, ` v${worker.version}`) : null,
    ),
    h(
      'td',
      { 'data-label': 'Kind', title: labelsText(worker.labels) },
      worker.kind === 'remote' ? `remote${worker.key_name ? ` (key ${worker.key_name})` : ''}` : 'in-process',
    ),
    h(
      'td',
      { 'data-label': 'State' },
      h('span', { class: `badge worker-${state}` }, state),
      worker.draining ? h('span', { class: 'badge status-canceled' }, 'draining') : null,
    ),
    h(
      'td',
      { 'data-label': 'Host / pid' },
      `${worker.host ?? '—'}${worker.pid !== undefined && worker.kind !== 'remote' ? ` / ${worker.pid}` : ''}`,
    ),
    h('td', { 'data-label': 'Slots' }, busy === undefined ? '—' : `${busy} / ${total ?? '?'}`),
    h('td', { 'data-label': 'Last beat' }, beat === undefined ? '—' : `${fmtDuration(beat)} ago`),
    h(
      'td',
      { 'data-label': 'Running' },
      current.length === 0
        ? '—'
        : [
            current.slice(0, 3).map((id) => [link(jobHref(String(id)), shortId(String(id))), ' ']),
            current.length > 3 ? `+${current.length - 3}` : null,
          ],
    ),
    h('td', { 'data-label': 'Leases lost', class: 'num' }, String(worker.leases_lost ?? 0)),
    h(
      'td',
      { 'data-label': 'Claims' },
      worker.id === undefined
        ? null
        : worker.draining
          ? h(
              'button',
              {
                type: 'button',
                class: 'small',
                'data-action': 'resume',
                title: 'It claims jobs again (operator role)',
                onclick: () => void resumeWorker(worker, reload),
              },
              'Resume',
            )
          : h(
              'button',
              {
                type: 'button',
                class: 'small',
                'data-action': 'drain',
                title: 'It finishes what it runs and claims nothing new (operator role)',
                onclick: () => void drainWorker(worker, reload),
              },
              'Drain',
            ),
    ),
  );
}

/** A remote worker's labels as one line (the Kind cell's tooltip). @param {Record<string, string> | undefined} labels */
function labelsText(labels) {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? '' : entries.map(([key, value]) => `${key}=${value}`).join(', ');
}

/** @param {Worker} worker @param {() => Promise<void>} reload */
async function drainWorker(worker, reload) {
  const running = Array.isArray(worker.job_ids) ? worker.job_ids.length : num(worker.slots_busy);
  const ok = await confirmDialog(
    `Drain worker ${worker.id}? ${running === 0 ? 'It runs no job now' : `It finishes the ${plural(running, 'job')} it runs`} and claims no new ones.`,
    'Until it is resumed (a drain survives its restarts).',
    'Drain',
  );
  if (!ok) return;
  await workerAction(worker, 'drain', 'Drain', `Worker ${worker.id} is draining.`, reload);
}

/** @param {Worker} worker @param {() => Promise<void>} reload */
async function resumeWorker(worker, reload) {
  const ok = await confirmDialog(`Resume worker ${worker.id}? It claims jobs again.`, '', 'Resume');
  if (!ok) return;
  await workerAction(worker, 'resume', 'Resume', `Worker ${worker.id} claims jobs again.`, reload);
}

/**
 * @param {Worker} worker
 * @param {'drain' | 'resume'} action
 * @param {string} verb what the failure says was tried
 * @param {string} done what the success says
 * @param {() => Promise<void>} reload
 */
async function workerAction(worker, action, verb, done, reload) {
  try {
    await api('POST', `/admin/workers/${encodeURIComponent(String(worker.id))}/${action}`);
  } catch (error) {
    flash(`${verb} failed: ${messageOf(error)}`, 'error');
    return;
  }
  flash(done, 'ok');
  await reload();
}
