import type { FastifyReply } from 'fastify'

/** The answer header that says what the cache did (RFC 9211). */
export const CACHE_STATUS_HEADER = 'cache-status'
/** The cache's name in it. */
const CACHE_NAME = 'openai-tasks'

/**
 * What the cache did with a request, also the `result` label of its metric:
 * - `hit`: every item came from the cache;
 * - `partial`: some items did, the others went to OpenAI;
 * - `miss`: none was cached;
 * - `stale`: entries were there, but older than the request's `max-age` allowed;
 * - `refresh`: the request said `no-cache`, so nothing was read;
 * - `bypass`: nothing read nor stored (`no-store`, or `CACHE=off`).
 */
export type CacheResult = 'hit' | 'partial' | 'miss' | 'stale' | 'refresh' | 'bypass'

/** RFC 9211's `fwd` reason for each result that went to OpenAI. */
const FORWARD_REASONS: Record<Exclude<CacheResult, 'hit'>, string> = {
  partial: 'partial',
  miss: 'miss',
  stale: 'stale',
  refresh: 'request',
  bypass: 'bypass',
}

export interface CacheOutcome {
  result: CacheResult
  /** Some answer was stored. */
  stored: boolean
  /** Of a hit: seconds until the earliest of its entries expires for this request. */
  ttlS?: number | undefined
  /** Of a batch: items answered from the cache, of the items looked up. */
  items?: { hits: number; of: number } | undefined
}

/**
 * `openai-tasks; hit; ttl=3600`, `openai-tasks; fwd=miss; stored`, a batch's
 * `openai-tasks; fwd=partial; stored; detail="4 of 10 items"`: one member of RFC 9211's list.
 */
export function cacheStatus({ result, stored, ttlS, items }: CacheOutcome): string {
  let value = result === 'hit' ? `${CACHE_NAME}; hit` : `${CACHE_NAME}; fwd=${FORWARD_REASONS[result]}`
  if (result === 'hit' && ttlS !== undefined) value += `; ttl=${ttlS}`
  if (stored) value += '; stored'
  if (items) value += `; detail="${items.hits} of ${items.of} items"`
  return value
}

/** Sets the answer's `Cache-Status`, while its headers are not sent yet. */
export function cacheStatusHeader(reply: FastifyReply): (value: string) => void {
  return (value) => {
    if (!reply.raw.headersSent) reply.header(CACHE_STATUS_HEADER, value)
  }
}
