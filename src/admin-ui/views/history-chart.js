// @ts-check
/*
 * The overview's "Last hour" panel: jobs finished per bucket (GET /admin/stats/history), as an SVG bar chart
 * (no chart library: a few rects, styled by app.css). The current, partial bucket is included and topped up
 * to the stats' `finished_last_minute` shown beside it (see historyPoints in format.js), so the two panels
 * never disagree (no "No job finished in the last hour" next to "7 finished last minute").
 */

/** @import { Stats } from '../api-types.js' */
import { h, svg } from '../dom.js';
import { fmtTime, historyPoints, num } from '../format.js';

const WIDTH = 600;
const HEIGHT = 140;

/** "13:04" of an epoch-ms time. */
const clock = (/** @type {number} */ at) => fmtTime(new Date(at).toISOString()).slice(11, 16);

/**
 * @param {PromiseSettledResult<unknown>} settled GET /admin/stats/history?window=1h, null when the service has none
 * @param {Stats | null} stats
 */
export function historyChart(settled, stats) {
  if (settled.status === 'rejected') return h('p', { class: 'form-error' }, `History: ${settled.reason.message}`);
  if (settled.value === null)
    return h(
      'p',
      { class: 'muted' },
      'Throughput history is not available on this service (GET /admin/stats/history answers 404).',
    );
  const points = historyPoints(settled.value, num(stats?.finished_last_minute), Date.now());
  const first = points[0];
  const last = points.at(-1);
  if (!first || !last || !points.some((point) => point.finished > 0))
    return h('p', { class: 'muted', id: 'history-empty' }, 'No job finished in the last hour.');
  const max = Math.max(1, ...points.map((point) => point.finished));
  const slot = WIDTH / points.length;
  const barWidth = Math.max(1, slot * 0.8);
  const y = (/** @type {number} */ value) => HEIGHT - (value / max) * (HEIGHT - 4);
  const totalFinished = points.reduce((sum, point) => sum + point.finished, 0);
  const totalFailed = points.reduce((sum, point) => sum + point.failed, 0);
  const chart = svg(
    'svg',
    {
      class: 'chart',
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: 'none',
      role: 'img',
      'aria-label': `Jobs finished per interval over the last hour: ${totalFinished} finished, ${totalFailed} failed`,
    },
    svg('line', { class: 'chart-axis', x1: 0, x2: WIDTH, y1: HEIGHT - 0.5, y2: HEIGHT - 0.5 }),
    points.map((point, index) => {
      const x = index * slot + (slot - barWidth) / 2;
      const label = `${fmtTime(new Date(point.at).toISOString())}: ${point.finished} finished, ${point.failed} failed${point.pending ? ` (${point.pending} just now, not yet in the history)` : ''}`;
      return svg(
        'g',
        {},
        svg('title', {}, label),
        svg('rect', {
          class: 'bar-finished',
          x,
          width: barWidth,
          y: y(point.finished),
          height: HEIGHT - y(point.finished),
        }),
        point.failed > 0
          ? svg('rect', {
              class: 'bar-failed',
              x,
              width: barWidth,
              y: y(point.failed),
              height: HEIGHT - y(point.failed),
            })
          : null,
      );
    }),
  );
  return h(
    'figure',
    { class: 'chart-figure' },
    chart,
    h(
      'figcaption',
      { class: 'chart-caption' },
      h('span', {}, clock(first.at)),
      h(
        'span',
        { class: 'legend' },
        h('span', { class: 'key key-finished' }),
        `${totalFinished} finished `,
        h('span', { class: 'key key-failed' }),
        `${totalFailed} failed · peak ${max}`,
      ),
      h('span', {}, clock(last.at)),
    ),
  );
}
