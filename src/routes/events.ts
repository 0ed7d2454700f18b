import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { EVENT_STREAM_PING_INTERVAL_MS, JOB_EVENT_MIN_INTERVAL_MS } from '../config.js';
import { eventStreams, MAX_JOBS_PER_STREAM } from '../http/event-stream.js';
import { isTerminal, type JobRecord } from '../jobs/job.js';
import type { SchedulingOf } from '../job-types/type-scheduling.js';
import { isJobId } from '../jobs/job-id.js';
import type { JobStore } from '../store/job-store.js';
import { findJob } from './job-lookup.js';
import { renderJob, waitingFor } from './job-view.js';
import { apiSecurity, jobIdParams, problemResponses } from './schemas.js';

export interface EventRoutesOptions {
  store: JobStore;
  /** Each type's scheduling settings: a Job's waiting_for. */
  scheduling: SchedulingOf;
  /** Comment lines that keep proxies from closing an idle stream (default EVENT_STREAM_PING_INTERVAL_MS). */
  pingIntervalMs?: number;
  /** Least time between two events of one job: progress is coalesced to a few events per second. */
  minEventIntervalMs?: number;
}

/**
 * Server-Sent Events for one job or several: `snapshot` (the full Job) first, then `progress` and
 * `status` as the job changes, and `done` (the finished Job), after which the stream ends. Each event's
 * id is `<job id>:<version>` (`<version>` on a one-job stream), so a reconnect with Last-Event-ID resumes.
 */
export const eventRoutes: FastifyPluginAsync<EventRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { store, scheduling } = options;
  /** The Job as the stream sends it, with its waiting_for. */
  const render = async (job: JobRecord) =>
    renderJob(job, { waitingFor: (await waitingFor(store, scheduling, [job]))[0]! });
  const pingIntervalMs = options.pingIntervalMs ?? EVENT_STREAM_PING_INTERVAL_MS;
  const minEventIntervalMs = options.minEventIntervalMs ?? JOB_EVENT_MIN_INTERVAL_MS;
  // On shutdown open streams are ended; clients reconnect with Last-Event-ID (to another instance, or this one restarted).
  const openStream = eventStreams(fastify, pingIntervalMs);

  app.get('/v1/jobs/:id/events', {
    schema: {
      operationId: 'streamJobEvents',
      summary: "Stream a job's changes (Server-Sent Events)",
      description: `Events: \`snapshot\` (the Job), then \`progress\` ({version, progress}) and \`status\` (the Job), and finally \`done\` (the finished Job), after which the server closes the stream. Event ids are the job version; a reconnect with \`Last-Event-ID\` resumes, and one after \`done\` gets 204, which stops a browser from reconnecting. \`: ping\` every ${pingIntervalMs / 1000} s.`,
      tags: ['jobs'],
      security: apiSecurity,
      params: jobIdParams,
      headers: z
        .object({
          'last-event-id': z
            .string()
            .optional()
            .describe('Sent by EventSource on a reconnect: a finished job then answers 204 (nothing more to send)'),
        })
        .loose(),
      response: {
        200: { description: 'The event stream', content: { 'text/event-stream': { schema: z.string() } } },
        204: z.undefined().describe('The job is done and the client had its last event'),
        ...problemResponses(401, 404, 410, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const job = await findJob(store, request.params.id, request.tenant);
      const lastEventId = request.headers['last-event-id'];
      if (isTerminal(job.status) && lastEventId !== undefined) return reply.code(204).send();
      await stream(reply, [job], { single: true });
    },
  });

  app.get('/v1/events', {
    schema: {
      operationId: 'streamJobsEvents',
      summary: 'Stream the changes of several jobs (Server-Sent Events)',
      description: `One stream for up to ${MAX_JOBS_PER_STREAM} jobs (\`job_id\` repeated), so a page showing many jobs stays under a browser's six connections per host. The events of /v1/jobs/{id}/events, each carrying its job's id; event ids are \`<job id>:<version>\`. The stream ends once every job is done.`,
      tags: ['jobs'],
      security: apiSecurity,
      querystring: z.object({ job_id: z.union([z.string(), z.array(z.string())]) }).strict(),
      response: {
        200: { description: 'The event stream', content: { 'text/event-stream': { schema: z.string() } } },
        ...problemResponses(400, 401, 404, 410, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const ids = [...new Set(Array.isArray(request.query.job_id) ? request.query.job_id : [request.query.job_id])];
      if (ids.length > MAX_JOBS_PER_STREAM || ids.some((id) => !isJobId(id))) {
        throw new HttpProblem('bad-request', `Invalid query parameter: job_id (1 to ${MAX_JOBS_PER_STREAM} job ids).`, {
          errors: [{ pointer: 'job_id', detail: `1 to ${MAX_JOBS_PER_STREAM} job ids` }],
        });
      }
      const jobs = await Promise.all(ids.map((id) => findJob(store, id, request.tenant)));
      await stream(reply, jobs, { single: false });
    },
  });

  async function stream(reply: FastifyReply, jobs: JobRecord[], { single }: { single: boolean }): Promise<void> {
    const events = openStream(reply);
    const send = (event: string, job: JobRecord, data: unknown) =>
      events.send(
        event,
        single ? data : { job_id: job.id, ...(data as object) },
        single ? String(job.version) : `${job.id}:${job.version}`,
      );
    const stops: (() => void)[] = [];
    let remaining = jobs.length;
    const end = events.end;
    try {
      const waiting = await waitingFor(store, scheduling, jobs);
      for (const [i, job] of jobs.entries()) {
        send('snapshot', job, renderJob(job, { waitingFor: waiting[i]! }));
        if (isTerminal(job.status)) {
          send('done', job, renderJob(job));
          remaining--;
        }
      }
      if (remaining === 0) return end();
      for (const job of jobs.filter((each) => !isTerminal(each.status))) {
        stops.push(await followJob(job, send, () => (--remaining === 0 ? end() : undefined)));
      }
      await events.closed;
    } catch (error) {
      // The store failed mid-stream: end it; the client reconnects (with Last-Event-ID) and resumes.
      reply.request.log.warn({ err: error }, 'event stream ended by a store error');
      end();
    } finally {
      for (const stop of stops) stop();
    }
  }

  /** Sends a job's changes (read again on every signal, at most one read per interval) until it is done. */
  async function followJob(
    initial: JobRecord,
    send: (event: string, job: JobRecord, data: unknown) => void,
    onDone: () => void,
  ): Promise<() => void> {
    let last = initial;
    let reading = false;
    let again = false;
    let stopped = false;
    const readAndSend = async () => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          const job = await store.get(initial.id);
          if (stopped) return;
          if (!job) {
            stopped = true;
            onDone(); // deleted: nothing more will come
            return;
          }
          if (job.version > last.version) {
            if (isTerminal(job.status)) {
              send('done', job, renderJob(job)); // a finished job waits for nothing
              stopped = true;
              onDone();
              return;
            }
            if (job.status !== last.status || job.attempt !== last.attempt) {
              const rendered = await render(job);
              if (stopped) return;
              send('status', job, rendered);
            } else send('progress', job, { version: job.version, progress: renderJob(job).progress });
            last = job;
          }
          await new Promise((resolve) => setTimeout(resolve, minEventIntervalMs));
        } while (again && !stopped);
      } catch {
        // A failed read is retried on the next signal.
      } finally {
        reading = false;
      }
    };
    const stop = await store.watch(initial.id, () => void readAndSend());
    void readAndSend(); // a change between the first read and the watch is not lost
    return () => {
      stopped = true;
      stop();
    };
  }
};
