import { pino } from 'pino';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { OutboundPolicy } from '../../src/outbound/outbound-policy.js';
import { RedisJobStore } from '../../src/store/redis-job-store.js';
import type { JobStore } from '../../src/store/job-store.js';
import { MemoryJobStore } from '../../src/store/memory-job-store.js';
import { WebhookDispatcher } from '../../src/webhooks/webhook-dispatcher.js';
import { WebhookSigner } from '../../src/webhooks/webhook-signer.js';
import {
  newWebhookSecret,
  startWebhookReceiver,
  verifyStandardWebhook,
  type WebhookReceiver,
} from '../helpers/webhook-receiver.js';
import { createJob, expectProblem, harnessScope, waitForStatus, getJob, type Harness } from '../routes/helpers.js';
import { waitFor } from '../helpers/wait-for.js';
import { randomBytes } from 'node:crypto';

/*
 * Webhooks end to end inside one process: the real worker pool and dispatcher, a receiver on 127.0.0.1
 * that checks signatures as a customer would, against the memory store and Redis.
 */

const harnesses = harnessScope();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await harnesses.closeAll();
});

interface Setup {
  harness: Harness;
  receiver: WebhookReceiver;
  secrets: string[];
}

async function setUp(
  makeStore: () => Promise<JobStore>,
  options: { secrets?: string[]; allow?: string[]; retryBaseMs?: number } = {},
): Promise<Setup> {
  const secrets = options.secrets ?? [newWebhookSecret()];
  const receiver = await startWebhookReceiver();
  cleanups.push(() => receiver.close());
  const policy = new OutboundPolicy(options.allow ?? ['127.0.0.1']);
  const store = await makeStore();
  const harness = await harnesses.open({ workers: true, store, webhookPolicy: policy });
  const dispatcher = new WebhookDispatcher({
    store,
    signer: new WebhookSigner(secrets),
    policy,
    log: pino({ level: 'silent' }),
    retryBaseMs: options.retryBaseMs ?? 50,
    timeoutMs: 2000,
  });
  await dispatcher.start();
  cleanups.push(() => dispatcher.stop(1000));
  return { harness, receiver, secrets };
}

/**
 * Follows the webhook dispatcher's store calls on `store`: `toldNothingDueAfter(n)` holds once a fetch of due
 * deliveries that began after the n-th delivery outcome was recorded answered that nothing is due, now or later.
 */
function followDeliveryCalls(store: JobStore): { toldNothingDueAfter(outcomes: number): boolean } {
  let outcomes = 0;
  let quietAfter = -1;
  const settle = store.settleWebhookDelivery.bind(store);
  vi.spyOn(store, 'settleWebhookDelivery').mockImplementation(async (...args) => {
    await settle(...args);
    outcomes++;
  });
  const claim = store.claimWebhookDeliveries.bind(store);
  vi.spyOn(store, 'claimWebhookDeliveries').mockImplementation(async (...args) => {
    const before = outcomes;
    const answer = await claim(...args);
    if (answer.deliveries.length === 0 && answer.nextDueAt === null) quietAfter = Math.max(quietAfter, before);
    return answer;
  });
  return { toldNothingDueAfter: (count) => quietAfter >= count };
}

const stores: [string, () => Promise<JobStore>][] = [
  ['memory', async () => new MemoryJobStore({ jobTtlMs: 60_000 })],
  [
    'redis',
    async () =>
      RedisJobStore.connect({
        url: inject('redisUrl'),
        keyPrefix: `wh-${randomBytes(4).toString('hex')}`,
        jobTtlMs: 60_000,
        connectTimeoutMs: 2000,
        commandTimeoutMs: 2000,
      }),
  ],
];

describe.each(stores)('webhooks (%s store)', (_name, makeStore) => {
  it('POSTs the terminal event, signed as Standard Webhooks says, and the job shows it delivered', async () => {
    const { harness, receiver, secrets } = await setUp(makeStore);
    const job = await createJob(harness.app, { type: 'echo', input: { value: 7 }, webhook: { url: receiver.url } });
    expect(job.webhook).toEqual({
      url: receiver.url,
      events: ['job.succeeded', 'job.failed', 'job.canceled'],
      last_delivery: null,
    });
    await waitFor(() => receiver.received.length === 1, { what: 'the webhook' });
    const [request] = receiver.received;
    expect(verifyStandardWebhook(secrets[0]!, request!)).toBe(true);
    expect(verifyStandardWebhook(newWebhookSecret(), request!)).toBe(false);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.payload.type).toBe('job.succeeded');
    expect(request!.payload.data).toMatchObject({ id: job.id, status: 'succeeded', result: { value: 7 } });
    expect(request!.headers['webhook-id']).toBe(`${job.id}:${request!.payload.data.version as number}`);
    const shown = await waitFor(async () => {
      const current = await getJob(harness.app, job.id);
      return current.webhook?.last_delivery?.status === 'delivered' ? current : undefined;
    });
    expect(shown.webhook!.last_delivery).toMatchObject({
      event: 'job.succeeded',
      attempts: 1,
      response_status: 204,
      error: null,
      next_attempt_at: null,
    });
  });

  it('retries after a 500 with the same webhook-id, and shows the retry while it waits', async () => {
    const { harness, receiver, secrets } = await setUp(makeStore, { retryBaseMs: 400 });
    receiver.answerWith(500);
    const job = await createJob(harness.app, { type: 'echo', input: { value: 1 }, webhook: { url: receiver.url } });
    await waitFor(() => receiver.received.length === 1, { what: 'the first attempt' });
    const waiting = await waitFor(async () => {
      const current = await getJob(harness.app, job.id);
      return current.webhook?.last_delivery?.status === 'retrying' ? current : undefined;
    });
    expect(waiting.webhook!.last_delivery).toMatchObject({
      attempts: 1,
      response_status: 500,
      error: 'the receiver answered 500',
    });
    expect(Date.parse(waiting.webhook!.last_delivery!.next_attempt_at!)).toBeGreaterThan(Date.now() - 400);
    await waitFor(() => receiver.received.length === 2, { what: 'the retry' });
    const [first, second] = receiver.received;
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(second!.body).toBe(first!.body);
    expect(verifyStandardWebhook(secrets[0]!, second!)).toBe(true);
    await waitFor(async () => (await getJob(harness.app, job.id)).webhook?.last_delivery?.status === 'delivered', {
      what: 'delivered',
    });
    expect((await getJob(harness.app, job.id)).webhook!.last_delivery!.attempts).toBe(2);
  });

  it('sends the events asked for, in order: started, progress, succeeded', async () => {
    const { harness, receiver } = await setUp(makeStore);
    const job = await createJob(harness.app, {
      type: 'sleep',
      input: { ms: 100 },
      webhook: { url: receiver.url, events: ['job.succeeded', 'job.started', 'job.progress'] },
    });
    expect(job.webhook!.events).toEqual(['job.started', 'job.progress', 'job.succeeded']);
    await waitFor(() => receiver.received.some((request) => request.payload.type === 'job.succeeded'), {
      what: 'job.succeeded',
    });
    const types = receiver.received.map((request) => request.payload.type);
    expect(types[0]).toBe('job.started');
    expect(types.at(-1)).toBe('job.succeeded');
    expect(types.filter((type) => type === 'job.progress').length).toBeLessThanOrEqual(1);
    expect(receiver.received[0]!.payload.data).toMatchObject({ status: 'running', attempt: 1 });
    expect(new Set(receiver.received.map((request) => request.headers['webhook-id'])).size).toBe(
      receiver.received.length,
    );
  });

  it('signs with both secrets during a rotation', async () => {
    const secrets = [newWebhookSecret(), newWebhookSecret()];
    const { harness, receiver } = await setUp(makeStore, { secrets });
    await createJob(harness.app, { type: 'echo', input: {}, webhook: { url: receiver.url } });
    await waitFor(() => receiver.received.length === 1, { what: 'the webhook' });
    const [request] = receiver.received;
    expect(String(request!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifyStandardWebhook(secrets[0]!, request!)).toBe(true);
    expect(verifyStandardWebhook(secrets[1]!, request!)).toBe(true);
  });

  it('gives up at once on a 410 Gone', async () => {
    const { harness, receiver } = await setUp(makeStore);
    const dispatcherCalls = followDeliveryCalls(harness.store);
    receiver.answerWith(410);
    const job = await createJob(harness.app, { type: 'echo', input: {}, webhook: { url: receiver.url } });
    const failed = await waitFor(async () => {
      const current = await getJob(harness.app, job.id);
      return current.webhook?.last_delivery?.status === 'failed' ? current : undefined;
    });
    expect(failed.webhook!.last_delivery).toMatchObject({ attempts: 1, response_status: 410, next_attempt_at: null });
    // The dispatcher had its chance to send again: after the outcome was recorded it asked the store for deliveries
    // and heard that none is due, now or later.
    await waitFor(() => dispatcherCalls.toldNothingDueAfter(1), {
      what: 'the dispatcher to hear that nothing more is due',
    });
    expect(receiver.received).toHaveLength(1);
  });
});

describe('webhook URLs and configuration', () => {
  it('refuses a webhook when the service has no WEBHOOK_SECRET, naming the field', async () => {
    const { app } = await harnesses.open();
    const response = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo', input: {}, webhook: { url: 'https://example.com/hook' } },
    });
    const problem = expectProblem(response, 422, 'validation-failed');
    expect(problem.errors).toEqual([{ pointer: '/webhook', detail: 'webhooks are not configured on this service' }]);
  });

  it('refuses loopback, private and metadata addresses given literally (SSRF), and bad URLs and events', async () => {
    const { app } = await harnesses.open({ webhookPolicy: new OutboundPolicy([]) });
    for (const url of [
      'http://127.0.0.1:8080/hook',
      'http://10.1.2.3/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/hook',
    ]) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { type: 'echo', input: {}, webhook: { url } },
      });
      const problem = expectProblem(response, 422, 'validation-failed');
      expect(problem.errors![0]!.pointer).toBe('/webhook/url');
    }
    const ftp = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo', input: {}, webhook: { url: 'ftp://example.com/x' } },
    });
    expect(expectProblem(ftp, 422).errors![0]!.pointer).toBe('/webhook/url');
    const events = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { type: 'echo', input: {}, webhook: { url: 'https://example.com/x', events: ['job.exploded'] } },
    });
    expect(expectProblem(events, 422).errors![0]!.pointer).toMatch(/^\/webhook\/events/);
    const listed = await app.inject({ method: 'GET', url: '/v1/jobs' });
    expect(listed.json<{ data: unknown[] }>().data).toEqual([]); // nothing was stored
  });

  it('refuses at connect time a host name that resolves to a loopback address, and gives up on it', async () => {
    const { harness, receiver } = await setUp(async () => new MemoryJobStore({ jobTtlMs: 60_000 }), { allow: [] });
    const url = receiver.url.replace('127.0.0.1', 'localhost');
    const job = await createJob(harness.app, { type: 'echo', input: {}, webhook: { url } });
    await waitForStatus(harness.app, job.id, 'succeeded');
    const failed = await waitFor(async () => {
      const current = await getJob(harness.app, job.id);
      return current.webhook?.last_delivery?.status === 'failed' ? current : undefined;
    });
    expect(failed.webhook!.last_delivery!.error).toMatch(/localhost resolves to .*loopback/);
    expect(receiver.received).toEqual([]);
  });
});
