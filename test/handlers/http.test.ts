import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHttpHandler } from '../../src/handlers/http.js';
import { OutboundPolicy } from '../../src/outbound/outbound-policy.js';
import { harnessScope, parseJob, waitForStatus } from '../routes/helpers.js';

/* The `http` job type against a server of the test's own on 127.0.0.1, under the outbound (SSRF) rules. */

let upstream: Server;
let base: string;
const seen: { method: string; url: string; headers: Record<string, unknown>; body: string }[] = [];

beforeAll(async () => {
  upstream = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      seen.push({ method: request.method!, url: request.url!, headers: request.headers, body });
      if (request.url === '/redirect') {
        response.writeHead(302, { location: '/ok' }).end();
      } else if (request.url === '/big') {
        response.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(2 * 1024 * 1024));
      } else {
        response
          .writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes' })
          .end(JSON.stringify({ got: body }));
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

const scope = harnessScope();
afterEach(() => scope.closeAll());

async function run(allow: string[], input: Record<string, unknown>) {
  const { app } = await scope.open({ workers: true, extraHandlers: [createHttpHandler(new OutboundPolicy(allow))] });
  const job = parseJob(
    await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'http', input, max_attempts: 1 } }),
  );
  return waitForStatus(app, job.id, 'succeeded', 'failed');
}

describe('the http job type', () => {
  it('performs the request and stores status, headers and body as the result', async () => {
    const done = await run(['127.0.0.1'], {
      method: 'POST',
      url: `${base}/echo`,
      body: { order: 7 },
      headers: { 'x-trace': 'abc' },
    });
    expect(done.status).toBe('succeeded');
    expect(done.result).toMatchObject({
      status: 201,
      headers: { 'x-upstream': 'yes' },
      body: JSON.stringify({ got: '{"order":7}' }),
      truncated: false,
    });
    const request = seen.find((each) => each.url === '/echo')!;
    expect(request).toMatchObject({
      method: 'POST',
      headers: { 'x-trace': 'abc', 'content-type': 'application/json' },
    });
  });

  it('does not follow redirects, and cuts a large body', async () => {
    const redirected = await run(['127.0.0.1'], { url: `${base}/redirect` });
    expect(redirected.result).toMatchObject({ status: 302, headers: { location: '/ok' } });
    const big = await run(['127.0.0.1'], { url: `${base}/big` });
    const result = big.result as { body: string; truncated: boolean };
    expect(result.truncated).toBe(true);
    expect(result.body.length).toBe(1024 * 1024);
  });

  it('refuses loopback, private, link-local and metadata addresses unless OUTBOUND_ALLOW lists them, without calling them', async () => {
    const before = seen.length;
    for (const url of [
      `${base}/ok`,
      `http://localhost:${new URL(base).port}/ok`,
      'http://169.254.169.254/latest/meta-data/',
      'http://10.1.2.3/',
      'http://[::1]/',
      'http://192.168.1.1/',
    ]) {
      const refused = await run([], { url, timeout_s: 2 });
      expect(refused.status, url).toBe('failed');
      expect(refused.error, url).toMatchObject({ code: 'outbound-refused', retryable: false });
    }
    expect(seen.length).toBe(before);
    const allowedByRange = await run(['127.0.0.0/8'], { url: `${base}/ok` });
    expect(allowedByRange.status).toBe('succeeded');
    const allowedByName = await run(['localhost'], { url: `http://localhost:${new URL(base).port}/ok` });
    expect(allowedByName.status).toBe('succeeded');
  });

  it('checks its input: an http(s) URL, a known method', async () => {
    const { app } = await scope.open({ extraHandlers: [createHttpHandler(new OutboundPolicy())] });
    for (const input of [
      { url: 'ftp://example.com/' },
      { url: 'not a url' },
      { url: 'https://example.com', method: 'BREW' },
    ]) {
      const response = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'http', input } });
      expect(response.statusCode, JSON.stringify(input)).toBe(422);
    }
  });
});
