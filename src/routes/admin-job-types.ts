import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { jobTypePattern } from '../handlers/handler.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import {
  compileInputSchema,
  InputSchemaError,
  MAX_INPUT_SCHEMA_BYTES,
  type DeclaredType,
  type DeclaredTypes,
} from '../job-types/declared-types.js';
import { recordAudit } from '../ops/audit.js';
import type { OpsStore } from '../ops/ops-store.js';
import type { JobStore } from '../store/job-store.js';
import { adminSecurity as security, problemAnswer, problemResponses } from './schemas.js';

/**
 * Declared job types (/admin/job-types/{type}): an operator declares a type that no in-process handler
 * serves, with its input's JSON Schema and defaults, for remote workers to run. Declaring and removing need
 * the `admin` role; every instance hears the change (see DeclaredTypes). Registered inside the admin scope.
 */
export interface AdminJobTypeRoutesOptions {
  store: JobStore;
  ops: OpsStore;
  handlers: HandlerRegistry;
  declaredTypes: DeclaredTypes;
}

const typeParams = z.object({
  type: z
    .string()
    .regex(
      jobTypePattern,
      'lowercase letters, digits, `_`, `.`, `-`, starting with a letter or digit; at most 64 characters',
    ),
});

const rateSchema = z
  .object({ max: z.number().int().min(1), per_s: z.number().positive().max(86_400) })
  .strict()
  .describe('At most `max` jobs of the type start per `per_s` seconds, across every instance');

/** A declaration's settings: null (or, in a PUT, left out) takes the service's default. */
const settings = z.object({
  description: z.string().max(2000).nullable().describe('What the type does, for clients (GET /v1/job-types)'),
  timeout_s: z
    .number()
    .positive()
    .max(604_800)
    .nullable()
    .describe("Default seconds an attempt may run (a job's own timeout_s overrides it)"),
  max_attempts: z
    .number()
    .int()
    .min(1)
    .max(100)
    .nullable()
    .describe("Default attempts (a job's own max_attempts overrides it)"),
  max_concurrency: z
    .number()
    .int()
    .min(1)
    .nullable()
    .describe('At most this many jobs of the type run at once across every instance'),
  rate: rateSchema.nullable(),
  lease_s: z
    .number()
    .int()
    .min(5)
    .max(3600)
    .nullable()
    .describe("How long a remote worker holds a job of this type between heartbeats; the service's LEASE_S when null"),
  key_concurrency: z
    .number()
    .int()
    .min(1)
    .nullable()
    .describe(
      "At most this many jobs of the type with one tenant's `concurrency_key` run at once across every instance (1: one at a time, in order); keyless jobs are not capped",
    ),
  fair_by: z
    .enum(['tenant', 'key'])
    .nullable()
    .describe(
      "Who takes turns at claims among ready jobs of equal priority: `tenant` (the default when null) or `key` (a tenant's concurrency keys too); applies to jobs submitted from then on",
    ),
});

const declareBody = settings
  .partial()
  .extend({
    input_schema: z
      .record(z.string(), z.unknown())
      .describe(
        `JSON Schema (2020-12) of the input, at most ${MAX_INPUT_SCHEMA_BYTES / 1024} KiB. \`format\` is checked; unknown keywords are refused; \`$ref\` resolves only inside the schema (nothing is fetched)`,
      ),
  })
  .strict();

const declaredTypeSchema = z
  .object({
    type: z.string(),
    input_schema: z.record(z.string(), z.unknown()),
    ...settings.shape,
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({
    id: 'DeclaredJobType',
    description: "A job type an operator declared, run by remote workers; null settings take the service's defaults",
  });

const render = (def: DeclaredType) => ({
  ...def,
  // Absent from declarations stored before these settings existed.
  key_concurrency: def.key_concurrency ?? null,
  fair_by: def.fair_by ?? null,
  created_at: rfc3339(def.created_at),
  updated_at: rfc3339(def.updated_at),
});

const notDeclared = (type: string) =>
  new HttpProblem(
    'job-type-not-declared',
    `The job type "${type}" is not declared (the types in-process handlers serve are not declared).`,
  );

export const adminJobTypeRoutes: FastifyPluginAsync<AdminJobTypeRoutesOptions> = async (
  fastify,
  { store, ops, handlers, declaredTypes },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.put('/admin/job-types/:type', {
    config: { adminRole: 'admin' },
    schema: {
      operationId: 'adminDeclareJobType',
      summary: 'Declare (or replace) a job type served by remote workers',
      description:
        'Clients can then submit jobs of the type (their input checked against `input_schema`) and remote workers run them. Replacing a declaration changes the defaults of jobs submitted from then on; settings left out become null. A type an in-process handler serves cannot be declared (409). Every instance hears the change at once.',
      tags: ['admin'],
      security,
      params: typeParams,
      body: declareBody,
      response: {
        200: declaredTypeSchema.describe('Replaced'),
        201: declaredTypeSchema.describe('Declared'),
        ...problemResponses(400, 401, 403),
        409: problemAnswer('An in-process handler serves this type (job-type-served-in-process)'),
        ...problemResponses(422, 503),
      },
    },
    handler: async (request, reply) => {
      const { type } = request.params;
      if (handlers.get(type)) {
        throw new HttpProblem(
          'job-type-served-in-process',
          `A handler of this service runs the job type "${type}"; declare remote types under another name.`,
        );
      }
      const body = request.body;
      try {
        compileInputSchema(body.input_schema);
      } catch (error) {
        if (!(error instanceof InputSchemaError)) throw error;
        throw new HttpProblem('validation-failed', `The input schema is not usable: ${error.message}.`, {
          errors: [{ pointer: '/input_schema', detail: error.message }],
        });
      }
      const now = Date.now();
      const { def, created } = await ops.declareType({
        type,
        input_schema: body.input_schema,
        description: body.description ?? null,
        timeout_s: body.timeout_s ?? null,
        max_attempts: body.max_attempts ?? null,
        max_concurrency: body.max_concurrency ?? null,
        rate: body.rate ?? null,
        lease_s: body.lease_s ?? null,
        key_concurrency: body.key_concurrency ?? null,
        fair_by: body.fair_by ?? null,
        created_at: now,
        updated_at: now,
      });
      await recordAudit(ops, request, { action: 'type.declare', target: type, count: 1, detail: { created } });
      // This instance serves the new declaration before it answers (the others as soon as they hear of it).
      await declaredTypes.refresh();
      return reply
        .code(created ? 201 : 200)
        .header('location', `/admin/job-types/${type}`)
        .send(render(def));
    },
  });

  app.get('/admin/job-types/:type', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminGetDeclaredJobType',
      summary: 'A declared job type',
      tags: ['admin'],
      security,
      params: typeParams,
      response: {
        200: declaredTypeSchema,
        ...problemResponses(400, 401, 403),
        404: problemAnswer('The type is not declared (job-type-not-declared)'),
        ...problemResponses(503),
      },
    },
    handler: async (request) => {
      const { type } = request.params;
      // From the store, not this instance's cache: what was just declared on another instance shows at once.
      const def = (await ops.declaredTypes()).find((each) => each.type === type);
      if (!def) throw notDeclared(type);
      return render(def);
    },
  });

  app.delete('/admin/job-types/:type', {
    config: { adminRole: 'admin' },
    schema: {
      operationId: 'adminRemoveDeclaredJobType',
      summary: 'Remove a declared job type',
      description:
        'Refused (409 job-type-in-use) while jobs of the type are queued or running: cancel them first. Finished jobs of the type stay readable.',
      tags: ['admin'],
      security,
      params: typeParams,
      response: {
        204: z.undefined().describe('Removed'),
        ...problemResponses(400, 401, 403),
        404: problemAnswer('The type is not declared (job-type-not-declared)'),
        409: problemAnswer('Jobs of the type are queued or running (job-type-in-use)'),
        ...problemResponses(503),
      },
    },
    handler: async (request, reply) => {
      const { type } = request.params;
      const declared = (await ops.declaredTypes()).some((each) => each.type === type);
      if (!declared) throw notDeclared(type);
      const counts = (await store.stats(Date.now())).byType[type];
      const active = (counts?.queued ?? 0) + (counts?.running ?? 0);
      if (active > 0) {
        throw new HttpProblem(
          'job-type-in-use',
          `${active} job(s) of type "${type}" are queued or running; cancel them (or let them finish) first.`,
          {
            extensions: { active },
          },
        );
      }
      const removed = await ops.removeDeclaredType(type);
      if (!removed) throw notDeclared(type);
      await recordAudit(ops, request, { action: 'type.undeclare', target: type, count: 1 });
      await declaredTypes.refresh();
      return reply.code(204).send();
    },
  });
};
