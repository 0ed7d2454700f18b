import { isUtf8 } from 'node:buffer';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { HttpProblem, problem, StoreUnavailableError, type FieldError, type Problem } from '../errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

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
    return [{ pointer: inBody ? base || '/' : base.replace(/^\//, '').split('/')[0] || context, detail: issue.message }];
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
    void defaultJsonParser(request, buffer.toString('utf8'), done);
  });

  app.setErrorHandler((error: FastifyError | HttpProblem | StoreUnavailableError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof HttpProblem) {
      return sendProblem(reply, error.toProblem(), error.options.headers);
    }
    if (error instanceof StoreUnavailableError) {
      request.log.warn({ err: error }, 'store unavailable');
      return sendProblem(reply, problem('store-unavailable', 'The job store cannot be reached right now; retry shortly.'), {
        'retry-after': String(STORE_RETRY_AFTER_S),
      });
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const context = error.validationContext ?? 'body';
      const errors = fieldErrors(error.validation as unknown as ValidationIssue[], context);
      if (context === 'body') {
        return sendProblem(reply, problem('validation-failed', `The request body has ${errors.length} invalid field(s).`, errors));
      }
      const where = context === 'querystring' ? 'query parameter' : context === 'params' ? 'path parameter' : 'header';
      return sendProblem(reply, problem('bad-request', `Invalid ${where}: ${errors.map((e) => e.pointer).join(', ')}.`, errors));
    }
    const status = error.statusCode ?? 500;
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
      return sendProblem(reply, problem('payload-too-large', 'The request body is larger than the limit (BODY_LIMIT_BYTES).'));
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
      return sendProblem(reply, problem('unsupported-media-type', `Content-Type ${request.headers['content-type'] ?? '(none)'} is not supported; send application/json.`));
    }
    if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (error instanceof SyntaxError && error.statusCode === 400)) {
      return sendProblem(reply, problem('malformed-json', `The request body is not valid JSON: ${error.message}`));
    }
    if (status === 503 && error.code === 'FST_ERR_SERVER_CLOSING') {
      return sendProblem(reply, problem('shutting-down', 'This instance is shutting down.'), { 'retry-after': '1' });
    }
    if (status >= 400 && status < 500) {
      return sendProblem(reply, problem('bad-request', error.message));
    }
    request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, problem('internal-error', `Something went wrong on our side (request id ${request.id}).`));
  });

  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, problem('not-found', `No route ${request.method} ${request.url.split('?')[0]}.`));
  });
}

/** Fastify answers some errors (bad URL encoding, …) before routing; this keeps them problem+json too. */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  sendProblem(reply, problem('bad-request', error.message));
}
