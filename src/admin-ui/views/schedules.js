// @ts-check
/*
 * The recurring schedules of every tenant (/admin/ui/schedules?…): GET /admin/schedules, in tenant and id order,
 * a page at a time, with a form for its filters (tenant, type, paused). The filters are the URL's query (the
 * admin API's own names), so a list is a bookmark. While shown, the list reads its page again when the counts
 * of the jobs move (a schedule fired, or a job it made finished) and every 15 s besides (next runs move on).
 */

/** @import { Page, Schedule } from '../api-types.js' */
import { h, link, main, problemLine } from '../dom.js';
import { PAGE_SIZE, pagerLinks } from '../filters.js';
import { live, onCountsMoved, pageReader } from '../live.js';
import { schedulesHref } from '../paths.js';
import { navigate } from '../router.js';
import { isCurrent, state } from '../state.js';
import { scheduleTable } from './schedules-table.js';

/** The form's filters, by their names in the URL and in GET /admin/schedules. */
const FILTERS = ['tenant', 'type', 'paused'];

/** @param {number} generation */
export function schedulesView(generation) {
  const params = new URLSearchParams(location.search);
  state.lastSchedulesUrl = location.pathname + location.search;
  const updated = h('span', { class: 'updated muted' });
  const problem = problemLine();
  const results = h('div', { id: 'schedule-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  main.replaceChildren(
    h('div', { class: 'view-head' }, h('h1', {}, 'Schedules'), updated),
    filterForm(params),
    problem,
    results,
    pager,
  );

  const query = new URLSearchParams(params);
  if (!query.has('limit')) query.set('limit', String(PAGE_SIZE));
  const reload = async () => {
    if (isCurrent(generation)) await view.refresh();
  };
  /** @type {() => Promise<void>} */
  const refresh = pageReader(generation, {
    url: () => `/admin/schedules?${query}`,
    problem,
    results,
    updated,
    /** @param {Page<Schedule>} page */
    draw: (page) => {
      results.replaceChildren(scheduleTable(page.data ?? [], reload));
      pager.replaceChildren(...pagerLinksOf(params, page.next_cursor));
    },
  });

  // Counts moved: a schedule may have fired, or its last job changed state.
  const view = live(generation, refresh, { stats: onCountsMoved(() => view.refreshSoon(1000)) });
}

/** "← First" when paged, "Next →" when more follow. @param {URLSearchParams} params @param {string | null | undefined} cursor */
function pagerLinksOf(params, cursor) {
  const { newest, older } = pagerLinks(params, cursor, schedulesHref);
  return [...(newest ? [link(newest, '← First')] : []), ...(older ? [link(older, 'Next →')] : [])];
}

/** The filter form, filled from the URL; applying it navigates to the filtered list. @param {URLSearchParams} params */
function filterForm(params) {
  /** @param {string} name @param {string} label @param {HTMLElement} input */
  const field = (name, label, input) => h('div', { class: 'field' }, h('label', { for: `s-${name}` }, label), input);
  /** @param {string} name */
  const text = (name) =>
    h('input', {
      id: `s-${name}`,
      name,
      type: 'search',
      value: params.get(name) ?? '',
      placeholder: 'any',
      autocomplete: 'off',
    });
  const paused = params.get('paused') ?? '';
  const inputs = {
    tenant: text('tenant'),
    type: text('type'),
    paused: h(
      'select',
      { id: 's-paused', name: 'paused' },
      [
        ['', 'any'],
        ['false', 'active'],
        ['true', 'paused'],
      ].map(([value, label]) => h('option', { value, selected: paused === value }, label)),
    ),
  };
  const form = h(
    'form',
    { class: 'filters', id: 'schedule-filters', role: 'search' },
    field('tenant', 'Tenant', inputs.tenant),
    field('type', 'Type', inputs.type),
    field('paused', 'State', inputs.paused),
    h(
      'div',
      { class: 'field field-buttons' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', onclick: () => navigate(schedulesHref()) }, 'Clear'),
    ),
  );
  /** @param {Event} [event] */
  const apply = (event) => {
    event?.preventDefault();
    // A new filter starts at the first page; parameters the form does not show (limit) are kept.
    const next = new URLSearchParams(params);
    next.delete('cursor');
    for (const name of FILTERS) {
      const value = inputs[/** @type {keyof typeof inputs} */ (name)].value.trim();
      if (value) next.set(name, value);
      else next.delete(name);
    }
    navigate(schedulesHref(next));
  };
  form.addEventListener('submit', apply);
  inputs.paused.addEventListener('change', apply);
  return form;
}
