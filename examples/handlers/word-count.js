// @ts-check
// A job type in its own module, loaded at start-up: HANDLER_MODULES=/path/to/word-count.js
// Plain JS (ESM) that TypeScript checks against the package's declarations (// @ts-check); in the service's repository `npm run typecheck` does.
import { setTimeout as pause } from 'node:timers/promises';
import { defineHandler, JobFailure, z } from 'async-job-service/handler';

/**
 * Adds the words of `lines` to `counts`; returns how many it added.
 * @param {string[]} lines
 * @param {Map<string, number>} counts
 */
function countWords(lines, counts) {
  let added = 0;
  for (const line of lines) {
    for (const word of line.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) {
      counts.set(word, (counts.get(word) ?? 0) + 1);
      added++;
    }
  }
  return added;
}

export default defineHandler({
  type: 'word-count',
  input: z.object({
    text: z.string().min(1).max(1_000_000),
    top: z.number().int().min(1).max(100).default(10).describe('how many of the most frequent words to return'),
    lines_per_step: z.number().int().min(1).default(1000).describe('lines counted between two progress reports'),
    pause_ms: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(0)
      .describe('pause after each step, e.g. to watch the progress or try a cancel'),
  }),
  timeout_s: 600,
  max_attempts: 2,

  async run(input, ctx) {
    const lines = input.text.split('\n');
    const steps = Math.ceil(lines.length / input.lines_per_step);
    /** @type {Map<string, number>} */
    const counts = new Map();
    let words = 0;
    try {
      for (let step = 0; step < steps; step++) {
        ctx.signal.throwIfAborted(); // cancel, timeout or shutdown: stop between steps
        const end = Math.min(lines.length, (step + 1) * input.lines_per_step);
        words += countWords(lines.slice(step * input.lines_per_step, end), counts);
        ctx.progress(Math.floor((end / lines.length) * 100), {
          step: 'counting',
          message: `line ${end}/${lines.length}`,
        });
        if (input.pause_ms > 0 && end < lines.length) await pause(input.pause_ms, undefined, { signal: ctx.signal });
      }
    } catch (error) {
      if (ctx.signal.aborted) ctx.log.info({ reason: ctx.signal.reason, words }, 'word count stopped');
      throw error;
    }
    if (words === 0) throw new JobFailure('the text has no words', { code: 'no-words', retryable: false });

    const top = [...counts]
      .sort(([wordA, countA], [wordB, countB]) => countB - countA || (wordA < wordB ? -1 : 1))
      .slice(0, input.top);
    ctx.progress(100, { step: 'done', message: `${words} words, ${counts.size} distinct` });
    ctx.log.info({ words, distinct: counts.size }, 'word count done');
    return { words, lines: lines.length, distinct: counts.size, top: top.map(([word, count]) => ({ word, count })) };
  },
});
