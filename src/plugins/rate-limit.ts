import { createRequire } from 'node:module'
import rateLimit, { type FastifyRateLimitStore } from '@fastify/rate-limit'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type { Config } from '../config.ts'
import { RateLimitedError } from '../errors.ts'

type RedisStoreCtor = new (
  continueExceeding: boolean,
  exponentialBackoff: boolean,
  redis: Redis,
  key: string,
) => FastifyRateLimitStore

// The plugin's own Redis store (its counting script), which its typings do not export.
const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore.js') as RedisStoreCtor

const NAMESPACE = 'openai-tasks-rate-limit:'

/**
 * Says once when the shared counts stop answering and once when they answer again, with how
 * long that lasted and how many requests passed unlimited meanwhile, however many commands and
 * reconnect attempts fail in between.
 */
function outageLog(log: FastifyBaseLogger) {
  let outage: { since: number; requestsPassed: number } | undefined
  const down = (err: Error) => {
    if (!outage) {
      outage = { since: Date.now(), requestsPassed: 0 }
      log.warn({ err: { message: err.message } }, 'rate-limit store unavailable: requests pass unlimited')
    }
    return outage
  }
  return {
    /** A connection attempt or a command failed. */
    down,
    /** A count failed, so its request passed without one. */
    passedUnlimited(err: Error): void {
      down(err).requestsPassed++
    },
    /** A count answered, or the connection is ready again. */
    up(): void {
      if (!outage) return
      // At warn too, so that a log kept at warnings shows the end and the toll of the outage.
      log.warn(
        { outageMs: Date.now() - outage.since, requestsPassedUnlimited: outage.requestsPassed },
        'rate-limit store available again',
      )
      outage = undefined
    },
  }
}

type OutageLog = ReturnType<typeof outageLog>

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
        if (err) this.#outage.passedUnlimited(err)
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
    const timeout = settings.redisCommandTimeoutMs
    const redis = new Redis(settings.redisUrl, {
      lazyConnect: true,
      // Every command, the connection handshake's too, gives up after this.
      commandTimeout: timeout,
      // A frozen Redis keeps its connection open: drop one that stays silent while commands wait, or they pile up.
      socketTimeout: Math.max(1_000, 10 * timeout),
      // A command is answered now or never: not queued while disconnected, not resent after.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 2_000,
      // A peer that does not close its end of the connection in this time is not going to.
      disconnectTimeout: timeout,
      // Never give up, but retry at most a second apart, so the counts are shared again soon after Redis is.
      retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
    })
    const outage = outageLog(fastify.log)
    let closing = false
    redis.on('error', (err: Error) => {
      if (closing) return
      fastify.log.debug({ err: { message: err.message } }, 'rate-limit store connection error')
      outage.down(err)
    })
    redis.on('ready', () => outage.up())
    // Start with the shared counts when Redis is there; start anyway (and keep retrying) when not.
    await redis.connect().catch(() => undefined)
    fastify.addHook('onClose', async () => {
      closing = true
      // QUIT gives up after the command timeout too (a frozen Redis never answers it).
      await redis.quit().catch(() => redis.disconnect())
    })
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
