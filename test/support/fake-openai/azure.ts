// Azure OpenAI's wire: its paths (v1 and per deployment), the `api-key` check, and its error bodies.
import { randomUUID } from 'node:crypto'
import type { Breach } from './checks.ts'
import type { Route } from './flavours.ts'
import { jsonReply, type Reply } from './reply.ts'
import { normalizePath } from './request.ts'
import type { RecordedRequest } from './types.ts'

const V1 = /^\/openai(\/v1\/.+)$/
const DEPLOYMENT = /^\/openai\/deployments\/([^/]+)(\/.+)$/

/** '/openai/v1/chat/completions' and '/openai/deployments/{name}/chat/completions' stand for '/v1/chat/completions'. */
export function azureRoute(path: string): Route | undefined {
  const pathname = normalizePath(path)
  const v1 = V1.exec(pathname)
  if (v1) return { pathname: v1[1]! }
  const byName = DEPLOYMENT.exec(pathname)
  if (byName) return { pathname: `/v1${byName[2]!}`, deployment: decodeURIComponent(byName[1]!) }
  return undefined
}

/** Azure's own error body: `{"error":{"code","message"}}`, the code a string. */
function azureError(status: number, code: string, message: string): Reply {
  return jsonReply(status, { error: { code, message } })
}

export const AZURE_ACCESS_DENIED =
  'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an ' +
  'active subscription and use a correct regional API endpoint for your resource.'

/** What is wrong with how the key came, if anything. */
function keyProblem(rec: RecordedRequest, apiKey: string | undefined): string | undefined {
  const key = rec.headers['api-key']
  if (rec.headers.authorization !== undefined) return 'Authorization header sent to Azure (its key goes in api-key)'
  if (typeof key !== 'string' || key === '') return 'missing api-key header'
  if (apiKey !== undefined && key !== apiKey) return 'api-key does not match the one the stand-in was started with'
  return undefined
}

/**
 * An `Authorization` header, no `api-key`, or one other than `apiKey` when set. (Azure itself takes
 * an Entra token as a bearer; the service sends Azure its key in `api-key` only, so a bearer is a breach.)
 */
export function azureAuthBreach(rec: RecordedRequest, apiKey: string | undefined): Breach | undefined {
  const message = keyProblem(rec, apiKey)
  if (message === undefined) return undefined
  return { errors: [{ keyword: 'security', message }], reply: azureError(401, '401', AZURE_ACCESS_DENIED) }
}

/** A path naming a deployment needs `?api-version=` (the v1 paths do not). */
export function apiVersionBreach(rec: RecordedRequest, route: Route): Breach | undefined {
  if (route.deployment === undefined || apiVersionOf(rec)) return undefined
  const message = `missing api-version query parameter on ${normalizePath(rec.path)}`
  return { errors: [{ keyword: 'api-version', message }], reply: azureNotFound() }
}

function apiVersionOf(rec: RecordedRequest): string | undefined {
  return new URLSearchParams(rec.path.split('?')[1] ?? '').get('api-version') || undefined
}

export function azureNotFound(): Reply {
  return azureError(404, '404', 'Resource not found')
}

export function deploymentNotFound(): Reply {
  const message =
    'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, ' +
    'please wait a moment and try again.'
  return azureError(404, 'DeploymentNotFound', message)
}

/** Azure's names for the operations, as its 429 messages quote them. */
const OPERATION_NAMES: Record<string, string> = {
  '/v1/chat/completions': 'ChatCompletions_Create',
  '/v1/embeddings': 'Embeddings_Create',
  '/v1/audio/transcriptions': 'Transcriptions_Create',
  '/v1/audio/speech': 'Speech_Create',
  '/v1/images/generations': 'ImageGenerations_Create',
}

/** Azure's 429: its message names the operation and API version and says how many seconds to wait. */
export function azureRateLimited(rec: RecordedRequest, route: Route, retryAfterSeconds: number): Reply {
  const operation = OPERATION_NAMES[route.pathname] ?? 'ChatCompletions_Create'
  const message =
    `Requests to the ${operation} Operation under Azure OpenAI API version ${apiVersionOf(rec) ?? 'v1'} have ` +
    `exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfterSeconds} ` +
    'seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default ' +
    'rate limit.'
  return azureError(429, '429', message)
}

/** The headers Azure answers with where OpenAI sends `openai-version` and `openai-processing-ms`. */
export function azureHeaders(): Record<string, string> {
  return { 'apim-request-id': randomUUID(), 'x-ms-region': 'East US' }
}
