import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { adminSearchFilter } from '../search/job-search.js';
import { pagingQuery } from './schemas.js';

/**
 * GET /admin/jobs: paging, and the search filters as plain strings, described as in adminSearchFilter (the
 * handler parses them with it, after filterFromQuery turned `metadata.<key>` parameters into `metadata`).
 */
export const adminJobsQuery = z
  .object({
    ...pagingQuery,
    ...Object.fromEntries(
      Object.entries(adminSearchFilter.shape)
        .filter(([name]) => name !== 'metadata')
        .map(([name, schema]) => [name, z.string().optional().describe(schema.description!)]),
    ),
  })
  .catchall(z.string().describe('`metadata.<key>=<value>`: jobs whose metadata has that pair'));

/**
 * The filter from a query string: `metadata.<key>=<value>` parameters become `metadata`; any other name the
 * filter does not know is refused, naming it.
 */
export function filterFromQuery(query: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (name.startsWith('metadata.') && name.length > 'metadata.'.length && typeof value === 'string')
      metadata[name.slice('metadata.'.length)] = value;
    else if (known.includes(name)) filter[name] = value;
    else {
      throw new HttpProblem('bad-request', `Unknown query parameter: ${name}.`, {
        errors: [{ pointer: name, detail: 'not a search filter' }],
      });
    }
  }
  if (Object.keys(metadata).length > 0) filter.metadata = metadata;
  return filter;
}
