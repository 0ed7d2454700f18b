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
const assetTypes: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  // app.js imports it (an ES module of the page's pure functions).
  'format.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(assetTypes)) {
    const path = fileURLToPath(new URL(name, assetDir));
    if (!existsSync(path)) throw new Error(`Dashboard file ${path} is missing: run npm run build (it copies src/admin-ui to dist/admin-ui).`);
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
  fastify.get<{ Params: { file: string } }>('/admin/ui/assets/:file', hidden, async (request, reply) => {
    const name = request.params.file;
    if (name === 'index.html' || !assets.has(name)) {
      return securityHeaders(reply).code(404).type('text/plain; charset=utf-8').send('Not found');
    }
    return send(request, reply, name);
  });
};
