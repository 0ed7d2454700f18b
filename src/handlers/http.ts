import { z } from 'zod';
import { OutboundRefusedError, type OutboundPolicy } from '../outbound/outbound-policy.js';
import { outboundRequest } from '../outbound/outbound-request.js';
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
      const body =
        input.body === undefined ? undefined : typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
      const headers: Record<string, string> = { ...input.headers };
      if (
        body !== undefined &&
        typeof input.body !== 'string' &&
        !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')
      ) {
        headers['content-type'] = 'application/json';
      }
      try {
        return await outboundRequest(
          url,
          {
            method: input.method,
            headers,
            body,
            timeoutMs: input.timeout_s * 1000,
            maxBodyBytes: MAX_BODY_BYTES,
            signal: ctx.signal,
          },
          policy,
        );
      } catch (error) {
        if (error instanceof OutboundRefusedError)
          throw new JobFailure(error.message, { code: 'outbound-refused', retryable: false });
        if (ctx.signal.aborted) throw error;
        throw new JobFailure(`request to ${url.host} failed: ${(error as Error).message}`, { code: 'http-error' });
      }
    },
  });
}
