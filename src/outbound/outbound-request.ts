import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { OutboundRefusedError, type OutboundPolicy } from './outbound-policy.js';

export interface OutboundRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Whole exchange, from connecting to the last byte of the answer. */
  timeoutMs: number;
  /** The most response body kept; the rest is read and dropped, and `truncated` says so. */
  maxBodyBytes: number;
  signal?: AbortSignal;
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  truncated: boolean;
}

/**
 * One HTTP request under the outbound rules: every address the host resolves to is checked at connect time
 * (OutboundRefusedError), and redirects are not followed (a 3xx is an answer like any other).
 */
export function outboundRequest(url: URL, options: OutboundRequest, policy: OutboundPolicy): Promise<OutboundResponse> {
  // An address given literally skips the lookup: it is checked here, before any connection.
  const refusal = policy.literalRefusal(url);
  if (refusal) return Promise.reject(new OutboundRefusedError(refusal));
  const { maxBodyBytes, timeoutMs } = options;
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const settle =
      <T>(fn: (value: T) => void) =>
      (value: T) => {
        clearTimeout(deadline);
        fn(value);
      };
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      {
        method: options.method,
        headers: options.headers,
        lookup: policy.lookupFor(url.hostname),
        signal: options.signal,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        response.on('data', (chunk: Buffer) => {
          if (size >= maxBodyBytes) {
            truncated = true;
            return;
          }
          chunks.push(chunk.subarray(0, maxBodyBytes - size));
          truncated ||= chunk.length > maxBodyBytes - size;
          size += Math.min(chunk.length, maxBodyBytes - size);
        });
        response.on('end', () =>
          settle(resolve)({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            truncated,
          }),
        );
        response.on('error', settle(reject));
      },
    );
    request.on('error', settle(reject));
    request.end(options.body);
  });
}
