import type { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { Registry } from 'prom-client'
import type { CacheSettings } from '../config.ts'
import type { Credentials } from '../credentials.ts'
import { CacheMetrics } from '../metrics/cache-metrics.ts'
import type { CallTracer } from '../tracing/model-call.ts'
import { cacheDirectives, type CacheDirectives } from './cache-control.ts'
import { cacheKey } from './cache-key.ts'
import { defaultCacheMaxBytes } from './cache-size.ts'
import { cacheStatus, type CacheOutcome, type CacheResult } from './cache-status.ts'
import { ownBuffer, ownJoined, type CachedEntry, type CacheStore } from './cache-store.ts'
import { callerScope } from './caller-scope.ts'
import { mediaEntry } from './media-entry.ts'
import { MemoryStore } from './memory-store.ts'
import { RedisStore } from './redis-store.ts'
import { copyWhileRelaying } from './relayed-copy.ts'

/** What the cache needs to know of one request. */
export interface CachedRequest {
  /** The service token's id when service tokens are on. */
  tokenId: string | undefined
  /** The caller's own key, when it spends its own. */
  credentials: Credentials | undefined
  /** The request's `Cache-Control`. */
  cacheControl: string | string[] | undefined
  /** The route caches only for a request with `max-age` (cached-tasks.ts). */
  whenAsked: boolean
  /** Sets the answer's `Cache-Status` (while its headers are not sent). */
  status: (value: string) => void
  tracer: CallTracer | undefined
}

/** One request's view of the cache, for its task: `ctx.cache`. */
export interface RequestCache {
  /**
   * Nothing is read nor stored (`no-store`, CACHE=off, a when-asked route without `max-age`): a
   * lookup reads only how many bodies there are, so a body costly to build (a digest of an
   * upload) may be left out, an empty object in its place.
   */
  readonly bypassed: boolean
  /** Looks each OpenAI request body up (one per item); a batch's answer says how many items hit. */
  lookup(bodies: object[], batch?: boolean): Promise<CacheLookup>
}

/** What an entry holds: an output's JSON text, or bytes in pieces (media-entry.ts), joined when stored. */
export type CacheOutput = string | readonly Buffer[]

export interface CacheLookup {
  /** Per body: its entry's bytes (an output's JSON as UTF-8, or what `keep` was given), or undefined: ask OpenAI. */
  readonly hits: ReadonlyArray<Buffer | undefined>
  /**
   * Keeps what OpenAI answered, per body: the output's JSON text or bytes, or undefined (an error,
   * an incomplete answer: never stored; a hit: ignored); then says in `Cache-Status` what the cache did.
   */
  keep(outputs: ReadonlyArray<CacheOutput | undefined>): Promise<void>
  /**
   * Of a single body: `body` as it is relayed to the caller, its bytes kept as a media entry of
   * `contentType` once it has ended normally within CACHE_MAX_ENTRY_BYTES; one cut short (the
   * caller hung up, OpenAI failed) is never kept. `Cache-Status` has gone with the headers by then.
   */
  keepRelayed(body: Readable, contentType: string): Readable
}

/**
 * The cache of a task's answers, per item, per caller: in memory or in Redis (CACHE, REDIS_URL).
 * Entries are keyed by caller scope, task and the whole OpenAI request body (cache-key.ts), hold
 * when they were written, and live CACHE_TTL_MS or what the request's `max-age` allows.
 */
export class TaskCache {
  readonly #settings: CacheSettings
  readonly #store: CacheStore | undefined
  readonly #metrics: CacheMetrics

  private constructor(settings: CacheSettings, store: CacheStore | undefined, metrics: CacheMetrics) {
    this.#settings = settings
    this.#store = store
    this.#metrics = metrics
  }

  /** The cache the settings describe, its metrics in `registry`; with Redis, connected (or retrying). */
  static async open(settings: CacheSettings, { log, registry }: { log: FastifyBaseLogger; registry: Registry }) {
    let memory: MemoryStore | undefined
    const metrics = new CacheMetrics(registry, () => memory?.bytes ?? 0)
    let store: CacheStore | undefined
    if (settings.store === 'memory') {
      const maxBytes = settings.maxBytes ?? defaultCacheMaxBytes()
      log.info({ cacheMaxBytes: maxBytes, derived: settings.maxBytes === undefined }, 'cache in memory')
      store = memory = new MemoryStore({ maxBytes, evicted: () => metrics.evicted() })
    } else if (settings.store === 'redis' && settings.redisUrl) {
      store = await RedisStore.connect({
        url: settings.redisUrl,
        commandTimeoutMs: settings.redisCommandTimeoutMs,
        log,
        failed: (operation) => metrics.storeFailed(operation),
      })
    }
    return new TaskCache(settings, store, metrics)
  }

  close(): Promise<void> {
    return this.#store?.close() ?? Promise.resolve()
  }

  /** `task`'s cache for one request. */
  forRequest(task: string, request: CachedRequest): RequestCache {
    const directives = this.#store ? cacheDirectives(request.cacheControl) : undefined
    if (!directives?.store || (request.whenAsked && directives.maxAgeMs === undefined)) {
      return bypass(task, request, this.#metrics)
    }
    return new ScopedCache(task, request, directives, this.#store!, this.#settings, this.#metrics)
  }
}

/** Neither read nor stored: `no-store`, or CACHE=off. */
function bypass(task: string, request: CachedRequest, metrics: CacheMetrics): RequestCache {
  return {
    bypassed: true,
    lookup(bodies) {
      const outcome: CacheOutcome = { result: 'bypass', stored: false }
      request.status(cacheStatus(outcome))
      request.tracer?.annotate({ 'openai_tasks.cache': 'bypass' })
      metrics.request(task, 'bypass')
      metrics.items('bypass', bodies.length)
      return Promise.resolve({
        hits: new Array(bodies.length),
        keep: () => Promise.resolve(),
        keepRelayed: (body) => body,
      })
    },
  }
}

class ScopedCache implements RequestCache {
  readonly bypassed = false
  readonly #task: string
  readonly #request: CachedRequest
  readonly #directives: CacheDirectives
  readonly #store: CacheStore
  readonly #settings: CacheSettings
  readonly #metrics: CacheMetrics

  constructor(
    task: string,
    request: CachedRequest,
    directives: CacheDirectives,
    store: CacheStore,
    settings: CacheSettings,
    metrics: CacheMetrics,
  ) {
    this.#task = task
    this.#request = request
    this.#directives = directives
    this.#store = store
    this.#settings = settings
    this.#metrics = metrics
  }

  async lookup(bodies: object[], batch = false): Promise<CacheLookup> {
    const scope = callerScope(this.#request.tokenId, this.#request.credentials)
    const keys = bodies.map((body) => cacheKey(scope, this.#task, body))
    const { read, maxAgeMs } = this.#directives
    const entries = read ? await this.#store.get(keys) : []
    const now = Date.now()
    const hits: Array<Buffer | undefined> = new Array(bodies.length)
    let hitCount = 0
    let staleCount = 0
    let expiresAt = Infinity
    entries.forEach((entry, i) => {
      if (!entry) return
      const freshUntil = maxAgeMs === undefined ? entry.expiresAt : Math.min(entry.expiresAt, entry.storedAt + maxAgeMs)
      if (freshUntil < now) {
        staleCount++
        return
      }
      hits[i] = entry.value
      hitCount++
      expiresAt = Math.min(expiresAt, freshUntil)
    })
    const result = resultOf(read, bodies.length, hitCount, staleCount)
    this.#metrics.request(this.#task, result)
    this.#metrics.items('hit', hitCount)
    this.#metrics.items(read ? 'miss' : 'bypass', bodies.length - hitCount)
    const outcome: CacheOutcome = {
      result,
      stored: false,
      ttlS: result === 'hit' ? Math.max(0, Math.floor((expiresAt - now) / 1000)) : undefined,
      items: batch ? { hits: hitCount, of: bodies.length } : undefined,
    }
    this.#say(outcome)
    const keep = async (outputs: ReadonlyArray<CacheOutput | undefined>): Promise<void> => {
      if (result === 'hit') return
      outcome.stored = await this.#keep(keys, hits, outputs)
      this.#say(outcome)
    }
    return {
      hits,
      keep,
      keepRelayed: (body, contentType) => (result === 'hit' ? body : this.#keepRelayed(body, contentType, keep)),
    }
  }

  #keepRelayed(body: Readable, contentType: string, keep: (outputs: Buffer[][]) => Promise<void>): Readable {
    return copyWhileRelaying(body, this.#settings.maxEntryBytes, (chunks) => {
      if (!chunks) this.#metrics.stores('too-large', 1)
      // An empty body is no answer worth giving again.
      else if (chunks.length) keep([mediaEntry(contentType, chunks)]).catch(() => undefined)
    })
  }

  /** Stores the outputs of the items that missed; true when some were stored. */
  async #keep(
    keys: string[],
    hits: ReadonlyArray<Buffer | undefined>,
    outputs: ReadonlyArray<CacheOutput | undefined>,
  ): Promise<boolean> {
    const ttlMs = Math.min(this.#settings.ttlMs, this.#directives.maxAgeMs ?? Infinity)
    if (ttlMs <= 0) return false
    const storedAt = Date.now()
    const entries: Array<{ key: string; entry: CachedEntry }> = []
    let tooLarge = 0
    outputs.forEach((output, i) => {
      if (output === undefined || hits[i] !== undefined) return
      const value = entryValue(output, this.#settings.maxEntryBytes)
      if (!value) {
        tooLarge++
        return
      }
      entries.push({ key: keys[i]!, entry: { value, storedAt, expiresAt: storedAt + ttlMs } })
    })
    this.#metrics.stores('too-large', tooLarge)
    if (!entries.length) return false
    const stored = await this.#store.set(entries)
    this.#metrics.stores(stored ? 'stored' : 'dropped', entries.length)
    return stored
  }

  #say(outcome: CacheOutcome): void {
    this.#request.status(cacheStatus(outcome))
    this.#request.tracer?.annotate({
      'openai_tasks.cache': outcome.result,
      ...(outcome.items && {
        'openai_tasks.cache.hits': outcome.items.hits,
        'openai_tasks.cache.items': outcome.items.of,
      }),
    })
  }
}

/** An output's bytes in a buffer of their own; undefined when they are over `maxBytes`. */
function entryValue(output: CacheOutput, maxBytes: number): Buffer | undefined {
  if (typeof output !== 'string') {
    const bytes = output.reduce((sum, piece) => sum + piece.length, 0)
    return bytes > maxBytes ? undefined : ownJoined(output, bytes)
  }
  // No fewer bytes than characters: most answers too large are known before they are copied.
  const value = output.length > maxBytes ? undefined : ownBuffer(output)
  return value && value.length <= maxBytes ? value : undefined
}

function resultOf(read: boolean, items: number, hits: number, stale: number): CacheResult {
  if (!read) return 'refresh'
  if (hits > 0) return hits === items ? 'hit' : 'partial'
  return stale > 0 && stale === items ? 'stale' : 'miss'
}
