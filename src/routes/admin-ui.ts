import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The operator dashboard: plain static files (src/admin-ui, copied to dist/admin-ui by the build), served
 * outside the admin guard. The page signs in with POST /admin/session and then reads the admin API with
 * its cookie. `/admin` redirects to `/admin/ui`; every path under `/admin/ui` is the page (its views),
 * except `/admin/ui/assets/*`. Every answer carries a strict Content-Security-Policy: no inline script or
 * style, nothing from other origins, no framing.
 */
export const ADMIN_UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const assetDir = new URL('../admin-ui/', import.meta.url);

/**
 * The page's ES modules, by path under src/admin-ui: app.js (index.html's script) and every module it imports,
 * served as they are (no bundle). A module missing here answers 404 and the page does not start; a test
 * (test/ui/admin-ui-assets.test.ts) follows every import from index.html and fails first.
 */
const ADMIN_UI_MODULES = [
  'app.js',
  'api.js',
  'confirm.js',
  'dom.js',
  'events.js',
  'filters.js',
  'format.js',
  'live.js',
  'paths.js',
  'router.js',
  'state.js',
  'views/bulk.js',
  'views/history-chart.js',
  'views/job-detail.js',
  'views/job.js',
  'views/jobs-table.js',
  'views/jobs.js',
  'views/overview-tiles.js',
  'views/overview.js',
  'views/schedule-actions.js',
  'views/schedule.js',
  'views/schedules-table.js',
  'views/schedules.js',
  'views/sign-in.js',
  'views/tenants-panel.js',
  'views/types-panel.js',
  'views/workers-panel.js',
] as const;

const assetTypes: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  ...Object.fromEntries(ADMIN_UI_MODULES.map((name) => [name, 'text/javascript; charset=utf-8'])),
};

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(assetTypes)) {
    const path = fileURLToPath(new URL(name, assetDir));
    if (!existsSync(path))
      throw new Error(
        `Dashboard file ${path} is missing: run npm run build (it copies src/admin-ui to dist/admin-ui).`,
      );
    const body = readFileSync(path);
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', ADMIN_UI_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

export const adminUiRoutes: FastifyPluginAsync = async (fastify) => {
  const assets = loadAssets();

  const send = (request: FastifyRequest, reply: FastifyReply, name: string) => {
    const asset = assets.get(name)!;
    securityHeaders(reply).header('cache-control', 'no-cache').header('etag', asset.etag);
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };

  const hidden = { schema: { hide: true } };
  fastify.get('/admin', hidden, async (_request, reply) => securityHeaders(reply).redirect('/admin/ui', 302));
  fastify.get('/admin/ui', hidden, async (request, reply) => send(request, reply, 'index.html'));
  fastify.get('/admin/ui/*', hidden, async (request, reply) => send(request, reply, 'index.html'));
  // A wildcard, not `:file`: the views' modules are in a folder (assets/views/jobs.js). Only names in the
  // allow-list are served, so `..` or a file beside them (format.d.ts, tsconfig.json) answers 404.
  fastify.get<{ Params: { '*': string } }>('/admin/ui/assets/*', hidden, async (request, reply) => {
    const name = request.params['*'];
    if (name === 'index.html' || !assets.has(name)) {
      return securityHeaders(reply).code(404).type('text/plain; charset=utf-8').send('Not found');
    }
    return send(request, reply, name);
  });
};
