// @ts-check
/*
 * The overview (/admin/ui): counts per status and per type, the queue, the last hour's throughput, the job
 * types (pause, resume), the tenants with the largest backlog and the workers (drain, resume). Its counts and
 * tenants come with every `stats` event of the stream; the panels the event does not carry (types, workers,
 * history) are read again soon after.
 */

/** @import { Page, Stats, TypeInfo } from '../api-types.js' */
/** @import { WorkersAnswer } from './workers-panel.js' */
import { api, optional } from '../api.js';
import { h, main, problemLine, section } from '../dom.js';
import { stable } from '../events.js';
import { updatedAt } from '../format.js';
import { live } from '../live.js';
import { isCurrent, state } from '../state.js';
import { historyChart } from './history-chart.js';
import { queueTiles, statusTiles } from './overview-tiles.js';
import { tenantsPanel } from './tenants-panel.js';
import { typesPanel } from './types-panel.js';
import { workersPanel } from './workers-panel.js';

/** Within this long of a change of the work, workers have written it into the worker registry and the stats history. */
const REGISTRY_LAG_MS = 1200;

/** @param {number} generation */
export function overviewView(generation) {
  const updated = h('span', { class: 'updated muted' });
  const problem = problemLine();
  const body = h('div', { class: 'overview' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(h('div', { class: 'view-head' }, h('h1', {}, 'Overview'), updated), problem, body);

  // The latest answers: stats from GET /admin/stats or the stream's `stats` event, the others from their GETs
  // (settled: a panel whose endpoint failed says so, and the rest of the page still shows).
  /** @type {Stats | null} */
  let stats = null;
  /** @type {PromiseSettledResult<unknown> | null} */
  let history = null;
  /** @type {PromiseSettledResult<WorkersAnswer | null> | null} */
  let workers = null;
  /** @type {PromiseSettledResult<Page<TypeInfo> | null> | null} */
  let types = null;
  let countsSeen = '';

  /** After an action: read everything again, unless the operator has moved on to another view. */
  const reload = async () => {
    if (isCurrent(generation)) await view.refresh();
  };

  const render = () => {
    if (!stats || !history || !workers) return;
    state.typeNames = Object.keys(stats.by_type ?? {}).sort();
    /** @type {Map<string, TypeInfo>} */
    const typeInfo = new Map(
      types?.status === 'fulfilled' && Array.isArray(types.value?.data)
        ? types.value.data.map((entry) => [entry.type, entry])
        : [],
    );
    const alarms = [...typeInfo.values()].filter((entry) => entry.alarm);
    body.replaceChildren(
      alarms.length > 0
        ? h(
            'p',
            { class: 'form-error', role: 'alert', id: 'alarms' },
            `Alarm: jobs are queued and no live worker runs ${alarms.map((entry) => entry.type).join(', ')}.`,
          )
        : '',
      statusTiles(stats),
      queueTiles(stats),
      section('Last hour', historyChart(history, stats)),
      section('Job types', typesPanel(stats, typeInfo, reload)),
      section('Tenants', tenantsPanel(stats)),
      section('Workers', workersPanel(workers, stats, reload)),
    );
    updated.textContent = updatedAt(Date.now());
  };

  const refresh = async () => {
    const [statsAnswer, historyAnswer, workersAnswer, typesAnswer] = await Promise.allSettled([
      /** @type {Promise<Stats>} */ (api('GET', '/admin/stats')),
      optional('/admin/stats/history?window=1h', 'history'),
      /** @type {Promise<WorkersAnswer | null>} */ (optional('/admin/workers', 'workers')),
      /** @type {Promise<Page<TypeInfo> | null>} */ (optional('/admin/types', 'types')),
    ]);
    if (!isCurrent(generation)) return;
    if (statsAnswer.status === 'rejected') {
      problem.textContent = statsAnswer.reason.message;
      problem.hidden = false;
      return;
    }
    problem.hidden = true;
    stats = statsAnswer.value;
    countsSeen = stable({ ...stats, pool: undefined });
    history = historyAnswer;
    workers = workersAnswer;
    types = typesAnswer;
    render();
  };

  const view = live(generation, refresh, {
    // New counts are shown at once; the panels they do not carry (types, workers, history) are read again soon:
    // not before REGISTRY_LAG_MS, the time the worker registry and the history take to follow the work (workers
    // write them on change, coalesced, within a second), so the reload does not fetch them just before that.
    stats: (fresh) => {
      stats = fresh;
      render();
      const counts = stable({ ...fresh, pool: undefined });
      if (counts === countsSeen) return;
      countsSeen = counts;
      view.refreshSoon(2000, REGISTRY_LAG_MS);
    },
  });
}
