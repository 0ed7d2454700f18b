import { createHmac } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';

/** Why `value` is not a Standard Webhooks secret (`whsec_` + base64 of at least 16 bytes), or undefined. */
export function webhookSecretProblem(value: string): string | undefined {
  if (!value.startsWith(SECRET_PREFIX)) return 'each secret must start with whsec_';
  const encoded = value.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || Buffer.from(encoded, 'base64').length < 16) {
    return 'each secret must be whsec_ followed by the base64 of at least 16 random bytes';
  }
  return undefined;
}

/**
 * Signs webhook requests as the Standard Webhooks spec says: `v1,` + base64 HMAC-SHA256 over
 * `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the secret's decoded bytes. With two secrets (a
 * rotation) both signatures are sent, space-separated, so receivers holding either one accept the request.
 */
export class WebhookSigner {
  private readonly keys: Buffer[];

  constructor(secrets: string[]) {
    this.keys = secrets.map((secret) => Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64'));
  }

  headers(id: string, timestampS: number, body: string): Record<string, string> {
    const signed = `${id}.${timestampS}.${body}`;
    const signatures = this.keys.map((key) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`);
    return { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': signatures.join(' ') };
  }
}
