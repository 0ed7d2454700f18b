import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  payload: { type: string; timestamp: string; data: { id: string; status: string; [field: string]: unknown } };
  /** The status this receiver answered with. */
  answered: number;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedWebhook[];
  /** Answers the next requests with these statuses, in order; 204 once they are used up. */
  answerWith(...statuses: number[]): void;
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1, as a customer would run one: it records every request. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const answers: number[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answered = answers.shift() ?? 204;
      received.push({
        headers: request.headers,
        body,
        payload: JSON.parse(body) as ReceivedWebhook['payload'],
        answered,
      });
      response.statusCode = answered;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/jobs`,
    received,
    answerWith: (...statuses) => answers.push(...statuses),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Verifies a request the way the Standard Webhooks spec tells receivers to: HMAC-SHA256 over
 * `id.timestamp.body` with the secret's base64-decoded bytes, matched against any `v1,` signature.
 */
export function verifyStandardWebhook(secret: string, request: ReceivedWebhook): boolean {
  const id = request.headers['webhook-id'];
  const timestamp = request.headers['webhook-timestamp'];
  const signatures = request.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${request.body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',');
    const given = Buffer.from(signature ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export const newWebhookSecret = (): string =>
  `whsec_${Buffer.from(Array.from({ length: 24 }, () => Math.floor(Math.random() * 256))).toString('base64')}`;
