import { afterEach, describe, expect, it } from 'vitest';
import { expectProblem, harnessScope, parseJob } from './helpers.js';

const scope = harnessScope();
afterEach(() => scope.closeAll());

describe('rate limits (RATE_LIMIT_PER_MIN)', () => {
  it('answers 429 problem+json with Retry-After over the limit, and says the budget on every answer', async () => {
    const { app } = await scope.open({ rateLimitPerMin: 3 });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await app.inject({ method: 'GET', url: '/v1/jobs' }));
    expect(answers.slice(0, 3).map((answer) => answer.statusCode)).toEqual([200, 200, 200]);
    expect(answers[0]!.headers['ratelimit-policy']).toBe('3;w=60');
    expect(answers[1]!.headers.ratelimit).toMatch(/^limit=3, remaining=1, reset=\d+$/);
    const refused = expectProblem(answers[3]!, 429, 'rate-limited');
    expect(refused.detail).toContain('3 requests');
    expect(Number(answers[3]!.headers['retry-after'])).toBeGreaterThan(0);
    // Operators are not throttled by the API's budget.
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });

  it('counts conditional polls in a separate, ten times larger budget', async () => {
    const { app } = await scope.open({ rateLimitPerMin: 2 });
    const job = parseJob(await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } }));
    for (let i = 0; i < 15; i++) {
      const poll = await app.inject({
        method: 'GET',
        url: `/v1/jobs/${job.id}`,
        headers: { 'if-none-match': `"v${job.version}"` },
      });
      expect(poll.statusCode).toBe(304);
    }
    expect((await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).statusCode).toBe(200);
    expectProblem(await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` }), 429, 'rate-limited');
  });
});

describe('active jobs per tenant (MAX_ACTIVE_JOBS_PER_TENANT)', () => {
  it('answers 429 too-many-active-jobs with Retry-After over the limit, storing nothing, and accepts again once jobs finish', async () => {
    const { app } = await scope.open({ maxActiveJobsPerTenant: 2 });
    const first = parseJob(await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } }));
    await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } });
    const refused = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } });
    expectProblem(refused, 429, 'too-many-active-jobs');
    expect(refused.headers['retry-after']).toBe('5');
    expect((await app.inject({ method: 'GET', url: '/v1/jobs' })).json<{ data: unknown[] }>().data).toHaveLength(2);
    await app.inject({ method: 'POST', url: `/v1/jobs/${first.id}/cancel` });
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'echo' } })).statusCode).toBe(202);
  });
});
