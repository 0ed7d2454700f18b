import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionError, FastifyInstance } from 'fastify';
import { problem, PROBLEM_CONTENT_TYPE, type Problem } from '../errors.js';

/*
 * Requests that never reach a route, because Node's HTTP server refuses them (or would answer them itself
 * with a bare, body-less response): they are answered with problem+json too, written to the socket.
 */

/** How long a refused connection stays open after its answer, so the client reads it before the close. */
const CLOSE_GRACE_MS = 1000;

const parserDetails: Record<string, string> = {
  HPE_INVALID_METHOD:
    'The request method is not one this server understands (or body bytes were sent without a Content-Length, and read as the next request).',
  HPE_INVALID_URL: 'The request target (the URL) is not valid.',
  HPE_INVALID_VERSION: 'The HTTP version of the request line is not valid.',
  HPE_INVALID_CONSTANT: 'The request line is not valid HTTP/1.1.',
  HPE_INVALID_HEADER_TOKEN:
    'A header line is not valid (its name has a character a header name cannot have, or it has no colon).',
  HPE_INVALID_CONTENT_LENGTH: 'The Content-Length header is not valid.',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'Content-Length is not allowed together with Transfer-Encoding: chunked.',
  HPE_INVALID_TRANSFER_ENCODING: 'The Transfer-Encoding header is not valid.',
  HPE_INVALID_CHUNK_SIZE: 'The chunked body is not valid.',
  HPE_LF_EXPECTED: 'A line of the request does not end with CRLF.',
  HPE_CR_EXPECTED: 'A line of the request does not end with CRLF.',
  HPE_UNEXPECTED_SPACE: 'The request has a space where none may be.',
};

/**
 * The problem for a request Node's HTTP parser refused (or timed out) before any route saw it: 431 for
 * headers over the size limit, 408 for a timeout, 400 `malformed-request` otherwise.
 */
export function clientErrorProblem(error: Pick<ConnectionError, 'code'>): Problem {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return problem(
      'headers-too-large',
      'The request line and headers are larger than this server reads (16 KiB); a long URL or query string counts.',
    );
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return problem('request-timeout', 'The request did not arrive in full in time.');
  const detail = parserDetails[error.code] ?? 'The HTTP request could not be parsed.';
  return problem('malformed-request', `${detail} (${error.code})`);
}

/**
 * Writes `answer` as a raw HTTP/1.1 response with `Connection: close`, then closes the connection: at once
 * with a FIN after the answer, and for good once the client closes or after a short grace. What the client
 * still sends is read and dropped meanwhile (unread data would turn the close into a reset that can lose
 * the answer, and a paused socket would never see the client go).
 */
export function writeRawProblem(socket: Duplex, answer: Problem): void {
  const body = JSON.stringify(answer);
  socket.on('error', () => undefined);
  socket.resume();
  socket.end(
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\n` +
      `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Fastify's `clientErrorHandler`: Node's HTTP server calls it for a request it could not parse (no request
 * or reply objects exist yet). A reset or destroyed socket gets nothing, and nothing is written when an
 * answer to an earlier request on this connection has started (pipelining), which writing would corrupt.
 */
export function clientErrorHandler(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed || socket.writableEnded) return;
  this.log.debug({ err: error }, 'client error: request refused by the HTTP parser');
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  writeRawProblem(socket, clientErrorProblem(error));
}

/** What Node would otherwise answer bare or not at all: `Expect` other than 100-continue (a bare 417), CONNECT (dropped). */
export function registerServerRefusals(server: Server): void {
  server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const body = JSON.stringify(problem('expectation-failed', 'Only `Expect: 100-continue` is understood.'));
    response.writeHead(417, {
      'content-type': PROBLEM_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    response.end(body);
  });
  server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    writeRawProblem(socket, problem('method-not-allowed', 'CONNECT is not served here: this is not a proxy.'));
  });
}
