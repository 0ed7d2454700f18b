// @ts-check
/*
 * The jobs list's bulk actions: Retry / Cancel / Delete on every job matching the list's filters, or on the
 * rows ticked. "All matching" is done safely in two steps: a dry run counts the jobs and returns a snapshot
 * of their ids, the confirmation says exactly how many, and only that snapshot is acted on (jobs that match
 * later are not). POST /admin/bulk checks each job again when it acts, and reports those it skipped.
 */

/** @import { BulkDryRun, BulkOutcome, Job } from '../api-types.js' */
/** @import { Selection } from './jobs-table.js' */
import { api, ApiError, messageOf } from '../api.js';
import { confirmDialog } from '../confirm.js';
import { flash, h } from '../dom.js';
import { bulkFilter, describeFilter, statusesOf } from '../filters.js';
import { fmtTime, num, plural } from '../format.js';

/**
 * What each bulk action is called, and which jobs it takes (null: any).
 * @typedef {'retry' | 'cancel' | 'delete'} BulkAction
 * @type {Record<BulkAction, { verb: string, past: string, applies: string[] | null, note: string }>}
 */
const BULK = {
  retry: {
    verb: 'Retry',
    past: 'Retried',
    applies: ['failed', 'canceled'],
    note: 'Each is checked again when acted on: one no longer failed or canceled is skipped.',
  },
  cancel: {
    verb: 'Cancel',
    past: 'Canceled',
    applies: ['queued', 'running'],
    note: 'Each is checked again when acted on: one no longer queued or running is skipped; running ones have their handler aborted.',
  },
  delete: {
    verb: 'Delete',
    past: 'Deleted',
    applies: null,
    note: 'They are removed for good (active ones are canceled first).',
  },
};

/**
 * The bulk bar of a jobs list, and the ticked jobs it acts on.
 *
 * @param {object} list
 * @param {URLSearchParams} list.params the list's URL query: its filters
 * @param {HTMLElement} list.results where the list's table is (its tick boxes)
 * @param {() => Map<string, Job>} list.shown the jobs on the page now, by id
 * @param {() => boolean} list.current whether the list is still the view shown
 * @param {() => Promise<void>} list.refresh reads the list again
 */
export function bulkActions({ params, results, shown, current, refresh }) {
  const described = describeFilter(params);
  /** @type {Set<string>} */
  const selected = new Set();

  const selectedCount = h('span', { id: 'selected-count', class: 'bulk-label' });
  const selectionBar = h(
    'div',
    { class: 'bulk-row', id: 'bulk-selected', hidden: true },
    selectedCount,
    h(
      'button',
      { type: 'button', class: 'small', id: 'selected-retry', onclick: () => void bulkSelected('retry') },
      'Retry selected',
    ),
    h(
      'button',
      { type: 'button', class: 'small', id: 'selected-cancel', onclick: () => void bulkSelected('cancel') },
      'Cancel selected',
    ),
    h(
      'button',
      { type: 'button', class: 'small danger', id: 'selected-delete', onclick: () => void bulkSelected('delete') },
      'Delete selected',
    ),
    h(
      'button',
      { type: 'button', class: 'link', id: 'selected-clear', onclick: () => setSelection([]) },
      'Clear selection',
    ),
  );
  const bar = h(
    'section',
    { class: 'bulk', id: 'bulk-bar', 'aria-label': 'Bulk actions' },
    h(
      'div',
      { class: 'bulk-row' },
      h(
        'span',
        { class: 'bulk-label' },
        described
          ? ['All jobs matching ', h('code', { class: 'bulk-filter' }, described), ':']
          : 'All jobs (no filter):',
      ),
      h(
        'button',
        { type: 'button', class: 'small', id: 'bulk-retry', onclick: () => void bulkAll('retry') },
        'Retry all',
      ),
      h(
        'button',
        { type: 'button', class: 'small', id: 'bulk-cancel', onclick: () => void bulkAll('cancel') },
        'Cancel all',
      ),
      h(
        'button',
        { type: 'button', class: 'small danger', id: 'bulk-delete', onclick: () => void bulkAll('delete') },
        'Delete all',
      ),
    ),
    selectionBar,
  );

  /** @param {Iterable<string>} ids */
  const setSelection = (ids) => {
    selected.clear();
    for (const id of ids) selected.add(id);
    for (const box of results.querySelectorAll('input.pick')) {
      if (box instanceof HTMLInputElement) box.checked = selected.has(box.getAttribute('data-id') ?? '');
    }
    showSelection();
  };
  /** The selection bar and the table's "select every job on this page" box, as the ticks are. */
  const showSelection = () => {
    selectionBar.hidden = selected.size === 0;
    selectedCount.textContent = `${plural(selected.size, 'job')} selected:`;
    const all = results.querySelector('#select-page');
    if (all instanceof HTMLInputElement) {
      all.checked = shown().size > 0 && selected.size === shown().size;
      all.indeterminate = selected.size > 0 && selected.size < shown().size;
    }
  };
  /** @type {Selection} */
  const selection = {
    has: (id) => selected.has(id),
    toggle: (id, on) => {
      if (on) selected.add(id);
      else selected.delete(id);
      showSelection();
    },
    all: (on) => setSelection(on ? [...shown().keys()] : []),
  };
  /** A ticked job that left the page is not acted on unseen. */
  const forgetUnshown = () => {
    for (const id of [...selected]) if (!shown().has(id)) selected.delete(id);
  };

  /** On every job matching the list's filters, by the snapshot of a dry run. @param {BulkAction} action */
  async function bulkAll(action) {
    const { verb, past, note, applies } = BULK[action];
    const statuses = statusesOf(params);
    if (applies && statuses.length > 0 && statuses.every((status) => !applies.includes(status))) {
      flash(
        `Nothing to ${action}: only ${applies.join(' or ')} jobs can be, and this list shows ${statuses.join(' and ')} jobs.`,
        'info',
      );
      return;
    }
    // Without a status filter that keeps to the jobs the action takes, say that the others are skipped.
    const mixed = applies && !(statuses.length > 0 && statuses.every((status) => applies.includes(status)));
    const howMany = mixed
      ? ` Only the ${applies.join(' or ')} ones among them are ${past.toLowerCase()}; the others are skipped.`
      : ` ${note}`;
    /** @type {BulkDryRun} */
    let dryRun;
    try {
      dryRun = await bulkDryRun(action, params);
    } catch (error) {
      flash(`${verb} all failed: ${messageOf(error)}`, 'error');
      return;
    }
    const count = num(dryRun.count);
    if (count === 0) {
      flash(`No job ${described ? `matches ${described}` : 'exists'}: nothing to ${action}.`, 'info');
      return;
    }
    const which = described
      ? `${plural(count, 'job')} matching ${described}`
      : `all ${plural(count, 'job')} (no filter)`;
    const text = dryRun.truncated
      ? `${verb} the first ${plural(count, 'job')} ${described ? `matching ${described}` : '(no filter)'}? More match than one bulk action takes: run it again for the rest. Jobs that match later are not included.`
      : `${verb} ${which}? Jobs that match later are not included.`;
    const expires = dryRun.expires_at ? ` Confirm before ${fmtTime(dryRun.expires_at).slice(11)}.` : '';
    if (!(await confirmDialog(text, `Only these ${plural(count, 'job')} are touched.${howMany}${expires}`, verb)))
      return;
    /** @type {BulkOutcome} */
    let outcome;
    try {
      outcome = await api('POST', '/admin/bulk', { action, snapshot: dryRun.snapshot });
    } catch (error) {
      flash(`${verb} all failed: ${messageOf(error)}`, 'error');
      return;
    }
    flash(
      `${past} ${plural(num(outcome.affected), 'job')}${num(outcome.skipped) > 0 ? `, skipped ${num(outcome.skipped)} (changed since)` : ''}.`,
      'ok',
    );
    if (current()) await refresh();
  }

  /** On the ticked jobs. @param {BulkAction} action */
  async function bulkSelected(action) {
    const { verb, past, note, applies } = BULK[action];
    const ids = [...selected];
    if (ids.length === 0) return;
    const fitting = ids.filter((id) => !applies || applies.includes(shown().get(id)?.status ?? '')).length;
    const fit =
      applies && fitting < ids.length
        ? ` ${fitting} of them ${fitting === 1 ? 'is' : 'are'} ${applies.join(' or ')} now; the others are skipped.`
        : '';
    if (
      !(await confirmDialog(
        `${verb} ${plural(ids.length, 'selected job')}?`,
        `Only these ${plural(ids.length, 'job')} are touched. ${note}${fit}`,
        verb,
      ))
    )
      return;
    /** @type {BulkOutcome} */
    let outcome;
    try {
      outcome = await api('POST', '/admin/bulk', { action, ids });
    } catch (error) {
      flash(`${verb} selected failed: ${messageOf(error)}`, 'error');
      return;
    }
    flash(
      `${past} ${plural(num(outcome.affected), 'job')}${num(outcome.skipped) > 0 ? `, skipped ${num(outcome.skipped)} (gone, or not ${applies ? applies.join(' or ') : 'there'})` : ''}.`,
      'ok',
    );
    if (!current()) return;
    setSelection([]);
    await refresh();
  }

  return { bar, selection, showSelection, forgetUnshown };
}

/**
 * The dry run of a bulk action on the list's filters: {count, truncated, snapshot, expires_at}.
 * @param {BulkAction} action
 * @param {URLSearchParams} params
 * @returns {Promise<BulkDryRun>}
 */
async function bulkDryRun(action, params) {
  try {
    return await api('POST', '/admin/bulk', { action, filter: bulkFilter(params), dry_run: true });
  } catch (error) {
    // A service whose bulk filter takes `status` only as an array (as its OpenAPI document describes it).
    const statusRefused =
      error instanceof ApiError &&
      error.status === 422 &&
      params.get('status') &&
      (error.problem.errors ?? []).some((entry) => entry.pointer === '/filter/status');
    if (!statusRefused) throw error;
    return api('POST', '/admin/bulk', { action, filter: bulkFilter(params, true), dry_run: true });
  }
}
