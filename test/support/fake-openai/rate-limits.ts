// The rate limits a test scripts: `x-ratelimit-*` headers on answers, a share of calls and a period answered 429.
import { pathMatches } from './request.ts'
import type { RateLimitedShare, RateLimitHeaders } from './types.ts'

/** A duration as Go prints one, as OpenAI writes its resets: '0s', '20ms', '1s', '1.5s', '6m0s', '1h0m0s'. */
export function goDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms))
  if (total === 0) return '0s'
  if (total < 1000) return `${total}ms`
  const hours = Math.floor(total / 3_600_000)
  const minutes = Math.floor((total % 3_600_000) / 60_000)
  const seconds = String((total % 60_000) / 1000)
  return `${hours ? `${hours}h` : ''}${hours || minutes ? `${minutes}m` : ''}${seconds}s`
}

/** The headers for what is set; a reset given in milliseconds is written as a Go duration. */
export function rateLimitHeaders(limits: RateLimitHeaders): Record<string, string> {
  const values = {
    'x-ratelimit-limit-requests': limits.limitRequests,
    'x-ratelimit-remaining-requests': limits.remainingRequests,
    'x-ratelimit-reset-requests': limits.resetRequests,
    'x-ratelimit-limit-tokens': limits.limitTokens,
    'x-ratelimit-remaining-tokens': limits.remainingTokens,
    'x-ratelimit-reset-tokens': limits.resetTokens,
  }
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue
    headers[name] = typeof value === 'number' && name.includes('-reset-') ? goDuration(value) : String(value)
  }
  return headers
}

/** A call the scripted limits answer 429: for how long it says to wait, and the headers a test added. */
export interface RateLimitHit {
  retryAfterMs: number
  headers: Record<string, string>
}

function checkShare(share: RateLimitedShare): void {
  const { of, limited = 1, retryAfterSeconds = 1 } = share
  const whole = (n: number): boolean => Number.isInteger(n) && n >= 0
  if (!whole(of) || of < 1 || !whole(limited) || limited > of || !(retryAfterSeconds >= 0)) {
    throw new Error(`fake-openai: a rate-limited share needs 0 <= limited <= of, whole numbers (got ${limited}/${of})`)
  }
}

/** What is scripted: the headers on successful answers, a share of calls, a period when every call is refused. */
export class RateLimits {
  /** The `x-ratelimit-*` headers every successful answer carries, if set. */
  headers: Record<string, string> | undefined
  #share: RateLimitedShare | undefined
  #shareCalls = 0
  #until = 0
  #periodHeaders: Record<string, string> = {}

  setHeaders(limits: RateLimitHeaders | undefined): void {
    this.headers = limits ? rateLimitHeaders(limits) : undefined
  }

  /** Start counting anew with this share (undefined: no more 429s by share). */
  setShare(share: RateLimitedShare | undefined): void {
    if (share) checkShare(share)
    this.#share = share
    this.#shareCalls = 0
  }

  /** Every call gets a 429 for the next `ms` (0 ends a period early). */
  limitFor(ms: number, headers: Record<string, string> = {}): void {
    this.#until = Date.now() + Math.max(0, ms)
    this.#periodHeaders = headers
  }

  /** Whether this call is answered 429: during a period, else when its turn in the share comes. */
  take(pathname: string, now = Date.now()): RateLimitHit | undefined {
    if (now < this.#until) return { retryAfterMs: this.#until - now, headers: this.#periodHeaders }
    const share = this.#share
    if (!share || (share.path !== undefined && !pathMatches(share.path, pathname))) return undefined
    // Call n (from 0) is refused when floor(n * limited / of) steps up: `limited` of every `of`, evenly.
    const n = this.#shareCalls++
    const limited = share.limited ?? 1
    if (Math.floor(((n + 1) * limited) / share.of) === Math.floor((n * limited) / share.of)) return undefined
    return { retryAfterMs: (share.retryAfterSeconds ?? 1) * 1000, headers: share.headers ?? {} }
  }

  /** Forget what happened (the share's count, a period under way); what is set stays. */
  reset(): void {
    this.#shareCalls = 0
    this.#until = 0
  }
}
