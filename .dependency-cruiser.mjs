// What may import what in src/ (README, "Architecture"), checked by `npm run lint` (npm run lint:imports).
// When a rule fires, its comment below says why the rule exists and where the import belongs instead.
//
// Paths are matched relative to the repository root. src() also matches the fixture tree
// test/fixtures/import-rules/src/, which test/lint/import-rules.test.ts cruises with this same file to prove
// that each rule fires; `npm run lint:imports` cruises src/ only, so it never sees the fixtures.

/** @param {string} path a path inside src/, as a regular expression */
const src = (path) => `^(?:test/fixtures/import-rules/)?src/${path}`;

/** The only modules that pick concrete stores: the service's composition root, and the export/import
 * command's (a process of its own that opens Redis itself; README: "cli/ imports search/ and store/"). */
const compositionRoots = [src('server[.]ts$'), src('cli/jobs[.]ts$')];

/** Everything under store/ except the contract: MemoryJobStore, RedisJobStore, createJobStore, redis-keys,
 * min-heap, the Lua scripts. */
const storeImplementation = { path: src('store/'), pathNot: src('store/job-store[.]ts$') };

/** src/routes/ files that are helpers beside the resources (README); every other file there is a resource
 * (one per resource, registered by app.ts). */
const routeHelpers = [
  'admin-schemas',
  'admin-search',
  'await-job',
  'job-lookup',
  'job-submit',
  'job-view',
  'openapi',
  'paging',
  'schedule-definition',
  'schedule-schemas',
  'schedule-view',
  'schemas',
];
const routeResource = { path: src('routes/[^/]+[.]ts$'), pathNot: src(`routes/(?:${routeHelpers.join('|')})[.]ts$`) };

const npm = (name) => `(^|/)node_modules/${name}/`;
const httpFramework = [npm('fastify'), npm('@fastify/[^/]+'), npm('fastify-type-provider-zod')];

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    // ---- the store seam -------------------------------------------------------------------------------
    {
      name: 'store-implementation-only-in-composition-root',
      severity: 'error',
      comment:
        'Outside store/, code sees the JobStore contract (src/store/job-store.ts) only. Only the composition ' +
        'roots (src/server.ts; src/cli/jobs.ts, the export/import command) pick a concrete store ' +
        '(MemoryJobStore, RedisJobStore, createJobStore) and hand it to the parts that need it; key names ' +
        '(redis-keys.ts) and Lua scripts stay inside the Redis store. Take what you need from the contract, or ' +
        'have server.ts pass it in (as it passes the Redis client and key base to the ops store and the rate limit).',
      from: { path: src(''), pathNot: [src('store/'), ...compositionRoots] },
      to: storeImplementation,
    },
    {
      name: 'store-knows-no-http-or-runtime',
      severity: 'error',
      comment:
        'store/ is below everything that uses it: it imports jobs/ (the model), redis/ and the small shared ' +
        'modules (config.ts, deadline.ts), never HTTP (fastify, http/, routes/, errors.ts), the worker pool, ' +
        'handlers, metrics, webhooks, ops, search or the app. Move the code that needs those out of the store, ' +
        'or put the shared piece (a type, a constant) in the store contract or jobs/.',
      from: { path: src('store/') },
      to: {
        path: [
          src('(?:http|routes|worker|handlers|metrics|webhooks|ops|search|cli|client|admin-ui)/'),
          src('(?:app|server|errors)[.]ts$'),
          ...httpFramework,
          npm('prom-client'),
        ],
      },
    },
    {
      name: 'redis-imports-only-contract-and-deadline',
      severity: 'error',
      comment:
        'redis/ (the one Redis connection module, used by the jobs and the ops stores) imports only the store ' +
        'contract (for StoreUnavailableError) and deadline.ts. Anything more specific belongs in the store that needs it.',
      from: { path: src('redis/') },
      to: { path: src(''), pathNot: [src('redis/'), src('store/job-store[.]ts$'), src('deadline[.]ts$')] },
    },
    {
      name: 'ops-no-job-store',
      severity: 'error',
      comment:
        'ops/ (operator state that is not jobs: pauses, workers, audit, history, bulk snapshots) never imports a ' +
        'job store, not even the contract: it gets its Redis client and key base from server.ts (redis/ is fine).',
      from: { path: src('ops/') },
      to: { path: src('store/') },
    },
    {
      name: 'ops-store-implementation-only-in-composition-root',
      severity: 'error',
      comment:
        'Outside ops/, code sees the OpsStore contract (src/ops/ops-store.ts, and the audit helper ops/audit.ts). ' +
        'server.ts picks MemoryOpsStore or RedisOpsStore; app.ts falls back to a MemoryOpsStore when buildApp is ' +
        'handed none (tests). Everything else takes the OpsStore it is given.',
      from: { path: src(''), pathNot: [src('ops/'), src('(?:server|app)[.]ts$')] },
      to: { path: src('ops/(?:memory-ops-store|redis-ops-store|history)[.]ts$') },
    },

    {
      name: 'schedule-store-implementation-only-in-composition-root',
      severity: 'error',
      comment:
        'Outside schedules/, code sees the ScheduleStore contract (src/schedules/schedule-store.ts) and the rules ' +
        '(schedule.ts, scheduler.ts): server.ts picks MemoryScheduleStore or RedisScheduleStore with the job store, ' +
        'src/cli/jobs.ts (export/import) a RedisScheduleStore beside its RedisJobStore, and app.ts falls back to a ' +
        'MemoryScheduleStore when handed none (tests).',
      from: { path: src(''), pathNot: [src('schedules/'), src('(?:server|app)[.]ts$'), src('cli/jobs[.]ts$')] },
      to: { path: src('schedules/(?:memory-schedule-store|redis-schedule-store)[.]ts$') },
    },

    // ---- the model and the handler API -----------------------------------------------------------------
    {
      name: 'jobs-model-is-pure',
      severity: 'error',
      comment:
        'jobs/ is the model (states, the record, ids, canonical JSON): it imports nothing of the app, only zod ' +
        'and node: built-ins, so every layer can use it. Move the code that needs more to the layer that owns it.',
      from: { path: src('jobs/') },
      to: { pathNot: [src('jobs/'), npm('zod')], dependencyTypesNot: ['core'] },
    },
    {
      name: 'handler-api-only-zod',
      severity: 'error',
      comment:
        'src/handlers/handler.ts is the public handler API (the async-job-service/handler entry): it imports ' +
        'zod, node: built-ins and, as a type only, pino (ctx.log) — nothing of the app, so a job type in its own ' +
        'package depends on this file alone.',
      from: { path: src('handlers/handler[.]ts$') },
      to: { pathNot: [npm('zod'), npm('pino')], dependencyTypesNot: ['core'] },
    },
    {
      name: 'handler-api-pino-type-only',
      severity: 'error',
      comment: "src/handlers/handler.ts may name pino's Logger type (ctx.log) but not load pino: use `import type`.",
      from: { path: src('handlers/handler[.]ts$') },
      to: { path: npm('pino'), dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'handlers-see-only-ctx-and-handler-api',
      severity: 'error',
      comment:
        'A handler sees its ctx and the handler API (handlers/handler.ts), nothing of the service: not the ' +
        'store, routes, the worker pool, HTTP, ops, metrics or webhooks (outbound/ is the one door to the ' +
        'network, for http jobs). What a handler needs from the service comes through ctx. The registry ' +
        "(handlers/registry.ts) is the one exception, for the store contract only: it turns the types' limits " +
        'into the ClaimLimit the store claims with.',
      from: { path: src('handlers/'), pathNot: src('handlers/registry[.]ts$') },
      to: {
        path: [
          src('(?:store|redis|routes|worker|http|ops|metrics|webhooks|search|cli|client|admin-ui)/'),
          src('(?:app|server|errors)[.]ts$'),
          ...httpFramework,
        ],
      },
    },
    {
      name: 'handler-registry-only-store-contract',
      severity: 'error',
      comment:
        'handlers/registry.ts may use the store contract (ClaimLimit) and otherwise sees what a handler sees: ' +
        'no store implementation, routes, worker pool, HTTP, ops, metrics or webhooks.',
      from: { path: src('handlers/registry[.]ts$') },
      to: {
        path: [
          src('(?:store|redis|routes|worker|http|ops|metrics|webhooks|search|cli|client|admin-ui)/'),
          src('(?:app|server|errors)[.]ts$'),
          ...httpFramework,
        ],
        pathNot: src('store/job-store[.]ts$'),
      },
    },

    // ---- the worker, the CLI, HTTP, search ---------------------------------------------------------------
    {
      name: 'worker-no-metrics-routes-http',
      severity: 'error',
      comment:
        'worker/ runs jobs; it does not know how they are observed or served: no metrics/ (report through the ' +
        'observer interface the pool defines; server.ts plugs the metrics in), no routes/, no http/, no fastify, ' +
        'no prom-client.',
      from: { path: src('worker/') },
      to: { path: [src('(?:metrics|routes|http)/'), ...httpFramework, npm('prom-client')] },
    },
    {
      name: 'cli-not-to-routes',
      severity: 'error',
      comment:
        'cli/ (npm run jobs -- export | import) works on search/ and the store, never through routes/: move ' +
        'what both need (a schema, a query) to search/, jobs/ or the store contract.',
      from: { path: src('cli/') },
      to: { path: src('routes/') },
    },
    {
      name: 'http-no-routes-or-runtime',
      severity: 'error',
      comment:
        'http/ is the plumbing under the routes (errors as problem+json, auth, event streams, rate limit, value ' +
        'schemas): it imports jobs/, errors.ts, config.ts (and the store contract, redis/ for types), never the ' +
        'routes, the worker pool, handlers, metrics, webhooks, ops or search.',
      from: { path: src('http/') },
      to: {
        path: [
          src('(?:routes|worker|handlers|metrics|webhooks|ops|search|cli|client|admin-ui)/'),
          src('(?:app|server)[.]ts$'),
        ],
      },
    },
    {
      name: 'search-only-model-and-contract',
      severity: 'error',
      comment:
        "search/ (the operators' job filter) imports jobs/, the store contract and http/value-schemas.ts only, " +
        'so routes/, cli/ and bulk actions can all use it.',
      from: { path: src('search/') },
      to: {
        path: src(''),
        pathNot: [src('search/'), src('jobs/'), src('store/job-store[.]ts$'), src('http/value-schemas[.]ts$')],
      },
    },

    // ---- routes ---------------------------------------------------------------------------------------------
    {
      name: 'route-resource-only-from-app',
      severity: 'error',
      comment:
        'A route resource file (one per resource: jobs.ts, events.ts, admin*.ts, health.ts, metrics.ts) is ' +
        'registered by app.ts and imported by nothing else, not by another resource. Put what two resources ' +
        'share in a helper beside them (job-lookup, paging, job-view, job-submit, await-job, admin-search, ' +
        'schemas, admin-schemas, openapi, schedule-view, schedule-schemas, schedule-definition; a new helper ' +
        'goes into the list in .dependency-cruiser.mjs). ' +
        'The one exception, admin-events.ts -> admin.ts, has its own rule.',
      from: { path: src(''), pathNot: [src('app[.]ts$'), src('routes/admin-events[.]ts$')] },
      to: routeResource,
    },
    {
      name: 'admin-events-only-to-admin-resource',
      severity: 'error',
      comment:
        "admin-events.ts streams admin.ts's stats body, so it may import admin.ts (README); no other resource file.",
      from: { path: src('routes/admin-events[.]ts$') },
      to: { ...routeResource, pathNot: [routeResource.pathNot, src('routes/admin[.]ts$')] },
    },

    // ---- the dashboard ----------------------------------------------------------------------------------
    {
      name: 'browser-code-imports-only-browser-code',
      severity: 'error',
      comment:
        'src/admin-ui/ is the dashboard: native ES modules served to the browser as they are, no bundler. They ' +
        'import only each other (relative ./x.js); node: built-ins, npm packages and server modules do not exist ' +
        'in the page. Talk to the server over HTTP (api.js).',
      from: { path: src('admin-ui/') },
      to: { pathNot: src('admin-ui/') },
    },
    {
      name: 'server-code-not-to-browser-code',
      severity: 'error',
      comment:
        "Server code never imports the dashboard's browser modules (src/admin-ui/); routes/admin-ui.ts serves " +
        'them as files.',
      from: { path: src(''), pathNot: src('admin-ui/') },
      to: { path: src('admin-ui/') },
    },

    // ---- general hygiene --------------------------------------------------------------------------------
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'This import closes a cycle (the cycle is listed). Cycles make start-up order matter and layers ' +
        'inseparable: move the shared piece down into the module both sides can import, or pass it in.',
      from: { path: src('') },
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      severity: 'error',
      comment:
        'Nothing imports this module and it imports nothing: it is dead code. Use it or delete it. Entry points ' +
        '(server.ts, cli/jobs.ts, the package entries client/jobs-client.ts and handlers/handler.ts), ' +
        "declaration files and the dashboard's browser files (loaded by index.html, not imported) are exempt.",
      from: {
        orphan: true,
        path: src(''),
        pathNot: [
          '[.]d[.]ts$',
          src('admin-ui/'),
          ...compositionRoots,
          src('client/jobs-client[.]ts$'),
          src('handlers/handler[.]ts$'),
        ],
      },
      to: {},
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment:
        'src/ is what ships: it may not load a package from devDependencies, which a production install ' +
        '(npm ci --omit=dev) does not have. Move the package to dependencies, or keep the code out of src/ ' +
        '(test/, scripts/, bench/). Type-only imports are fine: they are gone after compilation.',
      from: { path: src('') },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: npm('@types/[^/]+') },
    },
    {
      name: 'no-non-package-json',
      severity: 'error',
      comment:
        'This imports an npm package that package.json does not declare (it is only there as a dependency of ' +
        'a dependency). Add it to dependencies, or do without it.',
      from: { path: src('') },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'This import does not resolve to a file (relative imports end in .js and name a .ts/.js file that ' +
        'exists; packages must be installed). Fix the path or install the package.',
      from: { path: src('') },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The type-only imports count too: a layer that names another layer's types depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: {
      dot: { collapsePattern: 'node_modules/(?:@[^/]+/[^/]+|[^/]+)' },
      archi: { collapsePattern: '^src/[^/]+|node_modules/(?:@[^/]+/[^/]+|[^/]+)' },
    },
  },
};
