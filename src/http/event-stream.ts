import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Most jobs one event stream follows (GET /v1/events, GET /admin/events): a page of jobs fits in one. */
export const MAX_JOBS_PER_STREAM = 50;

/** One open Server-Sent Events response. */
export interface EventStream {
  readonly open: boolean;
  /** Writes one event (nothing once the stream is closed). */
  send: (event: string, data: unknown, id?: string) => void;
  /** Ends the stream (idempotent). */
  end: () => void;
  /** Settles when the connection closes, whoever closed it. */
  readonly closed: Promise<void>;
}

/**
 * Opens event streams for the routes of `fastify`: headers that keep proxies from buffering, `: ping`
 * comments every `pingIntervalMs`, and every stream still open ended when the server closes (open streams
 * never end by themselves, so closing the server would otherwise wait for them; clients reconnect).
 */
export function eventStreams(fastify: FastifyInstance, pingIntervalMs: number): (reply: FastifyReply) => EventStream {
  const openStreams = new Set<() => void>();
  fastify.addHook('preClose', async () => {
    for (const end of openStreams) end();
  });
  return (reply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as OutgoingHttpHeaders), // what hooks set before the stream took over (CORS)
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': String(reply.request.id),
    });
    // A HEAD gets the headers and nothing else (a stream never ends by itself, and Node sends a HEAD's headers only at its end).
    const head = reply.request.method === 'HEAD';
    if (head) raw.end();
    let open = !head;
    const ping = setInterval(() => open && raw.write(': ping\n\n'), pingIntervalMs);
    const forget = () => {
      open = false;
      openStreams.delete(end);
      clearInterval(ping);
    };
    const end = () => {
      const wasOpen = open;
      forget();
      if (wasOpen) raw.end();
    };
    openStreams.add(end);
    const closed = new Promise<void>((resolve) => raw.once('close', () => (forget(), resolve())));
    return {
      get open() {
        return open;
      },
      send: (event, data, id) => {
        if (open)
          raw.write(`event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
      },
      end,
      closed,
    };
  };
}
