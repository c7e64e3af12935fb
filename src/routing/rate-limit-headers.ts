import type { IncomingHttpHeaders } from 'node:http'
import { retryAfterMsFrom } from '../upstream/upstream-errors.ts'

type Headers = IncomingHttpHeaders

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 1e-3, µs: 1e-3, ns: 1e-6 }
const DURATION_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g
const DURATION = /^(?:\d+(?:\.\d+)?(?:h|ms|m|s|us|µs|ns))+$/
const SECONDS = /^\d+(?:\.\d+)?$/

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name]
  const first = Array.isArray(value) ? value[0] : value
  return first?.trim() || undefined
}

/**
 * Milliseconds in a reset header: OpenAI writes Go durations (`6m0s`, `1s`, `20ms`), Azure and
 * others bare seconds; undefined for anything else (Azure's `-1`, garbage).
 */
export function durationMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (SECONDS.test(value)) return Number(value) * 1000
  if (!DURATION.test(value)) return undefined
  let ms = 0
  for (const [, amount, unit] of value.matchAll(DURATION_PART)) ms += Number(amount) * UNIT_MS[unit!]!
  return ms
}

/** The longer of the request and token windows' resets, when the answer gives one. */
function resetMs(headers: Headers): number | undefined {
  const requests = durationMs(header(headers, 'x-ratelimit-reset-requests'))
  const tokens = durationMs(header(headers, 'x-ratelimit-reset-tokens'))
  if (requests === undefined) return tokens
  return tokens === undefined ? requests : Math.max(requests, tokens)
}

/** How long a 429 says its deployment cannot be used; undefined when it says nothing. */
export function rateLimitedForMs(headers: Headers): number | undefined {
  return retryAfterMsFrom(headers) ?? resetMs(headers)
}

/**
 * How long a successful answer says its deployment has nothing left (`x-ratelimit-remaining-*`
 * at 0) until its window resets; undefined while it has some.
 */
export function exhaustedForMs(headers: Headers): number | undefined {
  let wait: number | undefined
  if (header(headers, 'x-ratelimit-remaining-requests') === '0') {
    wait = durationMs(header(headers, 'x-ratelimit-reset-requests')) ?? 0
  }
  if (header(headers, 'x-ratelimit-remaining-tokens') === '0') {
    wait = Math.max(wait ?? 0, durationMs(header(headers, 'x-ratelimit-reset-tokens')) ?? 0)
  }
  return wait
}
