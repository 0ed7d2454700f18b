import { setTimeout as sleepFor } from 'node:timers/promises';
import { z } from 'zod';
import { defineHandler, JobFailure } from './handler.js';

/**
 * Sleeps `ms` in `steps` steps, reporting progress after each, and fails (retryably) on its first
 * `fail_times` attempts: a stand-in for slow work, for trying retries, progress, cancel and timeouts.
 */
export default defineHandler({
  type: 'sleep',
  input: z
    .object({
      ms: z.number().int().min(0).max(3_600_000),
      steps: z.number().int().min(1).max(1000).default(10),
      fail_times: z.number().int().min(0).default(0),
    })
    .strict(),
  async run(input, ctx) {
    const stepMs = input.ms / input.steps;
    for (let step = 1; step <= input.steps; step++) {
      await sleepFor(stepMs, undefined, { signal: ctx.signal });
      ctx.progress((step / input.steps) * 100, { step: 'sleeping', message: `step ${step}/${input.steps}` });
    }
    if (ctx.attempt <= input.fail_times) {
      throw new JobFailure(`failing on purpose: attempt ${ctx.attempt} of the first ${input.fail_times}`, {
        code: 'planned-failure',
      });
    }
    return { slept_ms: input.ms, attempt: ctx.attempt };
  },
});
