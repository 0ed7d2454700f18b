// tsc does not copy non-TS files; the dashboard's static files (page, script, styles) are served from beside the compiled routes.
import { cpSync } from 'node:fs';
cpSync(new URL('../src/admin-ui', import.meta.url), new URL('../dist/admin-ui', import.meta.url), { recursive: true });
