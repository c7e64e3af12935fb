import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'
import type { OutageLog } from './outage-log.ts'
import { silenceDeadline } from './silence-deadline.ts'

export interface WatchedRedis {
  redis: Redis
  /** A command of `redis`, failed once Redis has been silent for `silenceMs` while it waited. */
  answered<T>(command: Promise<T>): Promise<T>
  /** QUIT, or a disconnect when Redis does not answer it. */
  close(): Promise<void>
}

export interface RedisTimeouts {
  /** A command waits at most this long for Redis to send anything (REDIS_COMMAND_TIMEOUT_MS). */
  silenceMs: number
  /**
   * Every command's own timeout; unset: `silenceMs`. Longer for commands whose replies are large
   * (the cache's), which go through `answered` so that silence still ends them soon.
   */
  longestMs?: number
}

/**
 * A Redis connection for a store that must never hold a request up: every command is answered
 * within its timeout or fails, none is queued while disconnected, and `outage` hears of every
 * connection error and every reconnection. Connected when this resolves if Redis is there;
 * otherwise it keeps retrying in the background.
 */
export async function connectRedis(
  url: string,
  { silenceMs, longestMs = silenceMs }: RedisTimeouts,
  { log, outage, name }: { log: FastifyBaseLogger; outage: OutageLog; name: string },
): Promise<WatchedRedis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    // Every command, the connection handshake's too, gives up after this.
    commandTimeout: longestMs,
    // A frozen Redis keeps its connection open: drop one that stays silent while commands wait, or they pile up.
    socketTimeout: Math.max(1_000, 10 * silenceMs),
    // A command is answered now or never: not queued while disconnected, not resent after.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 2_000,
    // A peer that does not close its end of the connection in this time is not going to.
    disconnectTimeout: silenceMs,
    // Never give up, but retry at most a second apart, so the store is shared again soon after Redis is.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  })
  const answered = silenceDeadline(redis, silenceMs)
  let closing = false
  redis.on('error', (err: Error) => {
    if (closing) return
    log.debug({ err: { message: err.message } }, `${name} connection error`)
    outage.down(err)
  })
  redis.on('ready', () => outage.up())
  // Start with the shared store when Redis is there; start anyway (and keep retrying) when not.
  await redis.connect().catch(() => undefined)
  return {
    redis,
    answered,
    close: async () => {
      closing = true
      // QUIT gives up after the command timeout too (a frozen Redis never answers it).
      await redis.quit().catch(() => redis.disconnect())
    },
  }
}
