import { describe, expect, it } from 'vitest';
import { useSpawnedRedis } from '../helpers/use-redis.js';
import { Api, randomPrefix, startService, useServiceCleanup, type LogLine } from './helpers.js';

/*
 * The log (pino JSON lines on stdout, LOG_LEVEL=info): request lines carry the request id, job lines
 * the job id, and credentials never reach it.
 */

useServiceCleanup();

const redis = useSpawnedRedis();

const ADMIN_TOKEN = 'e2e-admin-token-9f3c1a7b5d2e4068';
const WRONG_TOKEN = 'e2e-wrong-token-71c0d9e8a6b54f32';

describe('logs', () => {
  it(
    'tags request lines with reqId and job lines with jobId, and never logs an Authorization header',
    { timeout: 30_000 },
    async () => {
      const service = await startService({
        REDIS_URL: redis.url,
        REDIS_REQUIRED: 'true',
        REDIS_KEY_PREFIX: randomPrefix(),
        LOG_LEVEL: 'info',
        ADMIN_TOKEN,
        RETRY_BACKOFF_BASE_MS: '50',
        RETRY_BACKOFF_MAX_MS: '100',
      });
      const api = Api.of(service);

      // A request with our own request id: every line of that request carries it, and the response echoes it.
      const requestId = 'e2e-req-0001';
      const created = await api.request<{ id: string }>('POST', '/v1/jobs', {
        body: { type: 'sleep', input: { ms: 10, steps: 1, fail_times: 1 } },
        headers: { 'x-request-id': requestId },
      });
      expect(created.status).toBe(202);
      expect(created.headers.get('x-request-id')).toBe(requestId);
      const jobId = created.body.id;

      // The job fails its first attempt on purpose (a warn line from the worker), then succeeds.
      const done = await api.waitForJob(jobId, 'succeeded', (job) => job.done, 10_000);
      expect(done).toMatchObject({ status: 'succeeded', attempt: 2 });

      // Admin routes with a right and a wrong bearer token (and a Basic one).
      expect(
        (await api.request('GET', '/admin/stats', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status,
      ).toBe(200);
      expect(
        (await api.request('GET', '/admin/stats', { headers: { authorization: `Bearer ${WRONG_TOKEN}` } })).status,
      ).toBe(401);
      const basic = Buffer.from(`admin:${WRONG_TOKEN}`).toString('base64');
      expect((await api.request('GET', '/admin/jobs', { headers: { authorization: `Basic ${basic}` } })).status).toBe(
        401,
      );
      expect(
        (await api.request('GET', '/admin/jobs', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status,
      ).toBe(200);

      // A clean exit: all its output is in (the helper waits for stdout/stderr to close).
      expect(await service.kill('SIGTERM')).toEqual({ code: 0, signal: null });

      const lines = service.logs();
      const ofRequest = lines.filter((line) => line.reqId === requestId);
      expect(ofRequest.map((line) => line.msg)).toEqual(
        expect.arrayContaining(['incoming request', 'job created', 'request completed']),
      );
      expect(ofRequest.find((line) => line.msg === 'job created')).toMatchObject({ jobId, jobType: 'sleep' });
      // Every request line (fastify's in/out lines) has a reqId.
      const requestLines = lines.filter((line) => line.msg === 'incoming request' || line.msg === 'request completed');
      expect(requestLines.length).toBeGreaterThanOrEqual(10);
      for (const line of requestLines) expect(typeof line.reqId, JSON.stringify(line)).toBe('string');

      // The worker's lines about the job carry its id (and type and attempt).
      const ofJob = lines.filter((line: LogLine) => line.jobId === jobId && line.component === 'worker-pool');
      expect(ofJob.length, `no worker line with jobId ${jobId}`).toBeGreaterThanOrEqual(1);
      expect(ofJob[0]).toMatchObject({ jobId, jobType: 'sleep', attempt: 1, level: 40 });

      // No credential anywhere, in any form.
      const output = service.output();
      expect(output).not.toContain(ADMIN_TOKEN);
      expect(output).not.toContain(WRONG_TOKEN);
      expect(output).not.toContain(basic);
      expect(output.toLowerCase()).not.toContain('bearer');
    },
  );
});
