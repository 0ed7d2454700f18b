import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { rfc3339, timestamp } from '../http/value-schemas.js';
import { AUDIT_LOG_CAP, type OpsStore } from '../ops/ops-store.js';
import { adminRole } from './admin-schemas.js';
import { adminSecurity as security, problemResponses } from './schemas.js';

/** The audit log, for operators: every admin write, newest first. Registered inside the admin scope (the admin guard runs first). */
export interface AdminAuditRoutesOptions {
  ops: OpsStore;
}

const auditEntrySchema = z
  .object({
    id: z.string(),
    at: timestamp,
    actor: z.object({
      key_id: z.string().describe("The admin key; for `api`, the API key's tenant, or `open` when the API runs open"),
      role: z.enum([...adminRole.options, 'api']).describe("`api`: a client's change through /v1 (schedules)"),
    }),
    action: z
      .string()
      .describe(
        '`type.pause`, `type.resume`, `worker.drain`, `worker.resume`, `bulk.retry`, `bulk.cancel`, `bulk.delete`, `schedule.create`, …',
      ),
    target: z.string().describe('A job id, a type, a worker id, `ids` or `filter`'),
    count: z.number().int().describe('How many it changed'),
    detail: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });
const auditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z
      .string()
      .regex(/^\d+$/, 'not a cursor this API gave')
      .optional()
      .describe('`next_cursor` of the previous page'),
  })
  .strict();

export const adminAuditRoutes: FastifyPluginAsync<AdminAuditRoutesOptions> = async (fastify, { ops }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/admin/audit', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminListAudit',
      summary: 'The audit log: every admin write and schedule change',
      description: `Every admin write, and every change clients make to schedules (role \`api\`). Who (key id and role), what, on what, how many jobs, when; newest first; the last ${AUDIT_LOG_CAP.toLocaleString('en-US')} kept.`,
      tags: ['admin'],
      security,
      querystring: auditQuery,
      response: {
        200: z.object({ data: z.array(auditEntrySchema), next_cursor: z.string().nullable() }),
        ...problemResponses(400, 401, 403, 503),
      },
    },
    handler: async (request) => {
      const page = await ops.auditLog({
        limit: request.query.limit,
        ...(request.query.cursor !== undefined ? { before: request.query.cursor } : {}),
      });
      return {
        data: page.entries.map((entry) => ({
          id: entry.id,
          at: rfc3339(entry.at),
          actor: entry.actor,
          action: entry.action,
          target: entry.target,
          count: entry.count,
          detail: entry.detail ?? {},
        })),
        next_cursor: page.next_cursor,
      };
    },
  });
};
