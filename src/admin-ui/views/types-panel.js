// @ts-check
/*
 * The overview's "Job types" panel: jobs per type and status (each a link to the list of them), whether a
 * type is paused (who, when, why), has queued jobs and no live worker, or has concurrency keys whose jobs wait
 * at the type's `key_concurrency`, and its Pause / Resume buttons
 * (POST /admin/types/{type}/pause|resume; the API asks for the admin role and says so when it is missing).
 */

/** @import { Stats, TypeInfo } from '../api-types.js' */
import { api, messageOf } from '../api.js';
import { confirmDialog } from '../confirm.js';
import { agoTime, flash, h, link } from '../dom.js';
import { STATUSES } from '../filters.js';
import { fmtTime, num, plural } from '../format.js';
import { jobsHref } from '../paths.js';

/**
 * @param {Stats} stats
 * @param {Map<string, TypeInfo>} typeInfo GET /admin/types by type; empty when the service has no such endpoint
 * @param {() => Promise<void>} reload reads the overview again after an action
 */
export function typesPanel(stats, typeInfo, reload) {
  // Every type with jobs, and every type the service knows (GET /admin/types): a type can be paused before its first job.
  const names = [...new Set([...Object.keys(stats.by_type ?? {}), ...typeInfo.keys()])].sort((a, b) =>
    a.localeCompare(b),
  );
  if (names.length === 0) return h('p', { class: 'muted' }, 'No jobs yet.');
  // Without GET /admin/types there is nothing to say whether a type is paused: no Queue column.
  const control = typeInfo.size > 0;
  /** @param {TypeInfo | undefined} info */
  const flags = (info) => {
    if (!info) return null;
    return [
      info.paused
        ? h(
            'span',
            { class: 'badge status-canceled', title: `Paused by ${info.paused.by}: ${info.paused.reason}` },
            'paused',
          )
        : null,
      info.alarm
        ? h(
            'span',
            { class: 'badge status-failed', title: 'Jobs are queued and no live worker runs this type' },
            'no worker',
          )
        : null,
    ];
  };
  /**
   * "3 keys at cap": concurrency keys with ready jobs that wait because `key_concurrency` of theirs already run.
   * @param {string} type
   */
  const keysAtCap = (type) => {
    const keys = num(stats.keys_at_cap?.[type]);
    return keys > 0
      ? h(
          'span',
          {
            class: 'badge keys-at-cap',
            title: "Concurrency keys whose ready jobs wait: the type's key_concurrency of theirs already run",
          },
          `${plural(keys, 'key')} at cap`,
        )
      : null;
  };
  /** @param {string} type @param {TypeInfo} info */
  const button = (type, info) =>
    info.paused
      ? h(
          'button',
          {
            type: 'button',
            class: 'small',
            'data-action': 'resume',
            title: 'Workers claim its jobs again (admin role)',
            onclick: () => void resumeType(type, info, reload),
          },
          'Resume',
        )
      : h(
          'button',
          {
            type: 'button',
            class: 'small',
            'data-action': 'pause',
            title: 'Workers claim none of its jobs until resumed (admin role)',
            onclick: () => void pauseType(type, info, reload),
          },
          'Pause',
        );
  return h(
    'table',
    { class: 'grid types', id: 'types' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Type'),
        STATUSES.map((status) => h('th', { class: 'num' }, status)),
        control ? h('th', {}, 'Queue') : null,
      ),
    ),
    h(
      'tbody',
      {},
      names.map((type) => {
        const info = typeInfo.get(type);
        const counts = stats.by_type?.[type] ?? info?.counts ?? {};
        const pause = info?.paused;
        const filtered = `type=${encodeURIComponent(type)}`;
        return h(
          'tr',
          { 'data-type': type, class: pause ? 'paused' : undefined },
          h(
            'td',
            { 'data-label': 'Type' },
            h('span', { class: 'type-name' }, link(jobsHref(filtered), type), flags(info), keysAtCap(type)),
            pause
              ? h(
                  'div',
                  { class: 'pause-note' },
                  `Paused by ${pause.by} `,
                  agoTime(pause.at),
                  ': ',
                  h('q', { class: 'pause-reason' }, pause.reason),
                )
              : null,
          ),
          STATUSES.map((status) =>
            h(
              'td',
              { class: 'num', 'data-label': status },
              num(counts[status]) === 0
                ? '0'
                : link(jobsHref(`${filtered}&status=${status}`), String(num(counts[status]))),
            ),
          ),
          control ? h('td', { 'data-label': 'Queue' }, info ? button(type, info) : null) : null,
        );
      }),
    ),
  );
}

/** Asks for a reason (kept in the audit log and shown to other operators), then pauses the type. */
async function pauseType(
  /** @type {string} */ type,
  /** @type {TypeInfo} */ info,
  /** @type {() => Promise<void>} */ reload,
) {
  const queued = num(info.queued);
  const running = num(info.running);
  const reason = await confirmDialog(
    `Pause job type ${type}? ${plural(queued, 'queued job')} of it ${queued === 1 ? 'waits' : 'wait'} until it is resumed.`,
    `Workers claim no ${type} jobs while it is paused; ${plural(running, 'running job')} ${running === 1 ? 'finishes' : 'finish'}. Needs the admin role.`,
    'Pause',
    {
      label: 'Reason (shown to other operators and kept in the audit log)',
      placeholder: 'e.g. the upstream API is down',
    },
  );
  if (reason === false) return;
  try {
    await api('POST', `/admin/types/${encodeURIComponent(type)}/pause`, { reason });
  } catch (error) {
    flash(`Pause failed: ${messageOf(error)}`, 'error');
    return;
  }
  flash(`Paused job type ${type}.`, 'ok');
  await reload();
}

/** Resumes the type, after saying who paused it and why. */
async function resumeType(
  /** @type {string} */ type,
  /** @type {TypeInfo} */ info,
  /** @type {() => Promise<void>} */ reload,
) {
  const queued = num(info.queued);
  const pause = info.paused;
  const ok = await confirmDialog(
    `Resume job type ${type}? Workers claim its ${plural(queued, 'queued job')} again.`,
    pause ? `Paused by ${pause.by} at ${fmtTime(pause.at)}: ${pause.reason}` : '',
    'Resume',
  );
  if (!ok) return;
  try {
    await api('POST', `/admin/types/${encodeURIComponent(type)}/resume`);
  } catch (error) {
    flash(`Resume failed: ${messageOf(error)}`, 'error');
    return;
  }
  flash(`Resumed job type ${type}.`, 'ok');
  await reload();
}
