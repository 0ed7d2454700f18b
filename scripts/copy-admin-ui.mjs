// tsc does not copy non-TS files; the dashboard's static files (page, modules, styles) are served from beside the compiled routes.
// Only what the page loads is copied: not the type declarations (format.d.ts and the others, for the type checker and the
// tests that import the pure modules) nor the tsconfig.json that type-checks the browser code.
import { cpSync, rmSync } from 'node:fs';
const target = new URL('../dist/admin-ui', import.meta.url);
// A module renamed or removed in src/admin-ui must not linger in dist.
rmSync(target, { recursive: true, force: true });
cpSync(new URL('../src/admin-ui', import.meta.url), target, {
  recursive: true,
  filter: (source) => !source.endsWith('.d.ts') && !source.endsWith('tsconfig.json'),
});
