/** What a request's `Cache-Control` asks of the cache. */
export interface CacheDirectives {
  /** Entries may answer it (not `no-cache`, not `no-store`). */
  read: boolean
  /** Its answers may be stored (not `no-store`). */
  store: boolean
  /** `max-age`: only entries at most this old answer it, and what it stores lives no longer. */
  maxAgeMs: number | undefined
}

export const DEFAULT_DIRECTIVES: CacheDirectives = { read: true, store: true, maxAgeMs: undefined }

// RFC 9111's delta-seconds; larger values are taken as this (its section 1.2.2 says 2^31).
const MAX_DELTA_SECONDS = 2_147_483_648
const DIRECTIVE = /^\s*([A-Za-z-]+)\s*(?:=\s*(?:"([^"]*)"|([^\s,]*)))?\s*$/

/**
 * The request directives of RFC 9111 the cache honours: `no-store`, `no-cache`, `max-age=N`.
 * Others (`max-stale`, `min-fresh`, `only-if-cached`) and malformed ones are ignored.
 */
export function cacheDirectives(header: string | string[] | undefined): CacheDirectives {
  if (header === undefined || header === '') return DEFAULT_DIRECTIVES
  const directives = { ...DEFAULT_DIRECTIVES }
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const match = DIRECTIVE.exec(part)
    if (!match) continue
    const name = match[1]!.toLowerCase()
    if (name === 'no-store') directives.store = directives.read = false
    else if (name === 'no-cache') directives.read = false
    else if (name === 'max-age') {
      const value = match[2] ?? match[3] ?? ''
      if (!/^\d+$/.test(value)) continue
      const ms = Math.min(Number(value), MAX_DELTA_SECONDS) * 1000
      // Two max-ages: the stricter one.
      directives.maxAgeMs = Math.min(directives.maxAgeMs ?? Infinity, ms)
    }
  }
  return directives
}
