import { createRequire } from 'node:module'
import rateLimit, { type FastifyRateLimitStore } from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { Config } from '../config.ts'
import { RateLimitedError } from '../errors.ts'
import { outageLog, type OutageLog } from '../redis/outage-log.ts'
import { connectRedis } from '../redis/redis-client.ts'

type RedisStoreCtor = new (
  continueExceeding: boolean,
  exponentialBackoff: boolean,
  redis: Redis,
  key: string,
) => FastifyRateLimitStore

// The plugin's own Redis store (its counting script), which its typings do not export.
const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore.js') as RedisStoreCtor

const NAMESPACE = 'openai-tasks-rate-limit:'

/** A store that tells `outage` of every count that failed (the request then passes) or answered. */
class WatchedStore implements FastifyRateLimitStore {
  readonly #store: FastifyRateLimitStore
  readonly #outage: OutageLog

  constructor(store: FastifyRateLimitStore, outage: OutageLog) {
    this.#store = store
    this.#outage = outage
  }

  incr(...[key, callback, timeWindow, max]: Parameters<FastifyRateLimitStore['incr']>): void {
    this.#store.incr(
      key,
      (err, result) => {
        if (err) this.#outage.missed(err)
        else this.#outage.up()
        callback(err, result)
      },
      timeWindow,
      max,
    )
  }

  child(routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
    return new WatchedStore(this.#store.child(routeOptions), this.#outage)
  }
}

/**
 * Per-client request limits (client = service token, or IP without auth) for the routes of the
 * scope it is registered in: in memory, or in Redis when REDIS_URL is set so that every replica
 * shares the counts. When Redis is unreachable or does not answer within the command timeout,
 * requests pass rather than fail or wait (skipOnError).
 */
async function rateLimitPlugin(
  fastify: FastifyInstance,
  { rateLimit: settings }: Pick<Config, 'rateLimit'>,
): Promise<void> {
  if (settings.max === 0) return
  let store: (new () => FastifyRateLimitStore) | undefined
  if (settings.redisUrl) {
    const outage = outageLog(fastify.log, {
      store: 'rate-limit store',
      meanwhile: 'requests pass unlimited',
      counted: 'requestsPassedUnlimited',
    })
    const { redis, close } = await connectRedis(
      settings.redisUrl,
      { silenceMs: settings.redisCommandTimeoutMs },
      {
        log: fastify.log,
        outage,
        name: 'rate-limit store',
      },
    )
    fastify.addHook('onClose', close)
    store = class extends WatchedStore {
      constructor() {
        super(new RedisStore(false, false, redis, NAMESPACE), outage)
      }
    }
  }
  await fastify.register(rateLimit, {
    max: settings.max,
    timeWindow: settings.windowMs,
    keyGenerator: (request) => request.clientId,
    enableDraftSpec: true,
    skipOnError: true,
    ...(store && { store }),
    errorResponseBuilder: (_request, context) =>
      Object.assign(new RateLimitedError(`at most ${context.max} requests per ${context.after}`), {
        statusCode: context.statusCode,
        details: [{ message: `limit ${context.max} per window; retry in ${context.after}` }],
      }),
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit' })
