import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpProblem } from '../errors.js';
import { ADMIN_STATS_INTERVAL_MS, EVENT_STREAM_PING_INTERVAL_MS } from '../config.js';
import { eventStreams, MAX_JOBS_PER_STREAM } from '../http/event-stream.js';
import type { SchedulingOf } from '../job-types/type-scheduling.js';
import { isJobId } from '../jobs/job-id.js';
import { renderAdminJob, waitingFor } from './job-view.js';
import type { JobStore } from '../store/job-store.js';
import type { WorkerPool } from '../worker/worker-pool.js';
import { adminStats } from './admin.js';
import { adminSecurity, problemResponses } from './schemas.js';

type AdminStats = Awaited<ReturnType<typeof adminStats>>;

export interface AdminEventRoutesOptions {
  store: JobStore;
  pool: WorkerPool | null;
  /** Each type's scheduling settings: a job's waiting_for. */
  scheduling: SchedulingOf;
  /** How often the queue statistics are read for a stream (sent only when they changed). Default ADMIN_STATS_INTERVAL_MS. */
  statsIntervalMs?: number;
  pingIntervalMs?: number;
}

/**
 * What the dashboard listens to instead of polling: `stats` (the GET /admin/stats body) whenever the
 * counts change, and `job` (the AdminJob) whenever one of the watched jobs (`job_id`, up to 50) changes, or
 * `gone` ({id}) once it is deleted. The stream stays open until the client leaves or the service shuts down.
 */
export const adminEventRoutes: FastifyPluginAsync<AdminEventRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { store, pool, scheduling } = options;
  const statsIntervalMs = options.statsIntervalMs ?? ADMIN_STATS_INTERVAL_MS;
  const pingIntervalMs = options.pingIntervalMs ?? EVENT_STREAM_PING_INTERVAL_MS;
  const openStream = eventStreams(fastify, pingIntervalMs);

  // Counts without the pool's own counters, which move with every job and would make every read a change.
  const countsOf = (stats: AdminStats) => JSON.stringify({ ...stats, pool: undefined });
  // One read of the statistics per interval, however many streams are open; each hears only changes.
  const statsListeners = new Set<(stats: AdminStats, counts: string) => void>();
  let statsTimer: NodeJS.Timeout | undefined;
  let reading = false;
  const followStats = (listener: (stats: AdminStats, counts: string) => void): (() => void) => {
    statsListeners.add(listener);
    statsTimer ??= setInterval(() => {
      if (reading) return;
      reading = true;
      adminStats(store, pool)
        .then((stats) => {
          const counts = countsOf(stats);
          for (const each of statsListeners) each(stats, counts);
        })
        .catch(() => undefined) // the store is down for now: the next read tries again
        .finally(() => (reading = false));
    }, statsIntervalMs);
    return () => {
      statsListeners.delete(listener);
      if (statsListeners.size > 0) return;
      clearInterval(statsTimer);
      statsTimer = undefined;
    };
  };

  app.get('/admin/events', {
    config: { adminRole: 'viewer' },
    schema: {
      operationId: 'adminStreamEvents',
      summary: 'Live queue statistics and job changes (Server-Sent Events)',
      description: `Events: \`stats\` (the GET /admin/stats body) at once and whenever the counts change (read every ${statsIntervalMs / 1000} s), \`job\` (an AdminJob) at once and on every change of each \`job_id\` (up to ${MAX_JOBS_PER_STREAM}), \`gone\` ({id}) when one is deleted. \`: ping\` every ${pingIntervalMs / 1000} s. With the dashboard's session cookie, an EventSource opens it as is.`,
      tags: ['admin'],
      security: adminSecurity,
      querystring: z.object({ job_id: z.union([z.string(), z.array(z.string())]).optional() }).strict(),
      response: {
        200: { description: 'The event stream', content: { 'text/event-stream': { schema: z.string() } } },
        ...problemResponses(400, 401, 403, 503),
      },
    },
    handler: async (request, reply) => {
      const ids = request.query.job_id === undefined ? [] : [...new Set([request.query.job_id].flat())];
      if (ids.length > MAX_JOBS_PER_STREAM || ids.some((id) => !isJobId(id))) {
        throw new HttpProblem(
          'bad-request',
          `Invalid query parameter: job_id (at most ${MAX_JOBS_PER_STREAM} job ids).`,
          {
            errors: [{ pointer: 'job_id', detail: `at most ${MAX_JOBS_PER_STREAM} job ids` }],
          },
        );
      }
      const firstStats = await adminStats(store, pool); // a store that is down answers 503 before the stream opens
      const events = openStream(reply);
      const stops: (() => void)[] = [];
      // What to undo when the client leaves; anything set up after that is undone at once.
      const onClose = (stop: () => void) => (events.open ? stops.push(stop) : stop());
      void events.closed.then(() => {
        for (const stop of stops) stop();
      });

      let lastStats = countsOf(firstStats);
      events.send('stats', firstStats);
      onClose(
        followStats((stats, counts) => {
          if (counts === lastStats) return;
          lastStats = counts;
          events.send('stats', stats);
        }),
      );

      for (const id of ids) {
        let lastVersion = -1;
        let busy = false;
        let again = false;
        const readAndSend = async (): Promise<void> => {
          if (busy) {
            again = true;
            return;
          }
          busy = true;
          try {
            do {
              again = false;
              const job = await store.get(id);
              if (!job) {
                if (lastVersion !== 0) events.send('gone', { id });
                lastVersion = 0;
              } else if (job.version !== lastVersion) {
                const [waiting] = await waitingFor(store, scheduling, [job]);
                lastVersion = job.version;
                events.send('job', renderAdminJob(job, waiting!));
              }
            } while (again && events.open);
          } catch {
            // read again on the next change
          } finally {
            busy = false;
          }
        };
        try {
          onClose(await store.watch(id, () => void readAndSend()));
        } catch {
          // no live changes for this one; its first state is still sent
        }
        await readAndSend();
      }
    },
  });
};
