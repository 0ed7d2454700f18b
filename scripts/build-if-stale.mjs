// `npm start` builds first when dist/ is missing or older than any source file, so a fresh clone needs no separate build step.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execSync } from 'node:child_process';

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const built = 'dist/server.js';
// The type declarations of the package's entries (`npm run typecheck:examples` checks the examples against them); a dist/ built before they were emitted lacks them.
const declarations = 'dist/handlers/handler.d.ts';
if (!existsSync(built) || !existsSync(declarations) || statSync(built).mtimeMs < newestMtime('src')) {
  console.error('[build] dist/ is missing or stale; building first (npm run build)…');
  execSync('npm run build', { stdio: ['inherit', 2, 2] }); // stdout stays clean for commands that write data to it (npm run jobs -- export --out -)
}
