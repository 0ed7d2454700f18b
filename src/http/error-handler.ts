import { isUtf8 } from 'node:buffer';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import {
  HttpProblem,
  problem,
  problemCatalog,
  PROBLEM_CONTENT_TYPE,
  type FieldError,
  type Problem,
  type ProblemCode,
} from '../errors.js';
import { StoreUnavailableError } from '../store/job-store.js';
import { registerServerRefusals } from './client-error.js';
import { findTooDeep, MAX_JSON_DEPTH, tooDeepPointer } from './json-depth.js';

export { PROBLEM_CONTENT_TYPE };

/** Seconds a client should wait after a 503 from a store outage. */
const STORE_RETRY_AFTER_S = 2;

export function sendProblem(reply: FastifyReply, body: Problem, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(body.status).headers(headers).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** JSON Pointer of a path, escaped per RFC 6901. */
export function jsonPointer(path: readonly PropertyKey[]): string {
  return path.map((part) => `/${String(part).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

interface ValidationIssue {
  instancePath: string;
  message: string;
  keyword: string;
  params: { keys?: string[] };
}

/** Zod issues → field errors; an unknown key is named by its own pointer. */
function fieldErrors(issues: ValidationIssue[], context: string): FieldError[] {
  const inBody = context === 'body';
  return issues.flatMap((issue) => {
    const base = issue.instancePath === '/' ? '' : issue.instancePath;
    if (issue.keyword === 'unrecognized_keys' && issue.params.keys) {
      return issue.params.keys.map((key) => ({ pointer: inBody ? `${base}/${key}` : key, detail: 'unknown field' }));
    }
    return [
      { pointer: inBody ? base || '/' : base.replace(/^\//, '').split('/')[0] || context, detail: issue.message },
    ];
  });
}

/**
 * Every error leaves as application/problem+json. 5xx details stay in the log (with the request id);
 * clients get a safe message.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  // Reject invalid UTF-8 instead of letting the default parser replace it silently.
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers(); // only JSON bodies: anything else is a 415
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buffer = body as Buffer;
    // An empty body with a JSON content type (fetch with headers but no body) counts as no body.
    if (buffer.length === 0) {
      done(null, undefined);
      return;
    }
    if (!isUtf8(buffer)) {
      done(new HttpProblem('malformed-json', 'The request body is not valid UTF-8.'), undefined);
      return;
    }
    const text = buffer.toString('utf8');
    // Nesting is limited before parsing: nothing downstream (zod, canonical JSON, JSON.stringify) then meets a deep value.
    const tooDeep = findTooDeep(text, MAX_JSON_DEPTH);
    if (tooDeep) {
      const pointer = tooDeepPointer(tooDeep);
      done(
        new HttpProblem(
          'json-too-deep',
          `The JSON body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels (at ${pointer || 'the top'}).`,
          {
            errors: [{ pointer, detail: `nested deeper than ${MAX_JSON_DEPTH} levels` }],
          },
        ),
        undefined,
      );
      return;
    }
    void defaultJsonParser(request, text, done);
  });

  app.setErrorHandler(
    (error: FastifyError | HttpProblem | StoreUnavailableError, request: FastifyRequest, reply: FastifyReply) => {
      if (!(error instanceof Error)) {
        // Something threw a non-Error (a string, null): still our fault, still a problem document.
        request.log.error({ thrown: String(error) }, 'request failed with a non-Error');
        return sendProblem(
          reply,
          problem('internal-error', `Something went wrong on our side (request id ${request.id}).`),
        );
      }
      if (error instanceof HttpProblem) {
        return sendProblem(reply, error.toProblem(), error.options.headers);
      }
      if (error instanceof StoreUnavailableError) {
        request.log.warn({ err: error }, 'store unavailable');
        return sendProblem(
          reply,
          problem('store-unavailable', 'The job store cannot be reached right now; retry shortly.'),
          {
            'retry-after': String(STORE_RETRY_AFTER_S),
          },
        );
      }
      if (hasZodFastifySchemaValidationErrors(error)) {
        const context = error.validationContext ?? 'body';
        const errors = fieldErrors(error.validation as unknown as ValidationIssue[], context);
        if (context === 'body') {
          return sendProblem(
            reply,
            problem('validation-failed', `The request body has ${errors.length} invalid field(s).`, errors),
          );
        }
        const where =
          context === 'querystring' ? 'query parameter' : context === 'params' ? 'path parameter' : 'header';
        return sendProblem(
          reply,
          problem('bad-request', `Invalid ${where}: ${errors.map((e) => e.pointer).join(', ')}.`, errors),
        );
      }
      const status = error.statusCode ?? 500;
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
        return sendProblem(
          reply,
          problem('payload-too-large', 'The request body is larger than the limit (BODY_LIMIT_BYTES).'),
        );
      }
      if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
        return sendProblem(
          reply,
          problem(
            'unsupported-media-type',
            `Content-Type ${request.headers['content-type'] ?? '(none)'} is not supported; send application/json.`,
          ),
        );
      }
      if (
        error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
        (error instanceof SyntaxError && error.statusCode === 400)
      ) {
        return sendProblem(reply, problem('malformed-json', `The request body is not valid JSON: ${error.message}`));
      }
      if (status === 503 && error.code === 'FST_ERR_SERVER_CLOSING') {
        return sendProblem(reply, problem('shutting-down', 'This instance is shutting down.'), { 'retry-after': '1' });
      }
      if (status >= 400 && status < 500) {
        return sendProblem(reply, problem('bad-request', clip(error.message)));
      }
      request.log.error({ err: error }, 'request failed');
      return sendProblem(
        reply,
        problem('internal-error', `Something went wrong on our side (request id ${request.id}).`),
      );
    },
  );

  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, problem('not-found', `No route ${request.method} ${clip(request.url.split('?')[0] ?? '')}.`));
  });

  // The last line of defence: an error answer some plugin made itself (e.g. @fastify/cors refusing a
  // preflight with text/plain) still leaves as problem+json. Readiness answers keep their own health+json.
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode < 400) return payload;
    const type = String(reply.getHeader('content-type') ?? '');
    if (type.startsWith(PROBLEM_CONTENT_TYPE) || type.startsWith('application/health+json')) return payload;
    const body = stray(request, reply.statusCode);
    if (body.code !== 'invalid-preflight')
      request.log.warn(
        { statusCode: reply.statusCode, contentType: type },
        'an error answer that was not problem+json was replaced by one',
      );
    reply.removeHeader('content-length');
    reply.code(body.status).type(PROBLEM_CONTENT_TYPE);
    return JSON.stringify(body);
  });

  // An HTTP/1.1 request without Host: Node would answer a bare 400 itself; it is refused here instead, as a problem.
  (app.server as typeof app.server & { requireHostHeader: boolean }).requireHostHeader = false;
  app.addHook('onRequest', (request, reply, done) => {
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      sendProblem(
        reply.header('connection', 'close'),
        problem('bad-request', 'An HTTP/1.1 request needs a Host header.', [{ pointer: 'Host', detail: 'missing' }]),
      );
      return;
    }
    done();
  });

  registerServerRefusals(app.server);
}

/** Problem codes for error statuses some plugin answered without a problem document. */
const codeForStatus: Partial<Record<number, ProblemCode>> = {
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  408: 'request-timeout',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  417: 'expectation-failed',
  429: 'rate-limited',
  431: 'headers-too-large',
};

function stray(request: FastifyRequest, status: number): Problem {
  if (request.method === 'OPTIONS' && status === 400) {
    return problem(
      'invalid-preflight',
      'A CORS preflight (OPTIONS) needs both an Origin and an Access-Control-Request-Method header.',
    );
  }
  const code = codeForStatus[status] ?? (status < 500 ? 'bad-request' : 'internal-error');
  return code === 'internal-error'
    ? problem(code, `Something went wrong on our side (request id ${request.id}).`)
    : problem(code, problemCatalog[code].title);
}

/** A client's text in a detail: at most 200 characters. */
function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Fastify answers some errors (bad URL encoding, …) before routing; this keeps them problem+json too. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_BAD_URL') {
    sendProblem(
      reply,
      problem(
        'bad-request',
        'The URL path is not valid: a % not followed by two hex digits, or percent-encoded bytes that are not UTF-8.',
        [{ pointer: 'path', detail: 'bad percent-encoding' }],
      ),
    );
    return;
  }
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendProblem(
      reply,
      problem('bad-request', 'A path parameter is too long.', [
        { pointer: 'path', detail: 'a path parameter is too long' },
      ]),
    );
    return;
  }
  if ((error.statusCode ?? 500) >= 500) {
    request.log.error({ err: error }, 'request failed before routing');
    sendProblem(reply, problem('internal-error', `Something went wrong on our side (request id ${request.id}).`));
    return;
  }
  sendProblem(reply, problem('bad-request', clip(error.message)));
}
