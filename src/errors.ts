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
  /** Problems found beyond those in `details`. */
  omittedDetails?: number
  retryAfterSeconds?: number
}

/** Problems an error body lists at most: one body can hold millions, and the first say enough. */
export const MAX_LISTED_PROBLEMS = 20

/** What an error code means: its HTTP status, and one line for the reader of docs/errors.md. */
export interface ErrorCodeInfo {
  status: number
  meaning: string
}

/** Every code an error answer can carry; docs/errors.md is generated from this table. */
export const ERROR_CODES = {
  ERR_VALIDATION: {
    status: 400,
    meaning:
      "The body breaks the task's schema or one of its rules; `details` names the failing fields " +
      `(the first ${MAX_LISTED_PROBLEMS}; \`omitted-details\` counts the others).`,
  },
  ERR_INVALID_JSON: { status: 400, meaning: 'The body is empty or not JSON.' },
  ERR_INVALID_MULTIPART: {
    status: 400,
    meaning: 'A multipart/form-data body that cannot be parsed (no boundary, cut short).',
  },
  ERR_INVALID_CONTENT_LENGTH: { status: 400, meaning: 'The Content-Length header does not match the body.' },
  ERR_BAD_HTTP_REQUEST: { status: 400, meaning: 'Malformed HTTP; answered on the socket, which is then closed.' },
  ERR_UNAUTHORIZED: {
    status: 401,
    meaning:
      'Service tokens are on and the request has no valid `Authorization: Bearer <token>` (also ' +
      '`/metrics` with `METRICS_TOKEN`).',
  },
  ERR_MISSING_API_KEY: { status: 401, meaning: 'Neither the server nor the request holds an OpenAI key.' },
  ERR_MODEL_NOT_ALLOWED: {
    status: 403,
    meaning: "The model is not in `ALLOWED_MODELS`, or not in the caller's `models` (configuration file).",
  },
  ERR_MODEL_NOT_SERVED: {
    status: 400,
    meaning:
      "No deployment of the configuration file serves the model (for a caller's own key: none marked " +
      '`caller-keys`); nothing was sent.',
  },
  ERR_NOT_FOUND: { status: 404, meaning: 'No such route.' },
  ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    meaning: 'The path exists but not with this method; the `Allow` header lists the methods it takes.',
  },
  ERR_NOT_ACCEPTABLE: {
    status: 406,
    meaning:
      'The Accept header contradicts the request (an audio type other than `response-format`, image ' +
      'bytes with `n` > 1).',
  },
  ERR_REQUEST_TIMEOUT: {
    status: 408,
    meaning: 'The client sent its headers or body too slowly (`HEADERS_TIMEOUT_MS`, `REQUEST_TIMEOUT_MS`).',
  },
  ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    meaning: "The body is over the route's limit (`JSON_BODY_LIMIT_BYTES`, `MEDIA_BODY_LIMIT_BYTES`).",
  },
  ERR_MEDIA_TOO_LARGE: { status: 413, meaning: "Audio, inline or uploaded, over OpenAI's 25 MB." },
  ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    meaning:
      'The body is neither JSON nor, for a task that takes uploads, multipart/form-data; or it is ' +
      'compressed, with a `Content-Encoding` other than `identity` (the answer says `Accept-Encoding: identity`).',
  },
  ERR_RATE_LIMITED: {
    status: 429,
    meaning:
      "This service's own per-client limit (`RATE_LIMIT_MAX`); `Retry-After` and `RateLimit-*` " + 'headers say when.',
  },
  ERR_BUDGET_EXCEEDED: {
    status: 429,
    meaning:
      "The caller's spend of the UTC day or month has reached its `budget` (configuration file); " +
      'nothing was sent to OpenAI. `Retry-After` says when the period ends.',
  },
  ERR_HEADERS_TOO_LARGE: { status: 431, meaning: "The request headers are over Node's limit." },
  ERR_CLIENT_CLOSED: {
    status: 499,
    meaning:
      'The caller went away before the answer was complete (a stream included): logged and counted in ' +
      'the metrics with this status, never sent, as nobody is left to read it.',
  },
  ERR_INTERNAL: { status: 500, meaning: 'A bug in the service; the error log line with the request id has the stack.' },
  ERR_OVERLOADED: {
    status: 503,
    meaning:
      '`MAX_CONCURRENT_UPSTREAM` OpenAI calls are open, or the event loop lags over ' +
      '`MAX_EVENT_LOOP_DELAY_MS`; retry after `Retry-After`.',
  },
  ERR_NO_DEPLOYMENT_AVAILABLE: {
    status: 503,
    meaning:
      'Every deployment that serves the model has its circuit open (failing) or is at its ' +
      '`max-concurrent`, for longer than `UPSTREAM_RETRY_MAX_DELAY_MS`; `Retry-After` says when one is back.',
  },
  ERR_UPSTREAM_BAD_REQUEST: {
    status: 400,
    meaning: 'OpenAI refused the request with a 4xx that has no code of its own below; its message is kept.',
  },
  ERR_UPSTREAM_UNAUTHORIZED: { status: 401, meaning: 'OpenAI refused the key.' },
  ERR_UPSTREAM_FORBIDDEN: { status: 403, meaning: 'OpenAI refused access (model, region, organization).' },
  ERR_UPSTREAM_NOT_FOUND: { status: 404, meaning: 'OpenAI does not know the model, or the base URL is wrong.' },
  ERR_UPSTREAM_PAYLOAD_TOO_LARGE: { status: 413, meaning: 'OpenAI found the request too large.' },
  ERR_UPSTREAM_RATE_LIMITED: {
    status: 429,
    meaning: "OpenAI's rate limit or quota, after the retries; OpenAI's `Retry-After` is passed on.",
  },
  ERR_UPSTREAM_SERVER_ERROR: { status: 502, meaning: 'OpenAI answered 5xx, after the retries.' },
  ERR_UPSTREAM_BAD_RESPONSE: {
    status: 502,
    meaning:
      "OpenAI's answer could not be read (malformed JSON, a missing field, an undecodable image, a " +
      'stream that is not an event stream) or is over what the service takes in (an index, an SSE ' +
      'event, the size of the answer).',
  },
  ERR_UPSTREAM_STREAM_ERROR: {
    status: 502,
    meaning: 'In an SSE `error` event: OpenAI reported an error in the middle of a stream.',
  },
  ERR_UPSTREAM_UNREACHABLE: {
    status: 502,
    meaning: 'OpenAI could not be reached (connection refused or reset, DNS), after the retries.',
  },
  ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    meaning:
      'OpenAI did not start answering within `UPSTREAM_HEADERS_TIMEOUT_MS`, went silent longer than ' +
      '`UPSTREAM_BODY_TIMEOUT_MS`, or answered 408.',
  },
} as const satisfies Record<string, ErrorCodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

/** An error constructor for a code of the table, with its status; `message` may hold `%s`. */
export function defineError<C extends ErrorCode>(code: C, message: string) {
  return createError(code, message, ERROR_CODES[code].status)
}

export const ValidationError = defineError('ERR_VALIDATION', 'The request is invalid: %s')
export const MissingApiKeyError = defineError(
  'ERR_MISSING_API_KEY',
  'No OpenAI API key: set OPENAI_API_KEY on the server, or send the key as "Authorization: Bearer <key>" or "X-OpenAI-Api-Key: <key>"',
)
export const ModelNotAllowedError = defineError('ERR_MODEL_NOT_ALLOWED', 'Model "%s" is not allowed on this server')
export const CallerModelNotAllowedError = defineError(
  'ERR_MODEL_NOT_ALLOWED',
  'Model "%s" is not one of the models caller "%s" may use',
)
export const ModelNotServedError = defineError('ERR_MODEL_NOT_SERVED', 'Model "%s" is served by no deployment%s')
export const NoDeploymentAvailableError = defineError(
  'ERR_NO_DEPLOYMENT_AVAILABLE',
  'No deployment can take the call now (%s): each is failing or full',
)
export const UpstreamBadRequestError = defineError('ERR_UPSTREAM_BAD_REQUEST', 'OpenAI rejected the request: %s')
export const UpstreamUnauthorizedError = defineError('ERR_UPSTREAM_UNAUTHORIZED', 'OpenAI refused the credentials: %s')
export const UpstreamForbiddenError = defineError('ERR_UPSTREAM_FORBIDDEN', 'OpenAI denied access: %s')
export const UpstreamNotFoundError = defineError('ERR_UPSTREAM_NOT_FOUND', 'OpenAI did not find it: %s')
export const UpstreamPayloadTooLargeError = defineError(
  'ERR_UPSTREAM_PAYLOAD_TOO_LARGE',
  'OpenAI found the request too large: %s',
)
export const UpstreamRateLimitedError = defineError('ERR_UPSTREAM_RATE_LIMITED', 'OpenAI rate limit reached: %s')
export const UpstreamServerError = defineError('ERR_UPSTREAM_SERVER_ERROR', 'OpenAI failed (HTTP %s): %s')
export const UpstreamBadResponseError = defineError('ERR_UPSTREAM_BAD_RESPONSE', 'OpenAI sent an unreadable answer: %s')
export const UpstreamStreamError = defineError(
  'ERR_UPSTREAM_STREAM_ERROR',
  'OpenAI reported an error during the stream: %s',
)
export const UpstreamUnreachableError = defineError('ERR_UPSTREAM_UNREACHABLE', 'Could not reach OpenAI: %s')
export const UpstreamTimeoutError = defineError('ERR_UPSTREAM_TIMEOUT', 'OpenAI did not answer in time: %s')
export const NotFoundError = defineError('ERR_NOT_FOUND', 'Route %s %s not found')
/** The caller went away before the answer was ready; nobody is left to read this status. */
export const ClientClosedError = defineError('ERR_CLIENT_CLOSED', 'The client closed the request')
/** Too much work in flight; the caller should come back after Retry-After. */
export const OverloadedError = defineError('ERR_OVERLOADED', 'The service is at capacity: %s')
export const ServiceUnauthorizedError = defineError(
  'ERR_UNAUTHORIZED',
  'This service needs "Authorization: Bearer <service token>"',
)
export const RateLimitedError = defineError('ERR_RATE_LIMITED', 'Too many requests: %s')
export const BudgetExceededError = defineError('ERR_BUDGET_EXCEEDED', 'Caller "%s" has spent its budget of %s')
export const NotAcceptableError = defineError('ERR_NOT_ACCEPTABLE', 'Cannot answer in the requested media type: %s')
export const MediaTooLargeError = defineError('ERR_MEDIA_TOO_LARGE', 'The media is too large: %s')
export const MalformedMultipartError = defineError(
  'ERR_INVALID_MULTIPART',
  'The multipart/form-data body is malformed: %s',
)
export const UnsupportedContentEncodingError = defineError(
  'ERR_UNSUPPORTED_MEDIA_TYPE',
  'Unsupported Content-Encoding: send the body uncompressed, without Content-Encoding (or as identity)',
)
export const MethodNotAllowedError = defineError('ERR_METHOD_NOT_ALLOWED', 'Method %s is not allowed on %s; use %s')

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
  return invalidFields([[path, message]])
}

/** One 400 about several fields, each `[pointer, message]`, listed as a schema failure would. */
export function invalidFields(problems: Array<[path: string, message: string]>): DetailedError {
  return validationFailure(
    problems.map(([path, message]) => ({ field: pointerToField(path) || '(body)', path, message })),
  )
}

/**
 * The 400 for a body's problems: the first MAX_LISTED_PROBLEMS listed, the rest counted as
 * `omitted-details`, or, when the search stopped early (`unsearched`), said to be unlooked for.
 */
export function validationFailure(
  problems: ErrorDetail[],
  { unsearched }: { unsearched?: string } = {},
): DetailedError {
  const details = problems.slice(0, MAX_LISTED_PROBLEMS)
  const omitted = problems.length - details.length
  let message = details.map((d) => `${d.field} ${d.message}`).join('; ')
  if (omitted) message += `; and ${omitted} more`
  if (unsearched) message += `; ${unsearched}`
  const error = withDetails(new ValidationError(message), details)
  return omitted ? Object.assign(error, { omittedDetails: omitted }) : error
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
  $id: 'ErrorResponse',
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
          enum: Object.keys(ERROR_CODES) as ErrorCode[],
          description: 'Stable machine-readable code; docs/errors.md says what each means.',
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
        'omitted-details': {
          type: 'integer',
          description: `Further problems found and not listed in \`details\` (which holds the first ${MAX_LISTED_PROBLEMS}).`,
        },
        'request-id': { type: 'string', description: 'Id of the request, as in the X-Request-Id header and the logs.' },
        status: { type: 'integer', description: 'In a batch output: the HTTP status this item would have had alone.' },
      },
    },
  },
} as const
