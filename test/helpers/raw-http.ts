import { connect } from 'node:net';

/*
 * A deliberately dumb HTTP/1.1 client over a raw TCP socket: it sends exactly the bytes it is given (bad
 * request lines, header lines no HTTP library would write, bodies without a length, invalid UTF-8) and
 * parses the first response that comes back. For hostile-input tests against 127.0.0.1 only.
 */

export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawOutcome {
  response?: RawResponse;
  /** A 200 text/event-stream: the headers arrived and the stream was closed by us at once. */
  stream?: boolean;
  /** No answer within `holdMs` (a request the server may legitimately hold: long-poll, Prefer: wait). */
  held?: boolean;
  /** The connection ended (or failed) before a whole response arrived, or the timeout passed. */
  error?: string;
}

export interface RawRequestOptions {
  /** The request is HEAD: the response has no body whatever its Content-Length says. */
  head?: boolean;
  /** Give up quietly (`held`) when no response has begun after this long. */
  holdMs?: number;
  /** Give up with an error after this long (default 15 s). */
  timeoutMs?: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** The body of a chunked message in `data`, or undefined while it is incomplete. */
function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) return Buffer.concat(parts); // not chunked after all: take what there is
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (data.length < start + size + 2) return undefined;
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  /** The whole body once it is complete; undefined while more is expected. */
  body?: Buffer;
}

function parse(data: Buffer, head: boolean, closed: boolean): Parsed | undefined {
  const end = data.indexOf(HEADER_END);
  if (end === -1) return undefined;
  // Interim answers (100 Continue) come before the response: skip them.
  if (/^HTTP\/1\.[01] 1\d\d/.test(data.subarray(0, 12).toString('latin1')))
    return parse(data.subarray(end + HEADER_END.length), head, closed);
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!statusMatch) return { status: 0, headers: {}, body: data };
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const status = Number(statusMatch[1]);
  const rest = data.subarray(end + HEADER_END.length);
  if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const body = dechunk(rest);
    return { status, headers, body: body ?? (closed ? rest : undefined) };
  }
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length >= length) return { status, headers, body: rest.subarray(0, length) };
    return { status, headers, body: closed ? rest : undefined };
  }
  return { status, headers, body: closed ? rest : undefined };
}

/** Sends `request` as is on a new connection to 127.0.0.1:`port` and reads the first response. */
export function rawRequest(
  port: number,
  request: Buffer | string,
  options: RawRequestOptions = {},
): Promise<RawOutcome> {
  const { head = false, holdMs, timeoutMs = 15_000 } = options;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (outcome: RawOutcome): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const check = (closed: boolean): void => {
      const parsed = parse(Buffer.concat(chunks), head, closed);
      if (!parsed) {
        if (closed)
          finish({ error: chunks.length === 0 ? 'closed without a response' : 'closed inside the response headers' });
        return;
      }
      if (parsed.status === 200 && (parsed.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        finish({ response: { status: parsed.status, headers: parsed.headers, body: Buffer.alloc(0) }, stream: true });
        return;
      }
      if (parsed.body !== undefined)
        finish({ response: { status: parsed.status, headers: parsed.headers, body: parsed.body } });
      else if (closed) finish({ error: 'closed inside the response body' });
    };
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      check(false);
    });
    socket.on('end', () => check(true));
    socket.on('close', () => check(true));
    socket.on('error', (error) => {
      if (!settled) {
        check(true);
        finish({ error: `${(error as NodeJS.ErrnoException).code ?? error.message}` });
      }
    });
    if (holdMs !== undefined) {
      timers.push(
        setTimeout(() => {
          if (chunks.length === 0) finish({ held: true });
        }, holdMs),
      );
    }
    timers.push(setTimeout(() => finish({ error: `no complete response within ${timeoutMs} ms` }), timeoutMs));
  });
}

/** The bytes of an HTTP/1.1 request: `headers` are written as given (values may be raw bytes), then `Connection: close`. */
export function requestBytes(
  method: string,
  target: string | Buffer,
  headers: [string, string | Buffer][],
  body?: Buffer | string,
): Buffer {
  const parts: Buffer[] = [
    Buffer.from(`${method} `),
    Buffer.isBuffer(target) ? target : Buffer.from(target, 'latin1'),
    Buffer.from(' HTTP/1.1\r\n'),
  ];
  for (const [name, value] of headers)
    parts.push(
      Buffer.from(`${name}: `),
      Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1'),
      Buffer.from('\r\n'),
    );
  parts.push(Buffer.from('Connection: close\r\n\r\n'));
  if (body !== undefined) parts.push(Buffer.isBuffer(body) ? body : Buffer.from(body));
  return Buffer.concat(parts);
}
