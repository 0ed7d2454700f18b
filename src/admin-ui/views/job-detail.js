// @ts-check
/*
 * What the job page shows of one job: status, progress, actions, error and facts; input and result as
 * collapsible JSON; the attempt timeline; the handler's log lines. Drawn anew on every change (views/job.js
 * decides when), keeping open the <details> the operator opened.
 */

/** @import { Attempt, Job, LogLine } from '../api-types.js' */
/** @import { JobAction } from './job.js' */
import { badge, h, link, when } from '../dom.js';
import { fmtDuration, fmtTime, pretty } from '../format.js';
import { jobHref, jobsHref, scheduleHref } from '../paths.js';

/**
 * @param {Job} job
 * @param {Map<string, boolean>} open which <details> (by data-key) were open
 * @param {(action: JobAction) => void} act what the action buttons do
 */
export function renderJob(job, open, act) {
  const percent = job.progress?.percent;
  const progressBar =
    percent === null || percent === undefined
      ? h('progress', { max: 100, 'aria-label': 'Progress', class: job.status === 'running' ? '' : 'idle' })
      : h('progress', { max: 100, value: percent, 'aria-label': 'Progress' });
  const progressLine = [
    percent === null || percent === undefined ? null : `${percent}%`,
    job.progress?.step,
    job.progress?.message,
  ]
    .filter(Boolean)
    .join(' · ');
  /** @param {string} term @param {...import('../dom.js').Child} value */
  const fact = (term, ...value) => [h('dt', {}, term), h('dd', {}, ...value)];
  /** @param {string} key @param {string} title @param {unknown} value */
  const collapsible = (key, title, value) =>
    h(
      'details',
      { 'data-key': key, open: open.get(key) ?? false },
      h('summary', {}, title),
      h('pre', { class: 'json' }, pretty(value)),
    );
  const actions = h(
    'div',
    { class: 'actions' },
    h(
      'button',
      {
        type: 'button',
        id: 'action-retry',
        onclick: () => act('retry'),
        disabled: !['failed', 'canceled'].includes(job.status),
        title: 'Failed or canceled jobs can be retried',
      },
      'Retry',
    ),
    h(
      'button',
      {
        type: 'button',
        id: 'action-cancel',
        onclick: () => act('cancel'),
        disabled: job.done,
        title: 'Queued or running jobs can be canceled',
      },
      'Cancel',
    ),
    h('button', { type: 'button', id: 'action-delete', class: 'danger', onclick: () => act('delete') }, 'Delete'),
  );
  const metadata = Object.entries(job.metadata ?? {});
  return [
    h(
      'section',
      { class: 'card job-summary' },
      h(
        'div',
        { class: 'job-status' },
        h('span', { id: 'job-status' }, badge(job.status)),
        h('span', { class: 'muted' }, `attempt ${job.attempt} of ${job.max_attempts}`),
      ),
      h(
        'div',
        { class: 'progress' },
        progressBar,
        h(
          'span',
          { class: 'progress-text', id: 'job-progress' },
          progressLine || (job.done ? '' : 'no progress reported'),
        ),
      ),
      actions,
      job.error
        ? h(
            'div',
            { class: 'job-error', role: 'note' },
            h('strong', {}, job.error.code),
            ` ${job.error.title ? `${job.error.title}: ` : ''}${job.error.detail}`,
            job.error.retryable ? h('span', { class: 'muted' }, ' (retryable)') : null,
          )
        : null,
      h(
        'dl',
        { class: 'facts' },
        fact('Type', link(jobsHref(`type=${encodeURIComponent(job.type)}`), job.type)),
        job.tenant !== undefined ? fact('Tenant', String(job.tenant)) : null,
        typeof job.concurrency_key === 'string' && job.concurrency_key !== ''
          ? fact('Concurrency key', link(jobsHref(sameKey(job, job.concurrency_key)), job.concurrency_key))
          : null,
        typeof job.schedule_id === 'string' && typeof job.tenant === 'string'
          ? fact(
              'Schedule',
              link(scheduleHref(job.tenant, job.schedule_id), job.schedule_id),
              job.scheduled_for ? [' · fire time ', when(job.scheduled_for)] : null,
            )
          : null,
        waitingFor(job.waiting_for),
        job.worker_id ? fact('Worker', h('code', {}, job.worker_id)) : null,
        fact('Priority', String(job.priority)),
        fact('Created', when(job.created_at)),
        fact('Run at', when(job.run_at)),
        fact('Started', when(job.started_at)),
        fact('Finished', when(job.completed_at)),
        fact('Updated', when(job.updated_at)),
        job.expires_at ? fact('Expires', when(job.expires_at)) : null,
        job.cached_from ? fact('Result from', link(jobHref(job.cached_from), job.cached_from)) : null,
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
        job.webhook
          ? fact(
              'Webhook',
              `${job.webhook.url}${job.webhook.last_delivery ? ` · last delivery ${job.webhook.last_delivery.status}` : ''}`,
            )
          : null,
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Input and result'),
      collapsible('input', 'Input', job.input),
      collapsible('result', job.status === 'succeeded' ? 'Result' : 'Result (none yet)', job.result),
    ),
    h('section', { class: 'card' }, h('h2', {}, 'Attempts'), attemptsOf(job, open)),
    h('section', { class: 'card' }, h('h2', {}, 'Logs'), logsOf(job)),
  ];
}

/**
 * The jobs list's query for the jobs sharing this job's concurrency key (a key's cap is per tenant).
 * @param {Job} job
 * @param {string} key
 */
function sameKey(job, key) {
  const query = new URLSearchParams();
  if (typeof job.tenant === 'string') query.set('tenant', job.tenant);
  query.set('concurrency_key', key);
  return query;
}

/**
 * What `waiting_for` values mean, in words; another value is shown as the API sent it.
 * @type {Record<string, string>}
 */
const WAITING_FOR = {
  concurrency_key: "a free slot of its concurrency key: the type's key_concurrency of its jobs are running",
};

/**
 * The "Waiting for" fact of a job that could start but waits; nothing when it waits for nothing.
 * @param {unknown} value
 */
function waitingFor(value) {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') return [h('dt', {}, 'Waiting for'), h('dd', {}, JSON.stringify(value))];
  const text = Object.hasOwn(WAITING_FOR, value) ? WAITING_FOR[value] : value;
  return [h('dt', {}, 'Waiting for'), h('dd', { id: 'job-waiting-for', 'data-reason': value }, text)];
}

/** The attempt timeline: ended attempts, and the one running now (which shows in the job itself). @param {Job} job @param {Map<string, boolean>} open */
function attemptsOf(job, open) {
  if (!Array.isArray(job.attempts))
    return h('p', { class: 'muted' }, 'This service does not record per-attempt history.');
  /** @type {Attempt[]} */
  const attempts = [...job.attempts];
  if (job.status === 'running' && !attempts.some((attempt) => attempt.attempt === job.attempt)) {
    attempts.push({
      attempt: job.attempt,
      worker_id: job.worker_id ?? null,
      started_at: job.started_at,
      ended_at: null,
      outcome: 'running',
      error: null,
    });
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
        h(
          'div',
          { class: 'attempt-head' },
          h('strong', {}, `Attempt ${attempt.attempt}`),
          h('span', { class: `badge outcome ${badgeClassOf(outcome)}` }, String(outcome)),
          Number.isFinite(started) && Number.isFinite(ended)
            ? h('span', { class: 'muted' }, fmtDuration((ended - started) / 1000))
            : null,
        ),
        h(
          'div',
          { class: 'muted attempt-meta' },
          `worker ${attempt.worker_id ?? '—'} · `,
          when(attempt.started_at),
          ' → ',
          attempt.ended_at ? when(attempt.ended_at) : 'running',
        ),
        error
          ? h(
              'div',
              { class: 'attempt-error' },
              typeof error === 'string' ? error : `${error.code ?? 'error'}: ${error.detail ?? error.message ?? ''}`,
              typeof error !== 'string' && error.stack
                ? h(
                    'details',
                    { 'data-key': stackKey, open: open.get(stackKey) ?? false },
                    h('summary', {}, 'Stack'),
                    h('pre', { class: 'json' }, String(error.stack)),
                  )
                : null,
            )
          : null,
      );
    }),
  );
}

/** Attempt outcomes: succeeded, failed, retry (failed, another attempt follows), canceled, released, lease-expired, poison. */
const badgeClassOf = (/** @type {string} */ outcome) =>
  outcome === 'succeeded'
    ? 'status-succeeded'
    : ['failed', 'lease-expired', 'poison'].includes(outcome)
      ? 'status-failed'
      : ['retry', 'canceled'].includes(outcome)
        ? 'status-canceled'
        : outcome === 'running'
          ? 'status-running'
          : 'status-other';

/** The handler's log lines (ctx.log), with the attempt that wrote each. @param {Job} job */
function logsOf(job) {
  if (!Array.isArray(job.logs)) return h('p', { class: 'muted' }, 'This service does not keep job logs.');
  if (job.logs.length === 0) return h('p', { class: 'muted' }, 'The handler logged nothing.');
  return h(
    'table',
    { class: 'grid logs', id: 'logs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Time', 'Attempt', 'Level', 'Message'].map((title) => h('th', {}, title)),
      ),
    ),
    h(
      'tbody',
      {},
      job.logs.map((line) => logRow(line)),
    ),
  );
}

/** @param {LogLine} line */
const logRow = (line) =>
  h(
    'tr',
    { class: `level-${String(line.level)}` },
    h('td', { 'data-label': 'Time' }, h('time', { datetime: line.at, title: line.at }, fmtTime(line.at).slice(11))),
    h('td', { 'data-label': 'Attempt', class: 'num' }, String(line.attempt ?? '')),
    h('td', { 'data-label': 'Level' }, String(line.level ?? '')),
    h('td', { 'data-label': 'Message', class: 'log-message' }, String(line.message ?? '')),
  );
