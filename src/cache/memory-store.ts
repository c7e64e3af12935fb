import { LRUCache } from 'lru-cache'
import type { CachedEntry, CacheStore } from './cache-store.ts'

/** A key and an entry's fields, beside its bytes: what an entry costs beyond them, rounded up. */
const ENTRY_OVERHEAD_BYTES = 256

export interface MemoryStoreOptions {
  maxBytes: number
  /** An entry was dropped to make room for others. */
  evicted?: () => void
}

/** Entries in this process, least recently used dropped first once they hold `maxBytes`. */
export class MemoryStore implements CacheStore {
  readonly #entries: LRUCache<string, CachedEntry>

  constructor({ maxBytes, evicted }: MemoryStoreOptions) {
    this.#entries = new LRUCache<string, CachedEntry>({
      maxSize: maxBytes,
      sizeCalculation: (entry) => entry.value.length + ENTRY_OVERHEAD_BYTES,
      ...(evicted && {
        dispose: (_entry: CachedEntry, _key: string, reason: LRUCache.DisposeReason) => {
          if (reason === 'evict') evicted()
        },
      }),
    })
  }

  /** Bytes the entries take, by the size calculation above. */
  get bytes(): number {
    return this.#entries.calculatedSize
  }

  get(keys: string[]): Promise<Array<CachedEntry | undefined>> {
    const now = Date.now()
    return Promise.resolve(
      keys.map((key) => {
        const entry = this.#entries.get(key)
        if (entry && entry.expiresAt <= now) {
          this.#entries.delete(key)
          return undefined
        }
        return entry
      }),
    )
  }

  set(entries: Array<{ key: string; entry: CachedEntry }>): Promise<boolean> {
    for (const { key, entry } of entries) this.#entries.set(key, entry)
    return Promise.resolve(true)
  }

  close(): Promise<void> {
    this.#entries.clear()
    return Promise.resolve()
  }
}
