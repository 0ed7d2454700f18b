import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { z } from 'zod';
import { OutboundRefusedError, type OutboundPolicy } from '../outbound/outbound-policy.js';
import { defineHandler, JobFailure, type Handler } from './handler.js';

/** The most response body kept in a result; the rest is cut and `truncated` says so. */
const MAX_BODY_BYTES = 1_048_576;

/**
 * One outbound HTTP request, made under the outbound rules (no private addresses unless OUTBOUND_ALLOW
 * lists them; redirects are not followed): a slow upstream endpoint becomes an async job without code.
 * The result is `{status, headers, body, truncated}` whatever the status; connection errors and
 * timeouts are retried, a refused address is not.
 */
export function createHttpHandler(policy: OutboundPolicy): Handler {
  return defineHandler({
    type: 'http',
    input: z
      .object({
        method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
        url: z.url({ protocol: /^https?$/ }),
        headers: z.record(z.string(), z.string()).optional(),
        body: z.union([z.string(), z.json()]).optional().describe('A string is sent as is; anything else as JSON'),
        timeout_s: z.number().positive().max(300).default(30),
      })
      .strict(),
    timeout_s: 330,
    async run(input, ctx) {
      const url = new URL(input.url);
      const body = input.body === undefined ? undefined : typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
      const headers: Record<string, string> = { ...input.headers };
      if (body !== undefined && typeof input.body !== 'string' && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
        headers['content-type'] = 'application/json';
      }
      try {
        return await send(url, input.method, headers, body, input.timeout_s * 1000, policy, ctx.signal);
      } catch (error) {
        if (error instanceof OutboundRefusedError) throw new JobFailure(error.message, { code: 'outbound-refused', retryable: false });
        if (ctx.signal.aborted) throw error;
        throw new JobFailure(`request to ${url.host} failed: ${(error as Error).message}`, { code: 'http-error' });
      }
    },
  });
}

interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  truncated: boolean;
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
  policy: OutboundPolicy,
  signal: AbortSignal,
): Promise<HttpResult> {
  // An address given literally skips the lookup: it is checked here, before any connection.
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  const refusal = isIP(literal) !== 0 ? policy.refusal(url.hostname, literal) : undefined;
  if (refusal) return Promise.reject(new OutboundRefusedError(refusal));
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method, headers, lookup: policy.lookupFor(url.hostname), signal, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        response.on('data', (chunk: Buffer) => {
          if (size >= MAX_BODY_BYTES) {
            truncated = true;
            return;
          }
          chunks.push(chunk.subarray(0, MAX_BODY_BYTES - size));
          truncated ||= chunk.length > MAX_BODY_BYTES - size;
          size += Math.min(chunk.length, MAX_BODY_BYTES - size);
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8'), truncated }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(body);
  });
}
