import createError from '@fastify/error'

/** One entry of an error's `details`: where the problem is and what it is. */
export interface ErrorDetail {
  field?: string
  path?: string
  message: string
  [key: string]: unknown
}

/** Errors that carry details and, for rate limits, how long to wait. */
export interface DetailedError extends Error {
  code: string
  statusCode?: number
  details?: ErrorDetail[]
  retryAfterSeconds?: number
}

export const ValidationError = createError('ERR_VALIDATION', 'The request is invalid: %s', 400)
export const MissingApiKeyError = createError(
  'ERR_MISSING_API_KEY',
  'No OpenAI API key: set OPENAI_API_KEY on the server, or send the key as "Authorization: Bearer <key>" or "X-OpenAI-Api-Key: <key>"',
  401,
)
export const ModelNotAllowedError = createError(
  'ERR_MODEL_NOT_ALLOWED',
  'Model "%s" is not allowed on this server',
  403,
)
export const UpstreamBadRequestError = createError('ERR_UPSTREAM_BAD_REQUEST', 'OpenAI rejected the request: %s', 400)
export const UpstreamUnauthorizedError = createError('ERR_UPSTREAM_UNAUTHORIZED', 'OpenAI refused the credentials: %s', 401)
export const UpstreamForbiddenError = createError('ERR_UPSTREAM_FORBIDDEN', 'OpenAI denied access: %s', 403)
export const UpstreamNotFoundError = createError('ERR_UPSTREAM_NOT_FOUND', 'OpenAI did not find it: %s', 404)
export const UpstreamPayloadTooLargeError = createError('ERR_UPSTREAM_PAYLOAD_TOO_LARGE', 'OpenAI found the request too large: %s', 413)
export const UpstreamRateLimitedError = createError('ERR_UPSTREAM_RATE_LIMITED', 'OpenAI rate limit reached: %s', 429)
export const UpstreamServerError = createError('ERR_UPSTREAM_SERVER_ERROR', 'OpenAI failed (HTTP %s): %s', 502)
export const UpstreamBadResponseError = createError('ERR_UPSTREAM_BAD_RESPONSE', 'OpenAI sent an unreadable answer: %s', 502)
export const UpstreamStreamError = createError('ERR_UPSTREAM_STREAM_ERROR', 'OpenAI reported an error during the stream: %s', 502)
export const UpstreamUnreachableError = createError('ERR_UPSTREAM_UNREACHABLE', 'Could not reach OpenAI: %s', 502)
export const UpstreamTimeoutError = createError('ERR_UPSTREAM_TIMEOUT', 'OpenAI did not answer in time: %s', 504)
export const NotFoundError = createError('ERR_NOT_FOUND', 'Route %s %s not found', 404)
export const MethodNotAllowedError = createError('ERR_METHOD_NOT_ALLOWED', 'Method %s is not allowed on %s; use %s', 405)

/** Attaches details (and an optional Retry-After) to an error built by one of the constructors. */
export function withDetails<E extends Error>(
  error: E,
  details: ErrorDetail[],
  extra: { retryAfterSeconds?: number } = {},
): E & DetailedError {
  return Object.assign(error, { details }, extra) as E & DetailedError
}

/** A 400 about one field of the request body, with its JSON pointer. */
export function invalidField(path: string, message: string): DetailedError {
  const field = pointerToField(path) || '(body)'
  return withDetails(new ValidationError(`${field} ${message}`), [{ field, path, message }])
}

/** One 400 about several fields, each `[pointer, message]`, listed as a schema failure would. */
export function invalidFields(problems: Array<[path: string, message: string]>): DetailedError {
  const details = problems.map(([path, message]) => ({ field: pointerToField(path) || '(body)', path, message }))
  return withDetails(new ValidationError(details.map((d) => `${d.field} ${d.message}`).join('; ')), details)
}

export function pointerToField(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.')
}

/** JSON Schema of the error body every non-2xx answer carries. */
export const ERROR_SCHEMA = {
  $id: 'error-response',
  title: 'ErrorResponse',
  type: 'object',
  description: 'Body of every non-2xx answer.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          description:
            'Stable machine-readable code. The request: ERR_VALIDATION, ERR_INVALID_JSON, ERR_INVALID_MULTIPART, ' +
            'ERR_INVALID_CONTENT_LENGTH, ERR_BAD_HTTP_REQUEST, ERR_UNSUPPORTED_MEDIA_TYPE, ERR_PAYLOAD_TOO_LARGE, ' +
            'ERR_MEDIA_TOO_LARGE, ERR_HEADERS_TOO_LARGE, ERR_REQUEST_TIMEOUT, ERR_NOT_FOUND, ERR_METHOD_NOT_ALLOWED ' +
            '(with Allow), ERR_NOT_ACCEPTABLE, ERR_MODEL_NOT_ALLOWED, ERR_MISSING_API_KEY, ERR_UNAUTHORIZED, ' +
            'ERR_RATE_LIMITED. The service: ERR_OVERLOADED, ERR_INTERNAL. OpenAI: ERR_UPSTREAM_BAD_REQUEST, ' +
            'ERR_UPSTREAM_UNAUTHORIZED, ERR_UPSTREAM_FORBIDDEN, ERR_UPSTREAM_NOT_FOUND, ERR_UPSTREAM_PAYLOAD_TOO_LARGE, ' +
            'ERR_UPSTREAM_RATE_LIMITED, ERR_UPSTREAM_SERVER_ERROR, ERR_UPSTREAM_BAD_RESPONSE, ERR_UPSTREAM_STREAM_ERROR, ' +
            'ERR_UPSTREAM_UNREACHABLE, ERR_UPSTREAM_TIMEOUT.',
        },
        message: { type: 'string', description: 'What went wrong, for people.' },
        details: {
          type: 'array',
          description: 'Each problem found: the field and JSON pointer it concerns, and what is wrong.',
          items: {
            type: 'object',
            additionalProperties: true,
            properties: {
              field: { type: 'string' },
              path: { type: 'string' },
              message: { type: 'string' },
            },
          },
        },
        'request-id': { type: 'string', description: 'Id of the request, as in the X-Request-Id header and the logs.' },
        status: { type: 'integer', description: 'In a batch output: the HTTP status this item would have had alone.' },
      },
    },
  },
} as const

/** The caller went away before the answer was ready; nobody is left to read this status. */
export const ClientClosedError = createError('ERR_CLIENT_CLOSED', 'The client closed the request', 499)

/** Too much work in flight; the caller should come back after Retry-After. */
export const OverloadedError = createError('ERR_OVERLOADED', 'The service is at capacity: %s', 503)
export const ServiceUnauthorizedError = createError(
  'ERR_UNAUTHORIZED',
  'This service needs "Authorization: Bearer <service token>"',
  401,
)
export const RateLimitedError = createError('ERR_RATE_LIMITED', 'Too many requests: %s', 429)
