// The APIs the stand-in speaks, OpenAI's and Azure OpenAI's: where operations live, how the key comes, how errors look.
import {
  apiVersionBreach,
  azureAuthBreach,
  azureHeaders,
  azureNotFound,
  azureRoute,
  deploymentNotFound,
} from './azure.ts'
import { authBreach, type Breach } from './checks.ts'
import { errorReply, modelNotFound } from './errors.ts'
import type { Reply } from './reply.ts'
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
  notFound(method: string, pathname: string): Reply
}

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
  notFound: () => azureNotFound(),
}

export const FLAVOURS: Record<FlavourName, Flavour> = { openai: OPENAI, azure: AZURE }
