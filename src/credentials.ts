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
 * Which key a request spends: the caller's own only when it may (no server key, or with service
 * tokens ALLOW_CALLER_API_KEYS), returned; else undefined, and each deployment spends its own
 * key (docs/security.md has the rules). A request with neither is refused.
 */
export function resolveCredentials(
  config: Pick<Config, 'openai' | 'auth'>,
  headers: IncomingHttpHeaders,
  serverKeys: boolean,
): Credentials | undefined {
  const { openai, auth } = config
  const tokensOn = auth.callers.length > 0
  const callerMayPay = tokensOn ? auth.allowCallerApiKeys : !serverKeys
  const callerKey = callerMayPay ? callerApiKey(headers, tokensOn) : undefined
  if (callerKey) {
    return {
      apiKey: callerKey,
      organization: singleHeader(headers['openai-organization']) ?? openai.organization,
      project: singleHeader(headers['openai-project']) ?? openai.project,
    }
  }
  if (serverKeys) return undefined
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
