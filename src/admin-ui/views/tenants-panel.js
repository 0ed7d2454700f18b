// @ts-check
/*
 * The overview's "Tenants" panel: whose backlog it is. The tenants GET /admin/stats lists (the most queued jobs,
 * then the most running, most first), each count a link to that tenant's jobs in that status.
 */

/** @import { Stats } from '../api-types.js' */
import { h, link } from '../dom.js';
import { num } from '../format.js';
import { jobsHref } from '../paths.js';

/** The tenant of the jobs submitted while the API runs open (no API keys). */
const ANONYMOUS_TENANT = '-';

/** @param {Stats} stats */
export function tenantsPanel(stats) {
  const tenants = stats.tenants;
  if (!Array.isArray(tenants)) return h('p', { class: 'muted' }, 'This service does not report jobs per tenant.');
  if (tenants.length === 0) return h('p', { class: 'muted' }, 'No tenant has queued or running jobs.');
  return [
    h('p', { class: 'muted' }, 'The tenants with the most queued jobs (then running), most first.'),
    h(
      'table',
      { class: 'grid tenants', id: 'tenants' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', {}, 'Tenant'), h('th', { class: 'num' }, 'queued'), h('th', { class: 'num' }, 'running')),
      ),
      h(
        'tbody',
        {},
        tenants.map((entry) => {
          const tenant = String(entry.tenant ?? '');
          const filtered = `tenant=${encodeURIComponent(tenant)}`;
          /** @param {'queued' | 'running'} status */
          const count = (status) =>
            h(
              'td',
              { class: 'num', 'data-label': status },
              num(entry[status]) === 0
                ? '0'
                : link(jobsHref(`${filtered}&status=${status}`), String(num(entry[status]))),
            );
          return h(
            'tr',
            { 'data-tenant': tenant },
            h(
              'td',
              { 'data-label': 'Tenant' },
              link(jobsHref(filtered), tenant),
              tenant === ANONYMOUS_TENANT ? h('span', { class: 'muted' }, ' (no API key)') : null,
            ),
            count('queued'),
            count('running'),
          );
        }),
      ),
    ),
  ];
}
