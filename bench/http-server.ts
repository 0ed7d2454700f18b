/**
 * The HTTP server side of the bench, run as its own process (`node --import tsx bench/http-server.ts`)
 * so that autocannon and the server do not share an event loop.
 *
 *   BENCH_SERVER_MODE=app   the real app (buildApp) on a RedisJobStore, API role (pool: null), no logger
 *   BENCH_SERVER_MODE=bare  a bare fastify: GET /hello → {hello:'world'}, POST /echo → the JSON body
 *   BENCH_SERVER_REDIS_URL, BENCH_SERVER_KEY_PREFIX  the store (app mode)
 *
 * Listens on 127.0.0.1, any free port, and prints `LISTENING <port>` on stdout; exits on SIGTERM.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { builtInHandlers, HandlerRegistry } from '../src/handlers/registry.js';
import { RedisJobStore } from '../src/store/redis-job-store.js';
import { JOB_TTL_MS } from './util.js';

const mode = process.env.BENCH_SERVER_MODE;
let app: FastifyInstance;
let close: () => Promise<void>;

if (mode === 'app') {
  const store = await RedisJobStore.connect({
    url: process.env.BENCH_SERVER_REDIS_URL ?? 'redis://127.0.0.1:6379',
    keyPrefix: process.env.BENCH_SERVER_KEY_PREFIX ?? 'bench-http',
    jobTtlMs: JOB_TTL_MS,
    connectTimeoutMs: 3000,
    commandTimeoutMs: 1000, // the service's default
  });
  app = await buildApp({ store, handlers: new HandlerRegistry(builtInHandlers), pool: null });
  close = async () => {
    await app.close();
    await store.close();
  };
} else if (mode === 'bare') {
  app = Fastify({ logger: false });
  app.get('/hello', async () => ({ hello: 'world' }));
  app.post('/echo', async (request) => request.body);
  close = () => app.close();
} else {
  throw new Error(`BENCH_SERVER_MODE must be app or bare, got ${String(mode)}`);
}

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
if (typeof address !== 'object' || address === null) throw new Error('no address');
process.stdout.write(`LISTENING ${address.port}\n`);

process.once('SIGTERM', () => {
  close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
