import { z } from 'zod';
import { defineHandler } from './handler.js';

/** Returns its input: `{value}` → `{value}`. Handy to try the API and to measure the service itself. */
export default defineHandler({
  type: 'echo',
  input: z.object({ value: z.json().optional() }).strict(),
  async run(input) {
    return { value: input.value ?? null };
  },
});
