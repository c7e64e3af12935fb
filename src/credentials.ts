import type { IncomingHttpHeaders } from 'node:http'
import { parseBearer } from './bearer-token.ts'
import type { Config } from './config.ts'
import { MissingApiKeyError } from './errors.ts'

export interface Credentials {
  apiKey: string
  organization?: string | undefined
  project?: string | undefined
}

/**
 * Which OpenAI key a request spends:
 * - with service tokens on, `Authorization` carries the service token; the caller's own key in
 *   `X-OpenAI-Api-Key` is used only when the operator allows it (ALLOW_CALLER_API_KEYS),
 *   otherwise the server's key;
 * - without service tokens, the server's key when it has one, otherwise the caller's key from
 *   `X-OpenAI-Api-Key` or `Authorization: Bearer`.
 * A caller's key travels with the caller's `OpenAI-Organization` / `OpenAI-Project` headers.
 */
export function resolveCredentials(config: Pick<Config, 'openai' | 'auth'>, headers: IncomingHttpHeaders): Credentials {
  const { openai, auth } = config
  const tokensOn = auth.serviceTokens.length > 0
  const callerMayPay = tokensOn ? auth.allowCallerApiKeys : !openai.apiKey
  const callerKey = callerMayPay ? callerApiKey(headers, tokensOn) : undefined
  if (callerKey) {
    return {
      apiKey: callerKey,
      organization: singleHeader(headers['openai-organization']) ?? openai.organization,
      project: singleHeader(headers['openai-project']) ?? openai.project,
    }
  }
  if (openai.apiKey) return { apiKey: openai.apiKey, organization: openai.organization, project: openai.project }
  throw new MissingApiKeyError()
}

function callerApiKey(headers: IncomingHttpHeaders, tokensOn: boolean): string | undefined {
  const explicit = singleHeader(headers['x-openai-api-key'])
  if (explicit) return explicit
  if (tokensOn) return undefined
  return parseBearer(headers.authorization)
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value
  return first?.trim() || undefined
}
