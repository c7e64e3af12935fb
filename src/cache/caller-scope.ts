import { createHash } from 'node:crypto'
import type { Credentials } from '../credentials.ts'

/** The scope of the server's own keys, for a service without service tokens. */
export const SERVER_SCOPE = 'server'

/**
 * Whose entries a request may read and write; two callers never share one. With service tokens
 * on, the token's id; a caller spending its own OpenAI key adds a digest of that key (with the
 * organization and project it sends), so that two keys behind one token are two scopes too.
 */
export function callerScope(tokenId: string | undefined, credentials: Credentials | undefined): string {
  const key = credentials && `key:${keyDigest(credentials)}`
  if (tokenId && key) return `${tokenId} ${key}`
  return tokenId ?? key ?? SERVER_SCOPE
}

function keyDigest({ apiKey, organization, project }: Credentials): string {
  return createHash('sha256')
    .update(JSON.stringify([apiKey, organization ?? null, project ?? null]))
    .digest('base64url')
}
