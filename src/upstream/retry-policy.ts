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

/** A failure before the deployment took the request: the call may go elsewhere, or again. */
export function isRetryableTransport(err: unknown): boolean {
  return RETRYABLE_TRANSPORT_CODES.has((err as { code?: string } | null)?.code ?? '')
}

/** Exponential backoff with jitter: between half and all of base * 2^attempt, capped. */
export function backoff(attempt: number, options: RetryOptions): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt)
  return Math.round(ceiling * (0.5 + Math.random() * 0.5))
}
