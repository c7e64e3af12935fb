import type { IncomingHttpHeaders } from 'node:http'
import type { Config } from './config.ts'
import { MissingApiKeyError } from './errors.ts'

export interface Credentials {
  apiKey: string
  organization?: string | undefined
  project?: string | undefined
}

const BEARER = /^Bearer\s+(\S+)\s*$/i

/**
 * The server's own key wins; without one, the caller's `Authorization: Bearer` key (and
 * `OpenAI-Organization` / `OpenAI-Project` headers) are used for this request only.
 */
export function resolveCredentials(openai: Config['openai'], headers: IncomingHttpHeaders): Credentials {
  if (openai.apiKey) {
    return { apiKey: openai.apiKey, organization: openai.organization, project: openai.project }
  }
  const match = BEARER.exec(headers.authorization ?? '')
  if (!match) throw new MissingApiKeyError()
  return {
    apiKey: match[1]!,
    organization: openai.organization ?? singleHeader(headers['openai-organization']),
    project: openai.project ?? singleHeader(headers['openai-project']),
  }
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value
  return first?.trim() || undefined
}
