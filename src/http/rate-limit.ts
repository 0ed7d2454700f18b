import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpProblem } from '../errors.js';
import type { RedisClient } from '../redis/redis-client.js';

/** Conditional polls (If-None-Match) are cheap to answer and expected often: their own, larger budget. */
const POLL_BUDGET_FACTOR = 10;
const WINDOW_MS = 60_000;

const isConditionalPoll = (request: FastifyRequest): boolean =>
  request.method === 'GET' && request.headers['if-none-match'] !== undefined;

/** Where the counts live when they are shared by every instance: a Redis client and the prefix of the keys to count under. */
export interface RateLimitRedis {
  client: RedisClient;
  keyPrefix: string;
}

/**
 * Requests per minute per API key's tenant (per client address when the API is open), counted in Redis
 * when `redis` is given (the composition root gives it when the jobs are in Redis), so the limit holds
 * across instances; in this process otherwise. Answers carry RateLimit-Policy and RateLimit (IETF draft)
 * headers; over the limit, 429 with Retry-After. A Redis outage lets requests through rather than refuse them.
 */
export async function registerRateLimit(
  scope: FastifyInstance,
  perMinute: number,
  redis?: RateLimitRedis,
): Promise<void> {
  await scope.register(fastifyRateLimit, {
    global: true,
    timeWindow: WINDOW_MS,
    max: (_request, key) => (key.endsWith(':poll') ? perMinute * POLL_BUDGET_FACTOR : perMinute),
    keyGenerator: (request) =>
      `${request.tenant !== '-' ? `tenant:${request.tenant}` : `ip:${request.ip}`}${isConditionalPoll(request) ? ':poll' : ''}`,
    ...(redis ? { redis: redis.client, nameSpace: redis.keyPrefix } : {}),
    skipOnError: true,
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) =>
      new HttpProblem(
        'rate-limited',
        `More than ${context.max} requests in a minute; retry in ${Math.ceil(context.ttl / 1000)} s.`,
        {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
        },
      ),
  });
  // The combined draft headers, from the per-field ones the plugin sets.
  scope.addHook('onSend', async (_request, reply) => {
    const limit = reply.getHeader('ratelimit-limit');
    if (limit === undefined) return;
    const remaining = reply.getHeader('ratelimit-remaining');
    const reset = reply.getHeader('ratelimit-reset');
    reply.header('ratelimit-policy', `${String(limit)};w=${WINDOW_MS / 1000}`);
    reply.header('ratelimit', `limit=${String(limit)}, remaining=${String(remaining)}, reset=${String(reset)}`);
  });
}
