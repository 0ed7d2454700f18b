import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_UI_CSP } from '../../src/routes/admin-ui.js';
import { harnessScope } from '../routes/helpers.js';

/*
 * The dashboard is native ES modules served as they are: index.html loads app.js, which imports the rest.
 * A module the page imports but the server does not serve (src/routes/admin-ui.ts serves an allow-list)
 * answers 404 and the page never starts, so these tests follow every import from index.html over HTTP.
 */

const scope = harnessScope();
afterEach(() => scope.closeAll());

const SOURCE = new URL('../../src/admin-ui/', import.meta.url);
const ASSETS = '/admin/ui/assets/';

/** The modules a module's source imports (static `import … from`, `export … from`, and `import()`), as written. */
function importsOf(source: string): string[] {
  // TypeScript's own scanner: it skips comments, so the JSDoc `@import` of types (no request at run time) is not counted.
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

/** Every .js file under src/admin-ui, as a path relative to it ("app.js", "views/jobs.js"). */
function sourceModules(dir = SOURCE, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory()) return sourceModules(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`);
    return entry.name.endsWith('.js') ? [`${prefix}${entry.name}`] : [];
  });
}

describe("the dashboard's modules", () => {
  it('every module the page imports, from index.html on, is served as JavaScript with the CSP; every module in src/admin-ui is one of them', async () => {
    const { app } = await scope.open();
    const page = await app.inject({ method: 'GET', url: '/admin/ui' });
    expect(page.statusCode).toBe(200);
    const entries = [...page.body.matchAll(/<script type="module" src="([^"]+)"><\/script>/g)].map(
      (match) => match[1]!,
    );
    expect(entries).toEqual([`${ASSETS}app.js`]);

    const seen = new Set<string>();
    const queue = [...entries];
    while (queue.length > 0) {
      const url = queue.shift()!;
      if (seen.has(url)) continue;
      seen.add(url);
      const response = await app.inject({ method: 'GET', url });
      expect(
        response.statusCode,
        `${url} (imported by the page) must be served: add it to the allow-list in src/routes/admin-ui.ts`,
      ).toBe(200);
      expect(response.headers['content-type'], url).toBe('text/javascript; charset=utf-8');
      expect(response.headers['content-security-policy'], url).toBe(ADMIN_UI_CSP);
      expect(response.headers['x-content-type-options'], url).toBe('nosniff');
      // Data reaches the page as text only.
      expect(response.body, url).not.toMatch(
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
      );
      for (const specifier of importsOf(response.body)) {
        // A browser resolves only full relative specifiers (no bare package names, no extension guessing).
        expect(specifier, `${url} imports ${specifier}`).toMatch(/^\.\.?\/.*\.js$/);
        const target = new URL(specifier, `http://dashboard${url}`).pathname;
        expect(target.startsWith(ASSETS), `${url} imports ${specifier}, outside ${ASSETS}`).toBe(true);
        queue.push(target);
      }
    }
    // Nothing in src/admin-ui is left unloaded (dead, or imported only where the test does not look).
    const served = [...seen].map((url) => url.slice(ASSETS.length)).sort();
    expect(served).toEqual(sourceModules().sort());
  });

  it('a module outside the allow-list is not served, nor are the type declarations and the tsconfig beside the modules', async () => {
    const { app } = await scope.open();
    for (const url of [
      'views/nope.js',
      'views/../tsconfig.json',
      'tsconfig.json',
      'api-types.d.ts',
      'views/',
      'views',
      '..%2F..%2Fpackage.json',
      'views/..%2Fformat.d.ts',
    ]) {
      expect((await app.inject({ method: 'GET', url: `${ASSETS}${url}` })).statusCode, url).toBe(404);
    }
  });

  it('each .d.ts beside a module declares exactly what the module exports (the Node tests and the browser modules read the .d.ts)', async () => {
    const declarations = readdirSync(SOURCE).filter(
      (name) => name.endsWith('.d.ts') && sourceModules().includes(name.replace(/\.d\.ts$/, '.js')),
    );
    expect(declarations.sort()).toEqual(['events.d.ts', 'filters.d.ts', 'format.d.ts', 'paths.d.ts']);
    for (const name of declarations) {
      const file = fileURLToPath(new URL(name, SOURCE));
      const declared = ts
        .createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022)
        .statements.filter(
          (statement) =>
            ts.canHaveModifiers(statement) &&
            ts.getModifiers(statement)?.some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword),
        )
        .flatMap((statement) => {
          if (ts.isFunctionDeclaration(statement)) return [statement.name!.text];
          if (ts.isVariableStatement(statement))
            return statement.declarationList.declarations.flatMap((declaration) =>
              ts.isIdentifier(declaration.name) ? [declaration.name.text] : [],
            );
          return []; // types and interfaces: nothing at run time
        });
      const exported = Object.keys((await import(new URL(name.replace(/\.d\.ts$/, '.js'), SOURCE).href)) as object);
      expect([...new Set(declared)].sort(), name).toEqual(exported.sort());
    }
  });
});
