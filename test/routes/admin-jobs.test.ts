import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { defineHandler, JobFailure } from '../../src/handlers/handler.js';
import { adminJobDetailSchema, adminJobListSchema } from '../../src/routes/schemas.js';
import { createJob, expectProblem, harnessScope, waitForStatus } from './helpers.js';
import { waitFor } from '../helpers/wait-for.js';

/* The operator's job API: search across tenants, one job's timeline and logs, and actions on one job. */

const scope = harnessScope();
afterEach(() => scope.closeAll());

type AdminList = z.infer<typeof adminJobListSchema>;
type AdminDetail = z.infer<typeof adminJobDetailSchema>;

const search = async (app: FastifyInstance, query: string): Promise<AdminList> => {
  const response = await app.inject({ method: 'GET', url: `/admin/jobs?${query}` });
  expect(response.statusCode, response.body).toBe(200);
  return adminJobListSchema.parse(response.json());
};
const ids = (list: AdminList) => list.data.map((job) => job.id).sort();

/** Fails with code `upstream-502` on its first attempt (logging a secret on the way), succeeds after. */
const flaky = defineHandler({
  type: 'flaky',
  input: z.object({ label: z.string() }).strict(),
  max_attempts: 2,
  async run(input, ctx) {
    ctx.log.info(
      { label: input.label, token: 'tok-1234567890', attempt: ctx.attempt },
      'calling upstream with Bearer abc.def.ghi',
    );
    if (ctx.attempt === 1) throw new JobFailure('upstream answered 502 Bad Gateway', { code: 'upstream-502' });
    ctx.log.warn('second time lucky: password=hunter2 was not needed');
    return { ok: input.label };
  },
});

describe('admin job search', () => {
  it('filters by status, type, error code or text, attempts, worker, metadata and finish time; and finds one id', async () => {
    const { app, pool } = await scope.open({ workers: true, extraHandlers: [flaky] });
    const before = new Date(Date.now() - 1).toISOString();
    const retried = await createJob(app, {
      type: 'flaky',
      input: { label: 'a' },
      metadata: { team: 'search', env: 'prod' },
    });
    const failing = await createJob(app, {
      type: 'sleep',
      input: { ms: 1, fail_times: 5 },
      max_attempts: 1,
      metadata: { team: 'ads' },
    });
    const plain = await createJob(app, { type: 'echo', input: { value: 1 }, metadata: { team: 'search', env: 'dev' } });
    await waitForStatus(app, retried.id, 'succeeded');
    await waitForStatus(app, failing.id, 'failed');
    await waitForStatus(app, plain.id, 'succeeded');

    expect(ids(await search(app, 'status=failed'))).toEqual([failing.id]);
    expect(ids(await search(app, 'type=flaky'))).toEqual([retried.id]);
    expect(ids(await search(app, 'error=planned-failure'))).toEqual([failing.id]);
    expect(ids(await search(app, 'error=upstream-502'))).toEqual([]); // the retried job's error went when it succeeded
    expect(ids(await search(app, 'min_attempts=2'))).toEqual([retried.id]);
    expect(ids(await search(app, `worker=${pool!.workerId}`))).toEqual([retried.id, failing.id, plain.id].sort());
    expect(ids(await search(app, 'worker=someone-else'))).toEqual([]);
    expect(ids(await search(app, 'metadata.team=search'))).toEqual([retried.id, plain.id].sort());
    expect(ids(await search(app, 'metadata.team=search&metadata.env=prod'))).toEqual([retried.id]);
    expect(ids(await search(app, `finished_after=${encodeURIComponent(before)}&status=succeeded`))).toEqual(
      [retried.id, plain.id].sort(),
    );
    expect(ids(await search(app, `finished_before=${encodeURIComponent(before)}`))).toEqual([]);
    expect(ids(await search(app, `id=${plain.id}`))).toEqual([plain.id]);
    expect(ids(await search(app, `id=${plain.id}&status=failed`))).toEqual([]);
    expect(ids(await search(app, 'tenant=-&type=echo'))).toEqual([plain.id]);
    const item = (await search(app, `id=${retried.id}`)).data[0]!;
    expect(item).toMatchObject({ tenant: '-', worker_id: pool!.workerId, attempt: 2 });
  });

  it('matches an error by its message text, case-insensitively', async () => {
    const { app } = await scope.open({ workers: true, extraHandlers: [flaky] });
    const failing = await createJob(app, { type: 'sleep', input: { ms: 1, fail_times: 5 }, max_attempts: 1 });
    await waitForStatus(app, failing.id, 'failed');
    const message = (await search(app, `id=${failing.id}`)).data[0]!.error!.detail;
    const fragment = message.slice(2, 12).toUpperCase();
    expect(ids(await search(app, `error=${encodeURIComponent(fragment)}`))).toEqual([failing.id]);
  });

  it('pages a sparse filter by cursor without losing or repeating jobs', async () => {
    const { app } = await scope.open();
    const created = [];
    for (let i = 0; i < 7; i++)
      created.push(await createJob(app, { type: 'echo', input: { value: i }, metadata: { odd: String(i % 2) } }));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: AdminList = await search(app, `metadata.odd=1&limit=2&order=asc${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.data.map((job) => job.id));
      cursor = page.next_cursor;
    } while (cursor);
    // Ascending by id, each once. (Not necessarily in creation order: jobs created within one millisecond
    // share their id's time part, and its random part orders them.)
    expect(seen).toEqual(
      created
        .filter((_, i) => i % 2 === 1)
        .map((job) => job.id)
        .sort(),
    );
  });

  it('refuses an unknown parameter or a bad value, naming it', async () => {
    const { app } = await scope.open();
    expect(
      expectProblem(await app.inject({ method: 'GET', url: '/admin/jobs?colour=red' }), 400, 'bad-request').detail,
    ).toMatch(/colour/);
    expect(
      expectProblem(await app.inject({ method: 'GET', url: '/admin/jobs?min_attempts=many' }), 400, 'bad-request')
        .detail,
    ).toMatch(/min_attempts/);
    expect(
      expectProblem(await app.inject({ method: 'GET', url: '/admin/jobs?status=sleeping' }), 400, 'bad-request').detail,
    ).toMatch(/status/);
  });
});

describe('admin job detail and actions', () => {
  it('shows every attempt with worker, times, outcome and error, and the log lines with secrets masked', async () => {
    const { app, pool } = await scope.open({ workers: true, extraHandlers: [flaky] });
    const job = await createJob(app, { type: 'flaky', input: { label: 'x' } });
    await waitForStatus(app, job.id, 'succeeded');
    const detail = await waitFor(
      async () => {
        const response = await app.inject({ method: 'GET', url: `/admin/jobs/${job.id}` });
        const parsed: AdminDetail = adminJobDetailSchema.parse(response.json());
        return parsed.logs.length === 3 ? parsed : undefined;
      },
      { what: 'three log lines' },
    );
    expect(detail.attempts).toHaveLength(2);
    expect(detail.attempts[0]).toMatchObject({
      attempt: 1,
      worker_id: pool!.workerId,
      outcome: 'retry',
      error: { code: 'upstream-502', message: 'upstream answered 502 Bad Gateway' },
    });
    expect(detail.attempts[0]!.error!.stack).toMatch(/JobFailure: upstream answered 502/);
    expect(detail.attempts[1]).toMatchObject({ attempt: 2, outcome: 'succeeded', error: null });
    expect(Date.parse(detail.attempts[1]!.ended_at)).toBeGreaterThanOrEqual(
      Date.parse(detail.attempts[1]!.started_at!),
    );
    expect(detail.logs.map((line) => [line.attempt, line.level])).toEqual([
      [1, 'info'],
      [2, 'info'],
      [2, 'warn'],
    ]);
    const text = detail.logs.map((line) => line.message).join('\n');
    expect(text).toContain('calling upstream with Bearer [redacted]');
    expect(text).toContain('"token":"[redacted]"');
    expect(text).toContain('"label":"x"');
    expect(text).toContain('password=[redacted]');
    expect(text).not.toMatch(/tok-1234567890|abc\.def\.ghi|hunter2/);
    // The public view carries neither the stack nor the logs.
    const publicJob = (await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).body;
    expect(publicJob).not.toMatch(/"stack"|"attempts"|"logs"/);
  });

  it('cancels, runs now, clones and deletes one job, answering 404 and 410 as the public API does', async () => {
    const { app } = await scope.open();
    const delayed = await createJob(app, { type: 'echo', input: { value: 1 }, delay_s: 3600, metadata: { team: 'x' } });
    const ran = await app.inject({ method: 'POST', url: `/admin/jobs/${delayed.id}/run-now` });
    expect(ran.statusCode, ran.body).toBe(200);
    expect(Date.parse(ran.json<{ run_at: string }>().run_at)).toBeLessThanOrEqual(Date.now());
    expectProblem(
      await app.inject({ method: 'POST', url: `/admin/jobs/${delayed.id}/run-now` }),
      409,
      'job-not-delayed',
    );

    const canceled = await app.inject({ method: 'POST', url: `/admin/jobs/${delayed.id}/cancel` });
    expect(canceled.statusCode).toBe(200);
    expect(canceled.json<{ status: string }>().status).toBe('canceled');

    const clone = await app.inject({ method: 'POST', url: `/admin/jobs/${delayed.id}/clone` });
    expect(clone.statusCode, clone.body).toBe(201);
    const copy = clone.json<{ id: string; status: string; input: unknown; metadata: Record<string, string> }>();
    expect(copy).toMatchObject({
      status: 'queued',
      input: { value: 1 },
      metadata: { team: 'x', cloned_from: delayed.id },
    });
    expect(clone.headers.location).toBe(`/admin/jobs/${copy.id}`);

    expect((await app.inject({ method: 'DELETE', url: `/admin/jobs/${delayed.id}` })).statusCode).toBe(204);
    expectProblem(await app.inject({ method: 'GET', url: `/admin/jobs/${delayed.id}` }), 410, 'job-gone');
    expectProblem(await app.inject({ method: 'DELETE', url: `/admin/jobs/${delayed.id}` }), 410, 'job-gone');
    expectProblem(
      await app.inject({ method: 'GET', url: '/admin/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV' }),
      404,
      'job-not-found',
    );
  });

  it('lets a viewer read a job but not act on it', async () => {
    const VIEWER = 'viewer-key-0123456789abcdef';
    const adminKeys = loadConfig({ ADMIN_KEYS: `${VIEWER}:viewer` }).ADMIN_KEYS!;
    const { app } = await scope.open({ adminKeys });
    const job = await createJob(app, { type: 'echo', delay_s: 60 });
    const as = { authorization: `Bearer ${VIEWER}` };
    expect((await app.inject({ method: 'GET', url: `/admin/jobs/${job.id}`, headers: as })).statusCode).toBe(200);
    for (const action of ['cancel', 'run-now', 'clone']) {
      expectProblem(
        await app.inject({ method: 'POST', url: `/admin/jobs/${job.id}/${action}`, headers: as }),
        403,
        'forbidden',
      );
    }
    expectProblem(await app.inject({ method: 'DELETE', url: `/admin/jobs/${job.id}`, headers: as }), 403, 'forbidden');
  });
});
