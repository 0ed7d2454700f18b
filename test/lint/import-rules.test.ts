import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { IConfiguration } from 'dependency-cruiser';
import { beforeAll, describe, expect, it } from 'vitest';

/*
 * The import rules (.dependency-cruiser.mjs) as `npm run lint` runs them: the same command line
 * (package.json's "lint:imports"), on src/ (no violation) and on test/fixtures/import-rules/src, a miniature
 * src/ that breaks every rule once beside imports the rules allow (each rule fires where expected, and only there).
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const depcruiseBin = fileURLToPath(
  new URL('../../node_modules/dependency-cruiser/bin/dependency-cruise.mjs', import.meta.url),
);
const fixture = 'test/fixtures/import-rules/src';

/** "depcruise src --config …": the arguments after the cruised folder. */
function lintImportsArgs(): { folder: string; options: string[] } {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const [command, folder, ...options] = pkg.scripts['lint:imports']!.trim().split(/\s+/);
  if (command !== 'depcruise' || folder === undefined)
    throw new Error(`lint:imports is not "depcruise <folder> …": ${pkg.scripts['lint:imports']}`);
  return { folder, options };
}

interface Cruise {
  exitCode: number;
  output: string;
  /** `<from> <rule>` per violation reported, from relative to the cruised folder. */
  violations: string[];
}

function cruise(folder: string, options: string[]): Promise<Cruise> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [depcruiseBin, folder, ...options],
      { cwd: root, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number')
          return reject(new Error(`depcruise did not finish: ${error.message}\n${stderr}`));
        const output = `${stdout}${stderr}`;
        // err / err-long lines: "  error <rule>: <from> → <to>" (a cycle goes on over the next lines).
        const violations = [...output.matchAll(/^ {2}(?:error|warn|info) ([\w-]+): (\S+)/gm)].map(
          ([, rule, from]) => `${from!.startsWith(`${folder}/`) ? from!.slice(folder.length + 1) : from} ${rule}`,
        );
        resolve({ exitCode: error ? (error.code as number) : 0, output, violations: violations.sort() });
      },
    );
  });
}

describe('import rules (npm run lint:imports)', () => {
  const { folder, options } = lintImportsArgs();
  let real: Cruise;
  let broken: Cruise;
  let ruleNames: string[];

  beforeAll(async () => {
    const configPath = options[options.indexOf('--config') + 1];
    if (!options.includes('--config') || configPath === undefined) throw new Error('lint:imports names no --config');
    const config = (await import(pathToFileURL(`${root}/${configPath}`).href)) as { default: IConfiguration };
    ruleNames = (config.default.forbidden ?? []).map((rule) => rule.name!);
    [real, broken] = await Promise.all([cruise(folder, options), cruise(fixture, options)]);
  }, 120_000);

  it('cruises src/ only, and src/ keeps every rule', () => {
    expect(folder).toBe('src');
    expect(real.violations, real.output).toEqual([]);
    expect(real.exitCode, real.output).toBe(0);
    expect(real.output).toMatch(/no dependency violations found/);
  });

  it('fails on a tree that breaks the rules, naming each broken rule where it is broken', () => {
    expect(broken.violations, broken.output).toEqual(
      [
        'admin-ui/bad-browser.js browser-code-imports-only-browser-code',
        'bad-server-to-browser.ts server-code-not-to-browser-code',
        'cli/bad-cli.ts cli-not-to-routes',
        'cycle-a.ts no-circular',
        'dev-dep.ts not-to-dev-dep',
        'handlers/bad-handler.ts handlers-see-only-ctx-and-handler-api',
        'handlers/handler.ts handler-api-only-zod',
        'handlers/handler.ts handler-api-pino-type-only',
        'handlers/registry.ts handler-registry-only-store-contract',
        'http/bad-http.ts http-no-routes-or-runtime',
        'jobs/bad-model.ts jobs-model-is-pure',
        'non-package-json.ts no-non-package-json',
        'ops/bad-ops.ts ops-no-job-store',
        'orphan.ts no-orphans',
        'redis/bad-redis.ts redis-imports-only-contract-and-deadline',
        'routes/admin-events.ts admin-events-only-to-admin-resource',
        'routes/bad-route.ts store-implementation-only-in-composition-root',
        'routes/jobs.ts route-resource-only-from-app',
        'search/bad-search.ts search-only-model-and-contract',
        'store/bad-store.ts store-knows-no-http-or-runtime',
        'unresolvable.ts not-to-unresolvable',
        'webhooks/bad-webhook.ts ops-store-implementation-only-in-composition-root',
        'webhooks/bad-webhook.ts schedule-store-implementation-only-in-composition-root',
        'worker/bad-worker.ts worker-no-metrics-routes-http',
      ].sort(),
    );
    // The exit code is what fails `npm run lint`: one per error.
    expect(broken.exitCode).toBe(broken.violations.length);
  });

  it('the fixture breaks every rule of the config (a new rule gets a broken import in the fixture)', () => {
    expect(new Set(broken.violations.map((line) => line.split(' ')[1]))).toEqual(new Set(ruleNames));
  });
});
