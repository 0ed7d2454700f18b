import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import type { EventLinkSigner } from '../http/event-links.js';
import { clientActor, recordAudit, type AuditAction } from '../ops/audit.js';
import type { OpsStore } from '../ops/ops-store.js';
import { nextFireAfter, withPaused, type ScheduleRecord, type ScheduleSpec } from '../schedules/schedule.js';
import { changeSchedule as changeStored, type ScheduleStore } from '../schedules/schedule-store.js';
import type { Scheduler } from '../schedules/scheduler.js';
import type { JobStore } from '../store/job-store.js';
import { tooManyActive, type SubmitSettings } from './job-submit.js';
import { jobPath, renderJob, waitingFor } from './job-view.js';
import { checkedSpec, patchedSpec, sameDefinition, specFromBody } from './schedule-definition.js';
import {
  createScheduleBody,
  listSchedulesQuery,
  replaceScheduleBody,
  scheduleIdParams,
  scheduleIdPattern,
  updateScheduleBody,
} from './schedule-schemas.js';
import { renderSchedules, scheduleListSchema, schedulePath, scheduleSchema } from './schedule-view.js';
import { apiSecurity as security, jobSchema, problemAnswer, problemResponses } from './schemas.js';

/** The client API's recurring schedules (/v1/schedules): each fire time of one makes a job (src/schedules/). */
export interface ScheduleRoutesOptions {
  schedules: ScheduleStore;
  store: JobStore;
  /** Where every change is audited. */
  ops: OpsStore;
  /** Makes a trigger's job (it need not be running). */
  scheduler: Scheduler;
  /** What a schedule's job is checked and built with, as a submit is. */
  submit: SubmitSettings;
  maxSchedulesPerTenant: number;
  /** MAX_ACTIVE_JOBS_PER_TENANT: a trigger over it is refused (429), as a submit is. */
  maxActiveJobsPerTenant?: number;
  /** With API keys: signs a triggered Job's `links.events`. */
  eventLinks?: EventLinkSigner;
}

const notFound = (id: string): HttpProblem => new HttpProblem('schedule-not-found', `No schedule with id ${id}.`);
const noSchedule = problemAnswer("No such schedule (another tenant's answer as unknown)");
const invalid = problemAnswer(
  'Body fields invalid (errors[].pointer names each): a bad cron expression or timezone, cron and every_s together or neither, an unknown type, an input that does not fit it',
);

const encodeCursor = (id: string): string => Buffer.from(`v1:${id}`).toString('base64url');
function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (text.startsWith('v1:') && scheduleIdPattern.test(text.slice(3))) return text.slice(3);
  throw new HttpProblem('bad-request', 'Invalid query parameter: cursor (use next_cursor of a page).', {
    errors: [{ pointer: 'cursor', detail: 'not a cursor of this listing' }],
  });
}

/** A new schedule at `now`, first due at its first fire time (none while paused). */
function newSchedule(tenant: string, id: string, spec: ScheduleSpec, paused: boolean, now: number): ScheduleRecord {
  return {
    ...spec,
    id,
    tenant,
    paused,
    nextRunAt: paused ? null : nextFireAfter({ ...spec, createdAt: now }, now),
    lastRunAt: null,
    lastJobId: null,
    fires: { created: 0, skipped: 0, missed: 0 },
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
}

/**
 * `current` with the definition `spec` (and `paused` when given). The same definition changes nothing, so a
 * deploy that PUTs it on every start keeps the schedule's timing; another is timed afresh from now.
 */
function redefined(
  current: ScheduleRecord,
  spec: ScheduleSpec,
  paused: boolean | undefined,
  now: number,
): ScheduleRecord | undefined {
  if (sameDefinition(current, spec)) return withPaused(current, paused ?? current.paused, now);
  const changed = {
    ...current,
    ...spec,
    paused: paused ?? current.paused,
    updatedAt: now,
    version: current.version + 1,
  };
  return { ...changed, nextRunAt: changed.paused ? null : nextFireAfter(changed, now) };
}

export const scheduleRoutes: FastifyPluginAsync<ScheduleRoutesOptions> = async (
  fastify,
  { schedules, store, ops, scheduler, submit, maxSchedulesPerTenant, maxActiveJobsPerTenant, eventLinks },
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const render = async (schedule: ScheduleRecord) => (await renderSchedules(store, [schedule]))[0]!;
  const audit = (request: FastifyRequest, action: string, id: string, detail?: AuditAction['detail']) =>
    recordAudit(
      ops,
      request,
      { action, target: id, count: 1, ...(detail ? { detail } : {}) },
      clientActor(request.tenant),
    );

  /**
   * Reads the tenant's schedule `id`, asks `change` what it becomes (undefined: nothing to change), and saves that
   * by compare-and-set: after another writer saved first (a scheduler advancing it), again from a fresh read.
   * Answers the schedule as it now is, and whether this call created or changed it.
   */
  async function changeSchedule(
    tenant: string,
    id: string,
    change: (current: ScheduleRecord | undefined) => ScheduleRecord | undefined,
  ): Promise<{ schedule: ScheduleRecord; outcome: 'created' | 'changed' | 'unchanged' }> {
    const { after, outcome } = await changeStored(schedules, tenant, id, change, {
      maxPerTenant: maxSchedulesPerTenant,
    });
    if (outcome === 'too-many') {
      throw new HttpProblem(
        'too-many-schedules',
        `You have ${maxSchedulesPerTenant} schedules (MAX_SCHEDULES_PER_TENANT); delete one before creating another.`,
        { extensions: { limit: maxSchedulesPerTenant } },
      );
    }
    if (!after) throw notFound(id);
    return { schedule: after, outcome };
  }

  app.post('/v1/schedules', {
    schema: {
      operationId: 'createSchedule',
      summary: 'Create a recurring schedule',
      description:
        'Each fire time of the schedule (a cron expression in a timezone, or every N seconds) makes one job of its definition, as POST /v1/jobs would. With an `id` the create is idempotent: the same definition again answers 200 with the schedule, another definition 409 `schedule-exists`.',
      tags: ['schedules'],
      security,
      body: createScheduleBody,
      response: {
        200: scheduleSchema.describe('A schedule with this id and the same definition exists already: unchanged'),
        201: scheduleSchema,
        ...problemResponses(400, 401, 413, 415),
        409: problemAnswer(
          '`schedule-exists`: the id is taken with another definition; `too-many-schedules`: MAX_SCHEDULES_PER_TENANT reached',
        ),
        422: invalid,
        ...problemResponses(429, 503),
      },
    },
    handler: async (request, reply) => {
      const { id = `sch_${randomBytes(12).toString('base64url')}`, paused, ...fields } = request.body;
      const now = Date.now();
      const spec = checkedSpec(specFromBody(fields), submit, { tenant: request.tenant, now });
      const { schedule, outcome } = await changeSchedule(request.tenant, id, (current) => {
        if (!current) return newSchedule(request.tenant, id, spec, paused ?? false, now);
        if (sameDefinition(current, spec) && (paused === undefined || paused === current.paused)) return undefined;
        throw new HttpProblem(
          'schedule-exists',
          `You have a schedule with id ${id} and another definition; PUT /v1/schedules/${id} replaces it.`,
          { errors: [{ pointer: '/id', detail: 'taken by a schedule with another definition' }] },
        );
      });
      if (outcome === 'created') await audit(request, 'schedule.create', id);
      return reply
        .code(outcome === 'created' ? 201 : 200)
        .header('location', schedulePath(id))
        .send(await render(schedule));
    },
  });

  app.get('/v1/schedules', {
    schema: {
      operationId: 'listSchedules',
      summary: 'List schedules',
      description: 'In id order; page with `next_cursor`. Filters combine with AND.',
      tags: ['schedules'],
      security,
      querystring: listSchedulesQuery,
      response: { 200: scheduleListSchema, ...problemResponses(400, 401, 429, 503) },
    },
    handler: async (request) => {
      const { type, paused, limit, cursor } = request.query;
      const page = await schedules.list({
        tenant: request.tenant,
        type,
        paused,
        limit,
        ...(cursor !== undefined ? { after: decodeCursor(cursor) } : {}),
      });
      return {
        data: await renderSchedules(store, page.schedules),
        next_cursor: page.nextAfter === null ? null : encodeCursor(page.nextAfter),
      };
    },
  });

  app.get('/v1/schedules/:id', {
    schema: {
      operationId: 'getSchedule',
      summary: 'Get a schedule',
      description: 'With its next fire time, its latest job and what its fire times came to.',
      tags: ['schedules'],
      security,
      params: scheduleIdParams,
      response: { 200: scheduleSchema, ...problemResponses(401), 404: noSchedule, ...problemResponses(429, 503) },
    },
    handler: async (request) => {
      const schedule = await schedules.get(request.tenant, request.params.id);
      if (!schedule) throw notFound(request.params.id);
      return render(schedule);
    },
  });

  app.put('/v1/schedules/:id', {
    schema: {
      operationId: 'replaceSchedule',
      summary: 'Create or replace a schedule',
      description:
        'Creates the schedule (201) or replaces its definition (200). The same definition again changes nothing (same `version` and `next_run_at`), so a deploy may PUT its schedules on every start; another definition is timed afresh from now. `paused` left out keeps the schedule as it is.',
      tags: ['schedules'],
      security,
      params: scheduleIdParams,
      body: replaceScheduleBody,
      response: {
        200: scheduleSchema.describe('Replaced, or unchanged (the same definition)'),
        201: scheduleSchema,
        ...problemResponses(400, 401, 413, 415),
        409: problemAnswer('`too-many-schedules`: MAX_SCHEDULES_PER_TENANT reached'),
        422: invalid,
        ...problemResponses(429, 503),
      },
    },
    handler: async (request, reply) => {
      const { id } = request.params;
      if (!scheduleIdPattern.test(id)) {
        throw new HttpProblem('validation-failed', `The schedule id "${id}" is invalid.`, {
          errors: [{ pointer: 'id', detail: 'must be 1 to 128 of A-Z a-z 0-9 _ . - starting with a letter or digit' }],
        });
      }
      const { paused, ...fields } = request.body;
      const now = Date.now();
      const spec = checkedSpec(specFromBody(fields), submit, { tenant: request.tenant, now });
      const { schedule, outcome } = await changeSchedule(request.tenant, id, (current) =>
        current ? redefined(current, spec, paused, now) : newSchedule(request.tenant, id, spec, paused ?? false, now),
      );
      if (outcome !== 'unchanged')
        await audit(request, outcome === 'created' ? 'schedule.create' : 'schedule.replace', id);
      if (outcome === 'created') reply.code(201).header('location', schedulePath(id));
      return reply.send(await render(schedule));
    },
  });

  app.patch('/v1/schedules/:id', {
    schema: {
      operationId: 'updateSchedule',
      summary: 'Change some fields of a schedule',
      description:
        'Fields left out stay; `null` clears one that may be empty. The result is checked as a whole, as a create is. A changed definition is timed afresh from now.',
      tags: ['schedules'],
      security,
      params: scheduleIdParams,
      body: updateScheduleBody,
      response: {
        200: scheduleSchema,
        ...problemResponses(400, 401),
        404: noSchedule,
        ...problemResponses(413, 415),
        422: invalid,
        ...problemResponses(429, 503),
      },
    },
    handler: async (request) => {
      const { id } = request.params;
      const now = Date.now();
      const { schedule, outcome } = await changeSchedule(request.tenant, id, (current) => {
        if (!current) throw notFound(id);
        const spec = checkedSpec(patchedSpec(current, request.body), submit, { tenant: request.tenant, now });
        return redefined(current, spec, request.body.paused, now);
      });
      if (outcome !== 'unchanged') await audit(request, 'schedule.update', id);
      return render(schedule);
    },
  });

  app.delete('/v1/schedules/:id', {
    schema: {
      operationId: 'deleteSchedule',
      summary: 'Delete a schedule',
      description: 'It makes no more jobs; the jobs it made stay. 204 also for an unknown id, so repeating is safe.',
      tags: ['schedules'],
      security,
      params: scheduleIdParams,
      response: { 204: z.undefined().describe('Deleted (or never existed)'), ...problemResponses(401, 429, 503) },
    },
    handler: async (request, reply) => {
      if (await schedules.delete(request.tenant, request.params.id))
        await audit(request, 'schedule.delete', request.params.id);
      return reply.code(204).send();
    },
  });

  for (const paused of [true, false]) {
    const verb = paused ? 'pause' : 'resume';
    app.post(`/v1/schedules/:id/${verb}`, {
      schema: {
        operationId: `${verb}Schedule`,
        summary: paused ? 'Pause a schedule' : 'Resume a schedule',
        description: paused
          ? 'It makes no jobs until resumed (`next_run_at` null). Pausing a paused schedule changes nothing.'
          : 'It fires next at its first fire time after now: the times passed while paused make no jobs. Resuming a running schedule changes nothing.',
        tags: ['schedules'],
        security,
        params: scheduleIdParams,
        response: { 200: scheduleSchema, ...problemResponses(401), 404: noSchedule, ...problemResponses(429, 503) },
      },
      handler: async (request) => {
        const { id } = request.params;
        const now = Date.now();
        const { schedule, outcome } = await changeSchedule(request.tenant, id, (current) => {
          if (!current) throw notFound(id);
          return withPaused(current, paused, now);
        });
        if (outcome !== 'unchanged') await audit(request, `schedule.${verb}`, id);
        return render(schedule);
      },
    });
  }

  app.post('/v1/schedules/:id/trigger', {
    schema: {
      operationId: 'triggerSchedule',
      summary: "Run a schedule's job now",
      description:
        "Makes one job of the schedule's definition now, outside its fire times (also while paused); the schedule shows it as its last job. Its `scheduled_for` is now.",
      tags: ['schedules'],
      security,
      params: scheduleIdParams,
      response: {
        201: jobSchema,
        ...problemResponses(401),
        404: noSchedule,
        422: problemAnswer('The definition no longer submits: its type was disabled, or its input no longer fits it'),
        ...problemResponses(429, 503),
      },
    },
    handler: async (request, reply) => {
      const { id } = request.params;
      const schedule = await schedules.get(request.tenant, id);
      if (!schedule) throw notFound(id);
      const job = await scheduler
        .trigger(schedule, Date.now(), { maxActive: maxActiveJobsPerTenant })
        .catch(tooManyActive);
      if (job instanceof Error) throw job; // the 422 problem a submit of the definition gets now
      request.server.metrics.jobCreated(job.type);
      await audit(request, 'schedule.trigger', id, { job_id: job.id });
      const [waiting] = await waitingFor(store, submit.scheduling, [job]);
      return reply
        .code(201)
        .header('location', jobPath(job.id))
        .send(renderJob(job, { waitingFor: waiting ?? null, eventsLink: eventLinks?.link(job.id, job.tenant) }));
    },
  });
};
