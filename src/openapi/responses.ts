import { ERROR_SCHEMA } from '../errors.ts'
import type { JsonSchema } from '../schemas/load-tasks.ts'
import { sharedRef } from './component-ref.ts'
import { ALWAYS_SENT } from './required-headers.ts'

type Headers = Record<string, JsonSchema>

/** On every answer: the id of the request, as in the logs and error bodies. */
export const REQUEST_ID_HEADERS: Headers = {
  'X-Request-Id': {
    type: 'string',
    [ALWAYS_SENT]: true,
    description: "The request's id: the caller's own X-Request-Id when it sent a sane one, else a new one.",
  },
}

/** On the answers of a task route that called OpenAI (src/routing/deployment-header.ts). */
const DEPLOYMENT_HEADERS: Headers = {
  'X-OpenAI-Tasks-Deployment': {
    type: 'string',
    description: 'The deployments that served the request, comma-separated (a batch may use several).',
  },
  'X-OpenAI-Tasks-Cost-USD': {
    type: 'string',
    pattern: '^(?:\\d+(?:\\.\\d{1,9})?|unknown)$',
    description:
      "What the request's OpenAI calls cost in US dollars at the service's prices (`0` for a cache hit), " +
      'or `unknown` when a model has no price; on JSON and media answers and on errors after the route began (docs/spend.md).',
  },
}

/** On the answers of a cached task's routes (src/cache/cache-status.ts). */
const CACHE_STATUS_HEADERS: Headers = {
  'Cache-Status': {
    type: 'string',
    description:
      'What the cache did (RFC 9211): a hit and the seconds it stays fresh, or why the request went to ' +
      'OpenAI and whether the answer was stored; for a batch, how many items hit. docs/cache.md lists every value.',
    examples: ['openai-tasks; hit; ttl=86391', 'openai-tasks; fwd=partial; stored; detail="4 of 10 items"'],
  },
}

const RETRY_AFTER: Headers = {
  'Retry-After': { type: 'integer', minimum: 0, description: 'Seconds to wait before trying again.' },
}

/** @fastify/rate-limit's draft-spec headers, on every answer of a rate-limited route. */
const RATE_LIMIT_HEADERS: Headers = {
  'RateLimit-Limit': { type: 'integer', description: 'Requests a caller may make per window (RATE_LIMIT_MAX).' },
  'RateLimit-Remaining': { type: 'integer', description: 'Requests left to this caller in the window.' },
  'RateLimit-Reset': { type: 'integer', description: 'Seconds until the window starts afresh.' },
}

export interface ResponseOptions {
  /** The route's calls go to OpenAI through a deployment: its 429s, and 503 when none can take them. */
  deployment?: boolean
  /** The route is behind the per-caller rate limit (RATE_LIMIT_MAX > 0). */
  rateLimited?: boolean
  /** The route sheds load with a 503 when the event loop lags (MAX_EVENT_LOOP_DELAY_MS). */
  shed?: boolean
  /** The route's task is cached: its answers say what the cache did. */
  cached?: boolean
}

/** The headers of a route's answers, whatever their status. */
export function answerHeaders({ deployment = false, rateLimited = false, cached = false }: ResponseOptions): Headers {
  return {
    ...REQUEST_ID_HEADERS,
    ...(deployment && DEPLOYMENT_HEADERS),
    ...(cached && CACHE_STATUS_HEADERS),
    ...(rateLimited && RATE_LIMIT_HEADERS),
  }
}

/** The error answers of a route: 429 and 503 with when to come back where they happen, every other 4xx and 5xx. */
export function errorResponses(what: { refused: string; failed: string }, options: ResponseOptions): JsonSchema {
  const headers = answerHeaders(options)
  const error = (description: string, extra: Headers = {}) => ({
    description,
    ...sharedRef(ERROR_SCHEMA.$id),
    headers: { ...headers, ...extra },
  })
  const limits = [options.rateLimited && 'this caller\'s rate limit (RATE_LIMIT_MAX)', options.deployment && "OpenAI's, after the retries"]
  const unavailable = [options.deployment && 'no deployment can take the call', options.shed && 'the service is overloaded']
  return {
    ...(limits.some(Boolean) && { '429': error(`Too many requests: ${limits.filter(Boolean).join(', or ')}`, RETRY_AFTER) }),
    '4XX': error(what.refused),
    ...(unavailable.some(Boolean) && {
      '503': error(`Unavailable: ${unavailable.filter(Boolean).join(', or ')}; come back after Retry-After`, RETRY_AFTER),
    }),
    '5XX': error(what.failed),
  }
}
