// @ts-check
/*
 * The jobs list (/admin/ui/jobs?…): the search of GET /admin/jobs, newest first, a page at a time, with a
 * form for the common filters. The filters are the URL's query (the admin API's own names), so a list is
 * a bookmark; applying the form is a navigation. While shown, the list watches the jobs on its page and
 * the counts, and reads its page again when either moves.
 */

/** @import { Job, Page } from '../api-types.js' */
import { h, link, main, problemLine } from '../dom.js';
import { sameAs } from '../events.js';
import { filtersQuery, isoToLocalInput, listQuery, pagerLinks, STATUSES } from '../filters.js';
import { live, onCountsMoved, pageReader } from '../live.js';
import { jobsHref } from '../paths.js';
import { navigate } from '../router.js';
import { isCurrent, state } from '../state.js';
import { bulkActions } from './bulk.js';
import { jobTable } from './jobs-table.js';

/** @param {number} generation */
export function jobsView(generation) {
  const params = new URLSearchParams(location.search);
  state.lastListUrl = location.pathname + location.search;
  const form = filterForm(params);

  const updated = h('span', { class: 'updated muted' });
  const problem = problemLine();
  const results = h('div', { id: 'job-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  /** The jobs on this page, by id. @type {Map<string, Job>} */
  let shown = new Map();
  const bulk = bulkActions({
    params,
    results,
    shown: () => shown,
    current: () => isCurrent(generation),
    refresh: () => view.refresh(),
  });
  main.replaceChildren(
    h('div', { class: 'view-head' }, h('h1', {}, 'Jobs'), updated),
    form,
    bulk.bar,
    problem,
    results,
    pager,
  );

  // The URL's query is the API's query, so any search the admin API knows can be bookmarked.
  const query = listQuery(params);
  /** @type {() => Promise<void>} */
  const refresh = pageReader(generation, {
    url: () => `/admin/jobs?${query}`,
    problem,
    results,
    updated,
    /** @param {Page<Job>} page */
    seen: (page) => {
      shown = new Map((page.data ?? []).map((job) => [job.id, job]));
      view.watch(shown.keys());
    },
    // Also keeps a half-done tick of the selection.
    /** @param {Page<Job>} page */
    draw: (page) => {
      bulk.forgetUnshown();
      results.replaceChildren(jobTable(page.data ?? [], Boolean(page.next_cursor), bulk.selection));
      bulk.showSelection();
      const links = pagerLinks(params, page.next_cursor);
      pager.replaceChildren(
        ...(links.newest ? [link(links.newest, '← Newest')] : []),
        ...(links.older ? [link(links.older, 'Older →')] : []),
      );
    },
  });

  const view = live(generation, refresh, {
    // Counts moved (a job was created, finished, deleted…): this page may have changed.
    stats: onCountsMoved(() => view.refreshSoon(1000)),
    // One of the jobs shown changed (progress, status…) or went.
    job: (job) => {
      if (shown.has(job.id) && !sameAs(job, shown.get(job.id))) view.refreshSoon(1000);
    },
    gone: ({ id }) => {
      if (shown.has(id)) view.refreshSoon(1000);
    },
  });
}

/** The filter form, filled from the URL; applying it (or choosing a status) navigates to the filtered list. @param {URLSearchParams} params */
function filterForm(params) {
  /** @param {string} name @param {string} label @param {HTMLElement} input */
  const field = (name, label, input) => h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), input);
  /** @param {string} name @param {string} placeholder */
  const text = (name, placeholder) =>
    h('input', {
      id: `f-${name}`,
      name,
      type: 'search',
      value: params.get(name) ?? '',
      placeholder,
      autocomplete: 'off',
    });
  /** @param {string} name */
  const timeInput = (name) =>
    h('input', { id: `f-${name}`, name, type: 'datetime-local', value: isoToLocalInput(params.get(name) ?? '') });
  const current = params.get('status');
  // A status the form does not know (from a bookmark, say) stays selectable, so the form shows what the list shows.
  const statusOptions = current && !STATUSES.includes(current) ? [current, ...STATUSES] : STATUSES;
  const inputs = {
    status: h(
      'select',
      { id: 'f-status', name: 'status' },
      h('option', { value: '' }, 'any'),
      statusOptions.map((value) => h('option', { value, selected: current === value }, value)),
    ),
    type: h('input', {
      id: 'f-type',
      name: 'type',
      type: 'search',
      list: 'type-names',
      value: params.get('type') ?? '',
      placeholder: 'any',
      autocomplete: 'off',
    }),
    tenant: text('tenant', 'any'),
    concurrency_key: text('concurrency_key', 'any'),
    error: text('error', 'e.g. timeout'),
    created_after: timeInput('created_after'),
    created_before: timeInput('created_before'),
    id: text('id', 'exact id'),
  };
  const form = h(
    'form',
    { class: 'filters', id: 'filters', role: 'search' },
    field('status', 'Status', inputs.status),
    field('type', 'Type', inputs.type),
    h(
      'datalist',
      { id: 'type-names' },
      state.typeNames.map((name) => h('option', { value: name })),
    ),
    field('tenant', 'Tenant', inputs.tenant),
    field('concurrency_key', 'Concurrency key', inputs.concurrency_key),
    field('error', 'Error code or text', inputs.error),
    field('created_after', 'Created after', inputs.created_after),
    field('created_before', 'Created before', inputs.created_before),
    field('id', 'Job id', inputs.id),
    h(
      'div',
      { class: 'field field-buttons' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', onclick: () => navigate(jobsHref()) }, 'Clear'),
    ),
  );
  /** @param {Event} [event] */
  const apply = (event) => {
    event?.preventDefault();
    // Parameters the form does not show (finished_after, worker, metadata.<key>, …) are kept; a new filter starts at page one.
    const values = Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value]));
    navigate(jobsHref(filtersQuery(params, values)));
  };
  form.addEventListener('submit', apply);
  inputs.status.addEventListener('change', apply);
  return form;
}
