import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type { Config } from '../config.ts'
import { RateLimitedError } from '../errors.ts'

/**
 * Per-client request limits (client = service token, or IP without auth) for the routes of the
 * scope it is registered in: in memory, or in Redis when REDIS_URL is set so that every replica
 * shares the counts. When Redis is unreachable requests pass rather than fail (skipOnError).
 */
async function rateLimitPlugin(fastify: FastifyInstance, { rateLimit: settings }: Pick<Config, 'rateLimit'>): Promise<void> {
  if (settings.max === 0) return
  let redis: Redis | undefined
  if (settings.redisUrl) {
    redis = new Redis(settings.redisUrl, {
      connectTimeout: 2_000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: true,
    })
    redis.on('error', (err) => fastify.log.warn({ err: { message: err.message } }, 'rate-limit store unavailable'))
    // Start with the shared counts when Redis is there; start anyway (and keep retrying) when not.
    await redis.connect().catch(() => undefined)
    fastify.addHook('onClose', async () => {
      await redis?.quit().catch(() => redis?.disconnect())
    })
  }
  await fastify.register(rateLimit, {
    max: settings.max,
    timeWindow: settings.windowMs,
    keyGenerator: (request) => request.clientId,
    nameSpace: 'openai-tasks-rate-limit:',
    enableDraftSpec: true,
    skipOnError: true,
    ...(redis && { redis }),
    errorResponseBuilder: (_request, context) =>
      Object.assign(new RateLimitedError(`at most ${context.max} requests per ${context.after}`), {
        statusCode: context.statusCode,
        details: [{ message: `limit ${context.max} per window; retry in ${context.after}` }],
      }),
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit' })
