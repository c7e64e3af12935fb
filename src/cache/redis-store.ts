import type { FastifyBaseLogger } from 'fastify'
import { outageLog, type OutageLog } from '../redis/outage-log.ts'
import { connectRedis, type WatchedRedis } from '../redis/redis-client.ts'
import type { CachedEntry, CacheStore } from './cache-store.ts'
import { decodeEntry, encodeEntry } from './entry-codec.ts'

/** Every key the cache writes in Redis starts with this. */
export const REDIS_NAMESPACE = 'openai-tasks-cache:'

export interface RedisStoreOptions {
  url: string
  commandTimeoutMs: number
  log: FastifyBaseLogger
  /** A command failed or timed out. */
  failed?: (operation: 'get' | 'set') => void
}

/**
 * Entries in Redis, shared by every replica: one MGET per lookup, one pipeline of SET … PX per
 * store. A Redis that sends nothing for the command timeout makes a lookup all misses and drops
 * the store (a reply of megabytes still arriving is not silence); a lookup that failed skips the
 * store after it, so a request waits for a frozen Redis once at most. One warning as an outage
 * starts, one as it ends.
 */
export class RedisStore implements CacheStore {
  readonly #connection: WatchedRedis
  readonly #outage: OutageLog
  readonly #failed: ((operation: 'get' | 'set') => void) | undefined

  private constructor(connection: WatchedRedis, outage: OutageLog, failed: RedisStoreOptions['failed']) {
    this.#connection = connection
    this.#outage = outage
    this.#failed = failed
  }

  static async connect({ url, commandTimeoutMs, log, failed }: RedisStoreOptions): Promise<RedisStore> {
    const outage = outageLog(log, {
      store: 'cache store',
      meanwhile: 'lookups miss and stores are dropped',
      counted: 'operationsMissed',
    })
    // A batch's replies run to megabytes: silence, not their length, says Redis is out.
    const timeouts = { silenceMs: commandTimeoutMs, longestMs: Math.max(1_000, 10 * commandTimeoutMs) }
    const connection = await connectRedis(url, timeouts, { log, outage, name: 'cache store' })
    return new RedisStore(connection, outage, failed)
  }

  async get(keys: string[]): Promise<Array<CachedEntry | undefined>> {
    try {
      const { redis, answered } = this.#connection
      const raws = await answered(redis.mgetBuffer(...keys.map((key) => REDIS_NAMESPACE + key)))
      this.#outage.up()
      const now = Date.now()
      return raws.map((raw) => {
        const entry = decodeEntry(raw)
        return entry && entry.expiresAt > now ? entry : undefined
      })
    } catch (err) {
      this.#fail('get', err as Error)
      return keys.map(() => undefined)
    }
  }

  async set(entries: Array<{ key: string; entry: CachedEntry }>): Promise<boolean> {
    // Known to be out (a lookup just failed, or the connection is down): not another wait.
    if (!this.#outage.available) return false
    const pipeline = this.#connection.redis.pipeline()
    for (const { key, entry } of entries) {
      pipeline.set(REDIS_NAMESPACE + key, encodeEntry(entry), 'PX', Math.max(1, entry.expiresAt - entry.storedAt))
    }
    try {
      const results = (await this.#connection.answered(pipeline.exec())) ?? []
      const failure = results.find(([err]) => err)?.[0]
      if (failure) throw failure
      this.#outage.up()
      return true
    } catch (err) {
      this.#fail('set', err as Error)
      return false
    }
  }

  close(): Promise<void> {
    return this.#connection.close()
  }

  #fail(operation: 'get' | 'set', err: Error): void {
    this.#failed?.(operation)
    this.#outage.missed(err)
  }
}
