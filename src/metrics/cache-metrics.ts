import { Counter, Gauge, type Registry } from 'prom-client'
import type { CacheResult } from '../cache/cache-status.ts'

/** What became of one item of a request: answered from the cache, looked up in vain, or never looked up. */
export type ItemResult = 'hit' | 'miss' | 'bypass'
/** What became of an answer the cache was given to keep. */
export type StoreResult = 'stored' | 'too-large' | 'dropped'

/** The cache's Prometheus metrics, in the service's registry; every label takes a few fixed values. */
export class CacheMetrics {
  readonly #requests: Counter<'task' | 'result'>
  readonly #items: Counter<'result'>
  readonly #stores: Counter<'result'>
  readonly #evictions: Counter
  readonly #errors: Counter<'operation'>

  /** `bytes` reads what the in-memory store holds now (0 for Redis, whose memory is its own). */
  constructor(registry: Registry, bytes: () => number) {
    const registers = [registry]
    this.#requests = new Counter({
      name: 'openai_tasks_cache_requests_total',
      help: 'Requests of a cached task, by task and what the cache did: hit, partial, miss, stale, refresh, bypass',
      labelNames: ['task', 'result'],
      registers,
    })
    this.#items = new Counter({
      name: 'openai_tasks_cache_items_total',
      help: 'Embedding items, by result: hit (from the cache), miss (looked up, sent to OpenAI), bypass (not looked up)',
      labelNames: ['result'],
      registers,
    })
    this.#stores = new Counter({
      name: 'openai_tasks_cache_stores_total',
      help: 'Answers given to the cache to keep, by result: stored, too-large (over CACHE_MAX_ENTRY_BYTES), dropped (Redis out)',
      labelNames: ['result'],
      registers,
    })
    this.#evictions = new Counter({
      name: 'openai_tasks_cache_evictions_total',
      help: 'Entries the in-memory cache dropped to stay within CACHE_MAX_BYTES',
      registers,
    })
    this.#errors = new Counter({
      name: 'openai_tasks_cache_store_errors_total',
      help: 'Redis commands of the cache that failed or timed out, by operation: get, set',
      labelNames: ['operation'],
      registers,
    })
    // eslint-disable-next-line no-new -- registers itself; read through the registry only
    new Gauge({
      name: 'openai_tasks_cache_bytes',
      help: 'Bytes the in-memory cache holds (answers and their keys)',
      registers,
      collect() {
        this.set(bytes())
      },
    })
  }

  request(task: string, result: CacheResult): void {
    this.#requests.inc({ task, result })
  }

  items(result: ItemResult, count: number): void {
    if (count) this.#items.inc({ result }, count)
  }

  stores(result: StoreResult, count: number): void {
    if (count) this.#stores.inc({ result }, count)
  }

  evicted(): void {
    this.#evictions.inc()
  }

  storeFailed(operation: 'get' | 'set'): void {
    this.#errors.inc({ operation })
  }
}
