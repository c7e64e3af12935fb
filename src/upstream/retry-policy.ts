import type { Dispatcher } from 'undici'
import { retryAfterMsFrom } from './upstream-errors.ts'

export interface RetryOptions {
  max: number
  baseDelayMs: number
  maxDelayMs: number
}

/** Failures before OpenAI took the request, or that it asks us to retry. */
const RETRYABLE_TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
])

/**
 * How long to wait before trying again after this answer, or undefined to give up. Follows
 * OpenAI's `x-should-retry` when present; 429 and 5xx are retried, other statuses never.
 * A `Retry-After` longer than the cap is not waited for: the caller gets the 429 with it.
 */
export function retryDelayForResponse(
  res: Dispatcher.ResponseData,
  attempt: number,
  options: RetryOptions,
): number | undefined {
  if (attempt >= options.max) return undefined
  const shouldRetry = res.headers['x-should-retry']
  if (shouldRetry === 'false') return undefined
  if (shouldRetry !== 'true' && res.statusCode !== 429 && res.statusCode < 500) return undefined
  const ms = retryAfterMsFrom(res.headers)
  if (ms === undefined) return backoff(attempt, options)
  return ms <= options.maxDelayMs ? ms : undefined
}

export function retryDelayForTransport(err: unknown, attempt: number, options: RetryOptions): number | undefined {
  if (attempt >= options.max) return undefined
  const code = (err as { code?: string } | null)?.code ?? ''
  return RETRYABLE_TRANSPORT_CODES.has(code) ? backoff(attempt, options) : undefined
}

/** Exponential backoff with jitter: between half and all of base * 2^attempt, capped. */
export function backoff(attempt: number, options: RetryOptions): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt)
  return Math.round(ceiling * (0.5 + Math.random() * 0.5))
}
