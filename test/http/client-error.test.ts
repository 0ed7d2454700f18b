import { describe, expect, it } from 'vitest';
import { problemCatalog } from '../../src/errors.js';
import { clientErrorProblem } from '../../src/http/client-error.js';

/* What a request Node's HTTP parser refuses is answered with (the wiring is tested end to end in test/e2e/http-refusals.test.ts). */

describe('clientErrorProblem', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, 'headers-too-large'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'request-timeout'],
    ['HPE_INVALID_METHOD', 400, 'malformed-request'],
    ['HPE_INVALID_HEADER_TOKEN', 400, 'malformed-request'],
    ['HPE_SOMETHING_NEW', 400, 'malformed-request'],
  ])('%s → %i %s', (code, status, problemCode) => {
    const problem = clientErrorProblem({ code });
    expect(problem).toMatchObject({ status, code: problemCode, type: `/problems/${problemCode}` });
    expect(problemCatalog[problem.code].status).toBe(status);
    expect(problem.detail.length).toBeGreaterThan(0);
  });
});
