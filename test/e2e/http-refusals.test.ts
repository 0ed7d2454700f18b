import { connect } from 'node:net';
import { describe, expect, inject, it } from 'vitest';
import { rawRequest, type RawOutcome } from '../helpers/raw-http.js';
import { randomPrefix, startService, useServiceCleanup, type ServiceProcess } from './helpers.js';

/*
 * Issue #9 on the real server process (`node dist/server.js`, Redis store, API keys, CORS): requests Node's
 * HTTP parser refuses, and the other refusals made before any route runs, are application/problem+json
 * with a stable code; a JSON body nested too deep is a 422, never a 500; the process serves on.
 */

useServiceCleanup();

const API_KEY = 'refusals-key-0123456789abcdef';
const ORIGIN = 'https://app.example.com';

async function start(): Promise<ServiceProcess> {
  return startService({
    REDIS_URL: inject('redisUrl'),
    REDIS_KEY_PREFIX: randomPrefix('refusals'),
    API_KEYS: `${API_KEY}:acme`,
    CORS_ORIGINS: ORIGIN,
    WORKER_CONCURRENCY: '1',
  });
}

function expectRawProblem(outcome: RawOutcome, status: number, code: string): void {
  expect(outcome.error, JSON.stringify(outcome)).toBeUndefined();
  const response = outcome.response!;
  expect(response.status, response.body.toString()).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: `/problems/${code}`, status, code });
  expect(typeof problem.title).toBe('string');
  expect(typeof problem.detail).toBe('string');
}

/** Sends `text` and reads until the server closes the connection: the whole byte stream it answered. */
function untilClosed(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(text));
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () =>
      reject(new Error(`the server did not close the connection; got ${JSON.stringify(data)}`)),
    );
  });
}

describe('refusals before any route runs (real server)', () => {
  it('answers what the HTTP parser refuses with problem+json and Connection: close', { timeout: 60_000 }, async () => {
    const service = await start();
    const { port } = service;
    const host = `Host: 127.0.0.1:${port}\r\n`;
    const cases: [string, string, number, string][] = [
      ['a malformed header line', `GET /v1/jobs HTTP/1.1\r\n${host}Bad Header\r\n\r\n`, 400, 'malformed-request'],
      ['a bad request line', 'GARBAGE\r\n\r\n', 400, 'malformed-request'],
      ['a control character in the target', `GET /v1/jobs/\x01 HTTP/1.1\r\n${host}\r\n`, 400, 'malformed-request'],
      [
        'headers over 16 KiB',
        `GET /v1/jobs HTTP/1.1\r\n${host}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
        'headers-too-large',
      ],
      [
        'a query string over 16 KiB',
        `GET /v1/jobs?${'a[b][c]=1&'.repeat(2000)} HTTP/1.1\r\n${host}\r\n`,
        431,
        'headers-too-large',
      ],
      [
        'a DELETE body sent without a length',
        `DELETE /v1/jobs/abc HTTP/1.1\r\n${host}Authorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\n\r\n{"a":1}`,
        400,
        'malformed-request',
      ],
      [
        'Content-Length with chunked',
        `POST /v1/jobs HTTP/1.1\r\n${host}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
        400,
        'malformed-request',
      ],
    ];
    for (const [what, text, status, code] of cases) {
      const outcome = await rawRequest(port, text);
      expectRawProblem(outcome, status, code);
      expect(outcome.response!.headers.connection, what).toBe('close');
    }
    // The connection is closed after the answer (not left for the client to time out).
    const stream = await untilClosed(port, `GET /v1/jobs HTTP/1.1\r\n${host}Bad Header\r\n\r\n`);
    expect(stream).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(stream).toMatch(/\r\nContent-Type: application\/problem\+json\r\n/i);
    expect(stream).toMatch(/"code":"malformed-request"/);
  });

  it(
    'answers what Node would answer bare (no Host, Expect, CONNECT) and CORS preflight refusals as problems',
    { timeout: 60_000 },
    async () => {
      const service = await start();
      const { port } = service;
      const host = `Host: 127.0.0.1:${port}\r\n`;
      expectRawProblem(
        await rawRequest(port, 'GET /v1/jobs HTTP/1.1\r\nConnection: close\r\n\r\n'),
        400,
        'bad-request',
      );
      expectRawProblem(
        await rawRequest(
          port,
          `POST /v1/jobs HTTP/1.1\r\n${host}Expect: the-unexpected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        ),
        417,
        'expectation-failed',
      );
      expectRawProblem(
        await rawRequest(port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n${host}\r\n`),
        405,
        'method-not-allowed',
      );
      expectRawProblem(
        await rawRequest(port, `OPTIONS /v1/jobs/abc HTTP/1.1\r\n${host}Connection: close\r\n\r\n`),
        400,
        'invalid-preflight',
      );
      expectRawProblem(
        await rawRequest(
          port,
          `OPTIONS /v1/jobs/abc HTTP/1.1\r\n${host}Origin: ${ORIGIN}\r\nConnection: close\r\n\r\n`,
        ),
        400,
        'invalid-preflight',
      );
      expectRawProblem(
        await rawRequest(port, `TRACE /v1/jobs/x/result/y HTTP/1.1\r\n${host}Connection: close\r\n\r\n`),
        404,
        'not-found',
      );
      expectRawProblem(
        await rawRequest(
          port,
          `GET /v1/jobs/%ZZ HTTP/1.1\r\n${host}Authorization: Bearer ${API_KEY}\r\nConnection: close\r\n\r\n`,
        ),
        400,
        'bad-request',
      );
      const preflight = await rawRequest(
        port,
        `OPTIONS /v1/jobs/abc HTTP/1.1\r\n${host}Origin: ${ORIGIN}\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n`,
      );
      expect(preflight.response?.status).toBe(204);
      expect(preflight.response?.headers['access-control-allow-origin']).toBe(ORIGIN);
    },
  );

  it(
    'takes JSON exactly 64 levels deep, refuses deeper with 422 json-too-deep, and serves on',
    { timeout: 60_000 },
    async () => {
      const service = await start();
      const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
      const nested = (arrays: number): string => `${'['.repeat(arrays)}1${']'.repeat(arrays)}`;
      const atLimit = `{"type":"echo","input":{"value":${nested(62)}}}`;
      const created = await fetch(`${service.baseUrl}/v1/jobs`, {
        method: 'POST',
        headers: { ...headers, prefer: 'wait=10' },
        body: atLimit,
      });
      expect(created.status).toBe(200);
      const job = (await created.json()) as { id: string; input: unknown; result: unknown };
      expect(job.input).toEqual((JSON.parse(atLimit) as { input: unknown }).input);
      expect(job.result).toEqual({ value: JSON.parse(nested(62)) as unknown });
      for (const depth of [63, 10_000, 400_000]) {
        const response = await fetch(`${service.baseUrl}/v1/jobs`, {
          method: 'POST',
          headers,
          body: `{"type":"echo","input":{"value":${nested(depth)}}}`,
        });
        expect(response.status).toBe(422);
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const problem = (await response.json()) as { code: string; errors: { pointer: string }[] };
        expect(problem.code).toBe('json-too-deep');
        expect(problem.errors[0]!.pointer).toMatch(/^\/input\/value(\/0)+$/);
      }
      const live = await fetch(`${service.baseUrl}/health/live`);
      expect(live.status).toBe(200);
      expect(service.logs().filter((line) => line.level >= 50)).toEqual([]);
    },
  );
});
