import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { newWebhookSecret, startWebhookReceiver, verifyStandardWebhook } from '../helpers/webhook-receiver.js';
import { Api, randomPrefix, startService, useServiceCleanup } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/* Webhook deliveries live in Redis: a delivery whose retry was pending when its instance died is sent by the next one. */

useServiceCleanup();
const redis = useSpawnedRedis();

describe('webhook deliveries across a crash', () => {
  it('sends a pending retry after the instance was SIGKILLed and another started', { timeout: 40_000 }, async () => {
    const receiver = await startWebhookReceiver();
    try {
      receiver.answerWith(500);
      const secret = newWebhookSecret();
      const env = {
        REDIS_URL: redis.url,
        REDIS_REQUIRED: 'true',
        REDIS_KEY_PREFIX: randomPrefix('wh'),
        WEBHOOK_SECRET: secret,
        WEBHOOK_RETRY_BASE_S: '2',
        OUTBOUND_ALLOW: '127.0.0.1',
      };
      const first = await startService(env);
      const job = await Api.of(first).submit({ type: 'echo', input: { value: 1 }, webhook: { url: receiver.url } });
      await waitFor(() => receiver.received.length === 1, { intervalMs: 50, what: 'the first attempt' });
      // Its outcome (retry later) is recorded right after the answer; give it a moment, then kill.
      await Api.of(first).waitForJob(
        job.id,
        'a retry pending',
        (current) =>
          (current as { webhook?: { last_delivery?: { status: string } } }).webhook?.last_delivery?.status ===
          'retrying',
      );
      await first.kill('SIGKILL');

      const second = await startService(env);
      await waitFor(() => receiver.received.length === 2, {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: 'the retry from the second instance',
      });
      const [attempt1, attempt2] = receiver.received;
      expect(attempt2!.headers['webhook-id']).toBe(attempt1!.headers['webhook-id']);
      expect(verifyStandardWebhook(secret, attempt2!)).toBe(true);
      expect(attempt2!.payload).toMatchObject({ type: 'job.succeeded', data: { id: job.id, status: 'succeeded' } });
      const delivered = await Api.of(second).waitForJob(
        job.id,
        'delivered',
        (current) =>
          (current as { webhook?: { last_delivery?: { status: string } } }).webhook?.last_delivery?.status ===
          'delivered',
      );
      expect(
        (delivered as unknown as { webhook: { last_delivery: { attempts: number } } }).webhook.last_delivery.attempts,
      ).toBe(2);
    } finally {
      await receiver.close();
    }
  });
});
