// The APIs the stand-in speaks, OpenAI's and Azure OpenAI's: where operations live, how the key comes, how errors look.
import {
  apiVersionBreach,
  azureAuthBreach,
  azureHeaders,
  azureNotFound,
  azureRateLimited,
  azureRoute,
  deploymentNotFound,
} from './azure.ts'
import { authBreach, type Breach } from './checks.ts'
import { errorReply, modelNotFound, openAIError, rateLimitMessage } from './errors.ts'
import { goDuration, type RateLimitHit } from './rate-limits.ts'
import { jsonReply, type Reply } from './reply.ts'
import { normalizePath } from './request.ts'
import type { Flavour as FlavourName, RecordedRequest } from './types.ts'

/** The OpenAI path ('/v1/chat/completions') a request stands for, and the deployment its path named. */
export interface Route {
  pathname: string
  deployment?: string
}

export interface Flavour {
  name: FlavourName
  /** Where the operations live under the origin: '/v1' or '/openai/v1'. */
  basePath: string
  /** The OpenAI path a request's path stands for ('/v1/chat/completions'); undefined outside the API. */
  route(path: string): Route | undefined
  /** What behaviours, handlers and counts know a request outside the API by. */
  outside(pathname: string): string
  /** How the request was addressed or authenticated, judged before its body. */
  breaches(rec: RecordedRequest, route: Route, auth: { requireAuth: boolean; apiKey: string | undefined }): Breach[]
  /** The answer to a call naming a model (for Azure, a deployment) it does not serve. */
  unserved(model: string): Reply
  /** Headers of every answer, beside `x-request-id`. */
  headers(): Record<string, string>
  /** A scripted 429, over the scripted `x-ratelimit-*` headers (if any). */
  rateLimited(
    rec: RecordedRequest,
    route: Route,
    hit: RateLimitHit,
    scripted: Record<string, string> | undefined,
  ): Reply
  notFound(method: string, pathname: string): Reply
}

const retryAfterSeconds = (hit: RateLimitHit): number => Math.ceil(hit.retryAfterMs / 1000)

/** The model a call names: the deployment in its path, else the body's `model`. */
export function modelOf(rec: RecordedRequest, route: Route): string | undefined {
  const model: unknown = route.deployment ?? rec.json?.model ?? rec.form?.fields.model
  return typeof model === 'string' ? model : undefined
}

/** The request as its reply reads it: a JSON body without `model` gets the deployment its path named. */
export function withDeploymentModel(rec: RecordedRequest, route: Route): RecordedRequest {
  const json: unknown = rec.json
  if (route.deployment === undefined || typeof json !== 'object' || json === null || 'model' in json) return rec
  return { ...rec, json: { model: route.deployment, ...json } }
}

const withHeaders = (reply: Reply, headers: Record<string, string>): Reply => ({
  ...reply,
  headers: { ...reply.headers, ...headers },
})

export const OPENAI: Flavour = {
  name: 'openai',
  basePath: '/v1',
  route(path) {
    const pathname = normalizePath(path)
    return pathname.startsWith('/v1/') ? { pathname } : undefined
  },
  outside: (pathname) => pathname,
  breaches: (rec, _route, { requireAuth, apiKey }) => [requireAuth && authBreach(rec, apiKey)].filter((b) => !!b),
  unserved: modelNotFound,
  headers: () => ({ 'openai-version': '2020-10-01', 'openai-processing-ms': '7' }),
  rateLimited(rec, route, hit, scripted) {
    const seconds = retryAfterSeconds(hit)
    const limit = Number(scripted?.['x-ratelimit-limit-requests'] ?? 500)
    const body = openAIError(
      429,
      rateLimitMessage(modelOf(rec, route) ?? 'gpt-4o-mini', limit, goDuration(hit.retryAfterMs)),
    )
    // Scripted headers, if any, say the requests are used up; a test's own headers win.
    const exhausted = scripted ? { ...scripted, 'x-ratelimit-remaining-requests': '0' } : {}
    return withHeaders(jsonReply(429, body), { ...exhausted, 'retry-after': String(seconds), ...hit.headers })
  },
  notFound: (method, pathname) => errorReply(404, `Invalid URL (${method} ${pathname})`),
}

export const AZURE: Flavour = {
  name: 'azure',
  basePath: '/openai/v1',
  route: azureRoute,
  // Not a path ('/v1/chat/completions' sent to Azure is not its chat operation): no behaviour's path names it.
  outside: (pathname) => `outside the API: ${pathname}`,
  breaches: (rec, route, { requireAuth, apiKey }) =>
    [requireAuth && azureAuthBreach(rec, apiKey), apiVersionBreach(rec, route)].filter((b) => !!b),
  unserved: deploymentNotFound,
  headers: azureHeaders,
  rateLimited(rec, route, hit, scripted) {
    const seconds = retryAfterSeconds(hit)
    // Azure always says what is left of both limits, and the wait in milliseconds too.
    return withHeaders(azureRateLimited(rec, route, seconds), {
      ...scripted,
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-remaining-tokens': scripted?.['x-ratelimit-remaining-tokens'] ?? '0',
      'retry-after': String(seconds),
      'retry-after-ms': String(Math.round(hit.retryAfterMs)),
      ...hit.headers,
    })
  },
  notFound: () => azureNotFound(),
}

export const FLAVOURS: Record<FlavourName, Flavour> = { openai: OPENAI, azure: AZURE }
