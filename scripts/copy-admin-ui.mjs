// tsc does not copy non-TS files; the dashboard's static files (page, scripts, styles) are served from beside the compiled routes.
// Type declarations (format.d.ts, for the tests that import format.js) are not part of the page.
import { cpSync } from 'node:fs';
cpSync(new URL('../src/admin-ui', import.meta.url), new URL('../dist/admin-ui', import.meta.url), { recursive: true, filter: (source) => !source.endsWith('.d.ts') });
