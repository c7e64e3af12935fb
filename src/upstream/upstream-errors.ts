import type { IncomingHttpHeaders } from 'node:http'
import {
  UpstreamBadRequestError,
  UpstreamBadResponseError,
  UpstreamForbiddenError,
  UpstreamNotFoundError,
  UpstreamPayloadTooLargeError,
  UpstreamRateLimitedError,
  UpstreamServerError,
  UpstreamStreamError,
  UpstreamTimeoutError,
  UpstreamUnauthorizedError,
  UpstreamUnreachableError,
  withDetails,
  type DetailedError,
  type ErrorDetail,
} from '../errors.ts'
import { ERROR_ANSWER_BYTES, formatBound } from './answer-limits.ts'
import { redactSecrets, upstreamExcerpt, type KeysInUse } from './redact-secrets.ts'
import { readPrefix, type UpstreamAnswer } from './upstream-answer.ts'

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
])

interface OpenAIErrorBody {
  error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown }
}

/**
 * Turns a non-2xx answer from OpenAI into the service's error for it, consuming the body. What the
 * answer says is redacted first: the call's `apiKey` and anything shaped like a credential.
 */
export async function errorFromUpstreamResponse(res: UpstreamAnswer, apiKey: KeysInUse): Promise<DetailedError> {
  const text = await readPrefix(res.body, ERROR_ANSWER_BYTES)
  let parsed: OpenAIErrorBody | undefined
  try {
    parsed = JSON.parse(text) as OpenAIErrorBody
  } catch {
    parsed = undefined
  }
  const upstreamError = parsed?.error
  const redact = (value: string): string => redactSecrets(value, apiKey)
  const message =
    typeof upstreamError?.message === 'string' && upstreamError.message
      ? redact(upstreamError.message)
      : upstreamExcerpt(text.trim(), apiKey, 500) || `HTTP ${res.statusCode}`
  const detail: ErrorDetail = { message, 'upstream-status': res.statusCode }
  if (typeof upstreamError?.type === 'string') detail.type = redact(upstreamError.type)
  if (upstreamError?.param != null) detail.param = redact(String(upstreamError.param))
  if (upstreamError?.code != null) detail['upstream-code'] = redact(String(upstreamError.code))
  const upstreamRequestId = res.headers['x-request-id']
  if (typeof upstreamRequestId === 'string') detail['upstream-request-id'] = redact(upstreamRequestId)

  const retryAfterMs = retryAfterMsFrom(res.headers)
  // Retry-After, which the caller gets, is whole seconds: a wait of 1 ms is 1 s there.
  const extra = retryAfterMs === undefined ? {} : { retryAfterSeconds: Math.ceil(retryAfterMs / 1000) }
  const status = res.statusCode
  let error: DetailedError
  if (status === 401) error = new UpstreamUnauthorizedError(message)
  else if (status === 403) error = new UpstreamForbiddenError(message)
  else if (status === 404) error = new UpstreamNotFoundError(message)
  else if (status === 413) error = new UpstreamPayloadTooLargeError(message)
  else if (status === 429) error = new UpstreamRateLimitedError(message)
  else if (status === 408) error = new UpstreamTimeoutError(message)
  else if (status >= 400 && status < 500) error = new UpstreamBadRequestError(message)
  else error = new UpstreamServerError(status, message)
  return withDetails(error, [detail], extra)
}

/** Maps a transport failure (refused, reset, timed out) to the service's error for it. */
export function errorFromTransport(err: unknown, apiKey?: KeysInUse): DetailedError {
  const code = (err as { code?: string } | null)?.code ?? ''
  const message = redactSecrets(err instanceof Error ? err.message : String(err), apiKey)
  if (TIMEOUT_CODES.has(code)) {
    return withDetails(new UpstreamTimeoutError(message), [{ message, 'transport-code': code }])
  }
  return withDetails(new UpstreamUnreachableError(message), [{ message, 'transport-code': code || 'UNKNOWN' }])
}

/** An `{"error":{...}}` event inside a stream that had started well, redacted as an error answer is. */
export function errorFromUpstreamBody(payload: object, apiKey: KeysInUse): DetailedError {
  const body = payload as OpenAIErrorBody
  const message = typeof body.error?.message === 'string' ? redactSecrets(body.error.message, apiKey) : 'unknown error'
  const detail: ErrorDetail = { message }
  if (typeof body.error?.type === 'string') detail.type = redactSecrets(body.error.type, apiKey)
  if (body.error?.code != null) detail['upstream-code'] = redactSecrets(String(body.error.code), apiKey)
  return withDetails(new UpstreamStreamError(message), [detail])
}

/**
 * An answer with a 2xx status whose body could not be understood. The message may quote the
 * answer (an excerpt, a content type): credentials in it are redacted, `apiKey` too when given.
 */
export function badUpstreamResponse(message: string, apiKey?: KeysInUse): DetailedError {
  const redacted = redactSecrets(message, apiKey)
  return withDetails(new UpstreamBadResponseError(redacted), [{ message: redacted }])
}

/** An answer, stream or event larger than the service takes in (answer-limits.ts). */
export function answerTooLarge(what: string, bound: number): DetailedError {
  return badUpstreamResponse(`${what} over ${formatBound(bound)}, more than this service takes in`)
}

/**
 * Milliseconds to wait, from `retry-after-ms`, `retry-after` in seconds, or `retry-after` as a
 * date: the retry waits exactly that, the caller's Retry-After rounds it up to seconds.
 */
export function retryAfterMsFrom(headers: IncomingHttpHeaders): number | undefined {
  const ms = headers['retry-after-ms']
  if (typeof ms === 'string' && ms.trim() !== '') {
    const value = Number(ms)
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value)
  }
  const value = headers['retry-after']
  if (typeof value !== 'string' || value === '') return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000)
  const date = Date.parse(value)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - Date.now())
}

/**
 * One upstream SSE event's data as an object: unreadable data is a bad answer, an `error` event
 * OpenAI's error; `apiKey` is redacted from what either quotes.
 */
export function parseStreamEvent(data: string, apiKey: KeysInUse): object {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    throw badUpstreamResponse(`unreadable stream event ${JSON.stringify(upstreamExcerpt(data, apiKey, 120))}`)
  }
  if (typeof parsed !== 'object' || parsed === null) throw badUpstreamResponse('stream event is not an object')
  if ('error' in parsed) throw errorFromUpstreamBody(parsed, apiKey)
  return parsed
}
