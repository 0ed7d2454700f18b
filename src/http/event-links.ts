import { createHmac, timingSafeEqual } from 'node:crypto';
import { EVENT_LINK_TTL_MS } from '../config.js';

/**
 * Signed, short-lived, read-only links to a job's event stream. A browser's EventSource cannot send an
 * Authorization header, so with API keys the Job's `links.events` carries `?access=<token>`: the job id,
 * its tenant and an expiry, signed with HMAC-SHA256. The token opens that job's stream and nothing else.
 */
export class EventLinkSigner {
  constructor(
    private readonly secret: Buffer,
    private readonly ttlMs: number = EVENT_LINK_TTL_MS,
  ) {}

  link(jobId: string, tenant: string, now = Date.now()): string {
    const payload = `${jobId}.${tenant}.${now + this.ttlMs}`;
    return `/v1/jobs/${jobId}/events?access=${Buffer.from(payload).toString('base64url')}.${this.sign(payload)}`;
  }

  /** The tenant the token grants `jobId`'s stream to, or undefined when it is not valid for it (now). */
  verify(jobId: string, token: string, now = Date.now()): string | undefined {
    const [encoded, signature] = token.split('.');
    if (!encoded || !signature) return undefined;
    const payload = Buffer.from(encoded, 'base64url').toString('utf8');
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const [id, tenant, expires] = payload.split('.');
    if (id !== jobId || !tenant || !(Number(expires) > now)) return undefined;
    return tenant;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}
