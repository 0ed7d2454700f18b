import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import type { SchedulingOf } from '../job-types/type-scheduling.js';
import { recordAudit } from '../ops/audit.js';
import type { OpsStore } from '../ops/ops-store.js';
import { withPaused, type ScheduleRecord } from '../schedules/schedule.js';
import { changeSchedule, scheduleCursor, type ScheduleStore } from '../schedules/schedule-store.js';
import type { Scheduler } from '../schedules/scheduler.js';
import type { JobStore } from '../store/job-store.js';
import { renderAdminJob, waitingFor } from './job-view.js';
import { listSchedulesQuery } from './schedule-schemas.js';
import { renderSchedules, scheduleSchema } from './schedule-view.js';
import { adminSecurity as security, adminJobSchema, problemAnswer, problemResponses } from './schemas.js';

/**
 * Recurring schedules, for operators: every tenant's, listed and read (viewer), paused, resumed, run now and
 * deleted (operator, as jobs are), each change audited as the admin who made it. A schedule is named by its
 * tenant and id (ids are unique per tenant). Registered inside the admin scope (the admin guard runs first).
 */
export interface AdminScheduleRoutesOptions {
  schedules: ScheduleStore;
  store: JobStore;
  ops: OpsStore;
  /** Makes a trigger's job, as POST /v1/schedules/{id}/trigger does. */
  scheduler: Scheduler;
  /** Each type's scheduling settings: a triggered job's waiting_for. */
  scheduling: SchedulingOf;
}

const adminScheduleSchema = scheduleSchema
  .extend({ tenant: z.string().describe("The schedule's tenant; `-` is the anonymous tenant of an open API") })
  .meta({ id: 'AdminSchedule' });

const adminScheduleList = z.object({
  data: z.array(adminScheduleSchema),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
});

const tenant = z.string().min(1).max(64);
const scheduleParams = z.object({ tenant, id: z.string().min(1).max(256) });

const listQuery = listSchedulesQuery.extend({
  tenant: tenant.optional().describe("Only this tenant's schedules (`-`: the anonymous tenant of an open API)"),
  cursor: z.string().min(1).optional().describe('`next_cursor` of the previous page (with the same filters)'),
});

const noSchedule = problemAnswer('No schedule with this id for this tenant');

/** `base64url("v1:<tenant>\n<id>")` of the last schedule of a page, whatever the filters. */
const encodeCursor = (after: string): string => Buffer.from(`v1:${after}`).toString('base64url');

/** The store's `after` for the listing (`tenant` given: the id; else tenant and id), or a 400 problem. */
function decodeCursor(cursor: string, tenantFilter: string | undefined): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const after = text.startsWith('v1:') ? text.slice(3) : '';
  const split = after.indexOf('\n');
  if (split > 0 && (tenantFilter === undefined || after.slice(0, split) === tenantFilter))
    return tenantFilter === undefined ? after : after.slice(split + 1);
  throw new HttpProblem(
    'bad-request',
    'Invalid query parameter: cursor (use next_cursor of a page listed with the same tenant).',
    {
      errors: [{ pointer: 'cursor', detail: 'not a cursor of this listing' }],
    },
  );
}

const notFound = (tenantName: string, id: string): HttpProblem =>
  new HttpProblem('schedule-not-found', `Tenant ${tenantName} has no schedule with id ${id}.`);

export const adminScheduleRoutes: FastifyPluginAsync<AdminScheduleRoutesOptions> = async (
  fastify,
  { schedules, store, ops, scheduler, scheduling },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  /** Schedules as operators see them: the Schedule of /v1 with its tenant. */
  const render = async (records: readonly ScheduleRecord[]) =>
    (await renderSchedules(store, records)).map((schedule, i) => ({ ...schedule, tenant: records[i]!.tenant }));
  const audit = (request: FastifyRequest, action: string, record: { tenant: string; id: string }, count: number) =>
    recordAudit(ops, request, { action, target: `${record.tenant}/${record.id}`, count });
  const find = async (tenantName: string, id: string): Promise<ScheduleRecord> => {
    const schedule = await schedules.get(tenantName, id);
    if (!schedule) throw notFound(tenantName, id);
    return schedule;
  };

  app.get('/admin/schedules', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminListSchedules',
      summary: "Every tenant's recurring schedules",
      description:
        "In tenant, then id order, each with its next and last run, its last job's status and what its fire times came to. Filters combine with AND; page with `next_cursor`.",
      tags: ['admin'],
      security,
      querystring: listQuery,
      response: { 200: adminScheduleList, ...problemResponses(400, 401, 403, 503) },
    },
    handler: async (request) => {
      const { tenant: tenantFilter, type, paused, limit, cursor } = request.query;
      const page = await schedules.list({
        tenant: tenantFilter,
        type,
        paused,
        limit,
        ...(cursor !== undefined ? { after: decodeCursor(cursor, tenantFilter) } : {}),
      });
      const last = page.schedules.at(-1);
      return {
        data: await render(page.schedules),
        next_cursor: page.nextAfter === null || !last ? null : encodeCursor(scheduleCursor(last)),
      };
    },
  });

  app.get('/admin/schedules/:tenant/:id', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminGetSchedule',
      summary: 'One schedule of a tenant',
      tags: ['admin'],
      security,
      params: scheduleParams,
      response: { 200: adminScheduleSchema, ...problemResponses(401, 403), 404: noSchedule, ...problemResponses(503) },
    },
    handler: async (request) => (await render([await find(request.params.tenant, request.params.id)]))[0]!,
  });

  for (const paused of [true, false]) {
    const verb = paused ? 'pause' : 'resume';
    app.post(`/admin/schedules/:tenant/:id/${verb}`, {
      config: { adminRole: 'operator' },
      schema: {
        operationId: paused ? 'adminPauseSchedule' : 'adminResumeSchedule',
        summary: paused ? 'Pause a schedule' : 'Resume a schedule',
        description: paused
          ? 'It makes no jobs until resumed (`next_run_at` null); its jobs are not touched. Pausing a paused schedule changes nothing (and is audited with count 0).'
          : 'It fires next at its first fire time after now: the times passed while paused make no jobs. Resuming a running schedule changes nothing.',
        tags: ['admin'],
        security,
        params: scheduleParams,
        response: {
          200: adminScheduleSchema,
          ...problemResponses(401, 403),
          404: noSchedule,
          ...problemResponses(503),
        },
      },
      handler: async (request) => {
        const { tenant: tenantName, id } = request.params;
        const { before, after, outcome } = await changeSchedule(schedules, tenantName, id, (current) =>
          current ? withPaused(current, paused, Date.now()) : undefined,
        );
        if (!before || !after) throw notFound(tenantName, id);
        await audit(request, `schedule.${verb}`, before, outcome === 'changed' ? 1 : 0);
        return (await render([after]))[0]!;
      },
    });
  }

  app.post('/admin/schedules/:tenant/:id/trigger', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminTriggerSchedule',
      summary: "Run a schedule's job now",
      description:
        "Makes one job of the schedule's definition now, outside its fire times (also while paused): 201 with the job and its Location. The schedule shows it as its last job; its `scheduled_for` is now.",
      tags: ['admin'],
      security,
      params: scheduleParams,
      response: {
        201: adminJobSchema,
        ...problemResponses(401, 403),
        404: noSchedule,
        422: problemAnswer('The definition no longer submits: its type was disabled, or its input no longer fits it'),
        ...problemResponses(503),
      },
    },
    handler: async (request, reply) => {
      const schedule = await find(request.params.tenant, request.params.id);
      const job = await scheduler.trigger(schedule, Date.now());
      if (job instanceof Error) throw job; // the 422 problem a submit of the definition gets now
      request.server.metrics.jobCreated(job.type);
      await recordAudit(ops, request, {
        action: 'schedule.trigger',
        target: `${schedule.tenant}/${schedule.id}`,
        count: 1,
        detail: { job_id: job.id },
      });
      const [waiting] = await waitingFor(store, scheduling, [job]);
      return reply
        .code(201)
        .header('location', `/admin/jobs/${job.id}`)
        .send(renderAdminJob(job, waiting ?? null));
    },
  });

  app.delete('/admin/schedules/:tenant/:id', {
    config: { adminRole: 'operator' },
    schema: {
      operationId: 'adminDeleteSchedule',
      summary: 'Delete a schedule',
      description: 'It makes no more jobs; the jobs it made stay.',
      tags: ['admin'],
      security,
      params: scheduleParams,
      response: {
        204: z.undefined().describe('Deleted'),
        ...problemResponses(401, 403),
        404: noSchedule,
        ...problemResponses(503),
      },
    },
    handler: async (request, reply) => {
      const { tenant: tenantName, id } = request.params;
      if (!(await schedules.delete(tenantName, id))) throw notFound(tenantName, id);
      await audit(request, 'schedule.delete', { tenant: tenantName, id }, 1);
      return reply.code(204).send();
    },
  });
};
