import { createHash } from 'node:crypto'
import { tokenDigest } from '../bearer-token.ts'
import type { Caller } from '../generated/config-file-types.ts'
import type { Credentials } from '../credentials.ts'

/** A caller the service knows, by the digests of its tokens. */
export interface CallerSettings {
  name: string
  /** SHA-256 of each of its tokens. */
  digests: Buffer[]
  /** The models it may use (patterns); undefined: any. */
  models: string[] | undefined
  budget: { usdPerDay?: number | undefined; usdPerMonth?: number | undefined } | undefined
  /** `token:<digest prefix>` for SERVICE_TOKENS (as before callers), `caller:<name>` for the file's. */
  clientId: string
}

/** The caller of a service without tokens: whoever reaches it. */
export const ANONYMOUS = 'anonymous'

/**
 * The callers: the file's `callers:` entries, then one per SERVICE_TOKENS token (named `token-`
 * and its digest's first 12 hex digits). Problems (a duplicate name, a token of two callers, no
 * token) are returned with the field's path, for the configuration error.
 */
export function callersFrom(
  fileCallers: Caller[] | undefined,
  serviceTokens: string[],
): { callers: CallerSettings[]; problems: string[] } {
  const callers: CallerSettings[] = []
  const problems: string[] = []
  const owners = new Map<string, string>()
  const names = new Set<string>()
  const add = (caller: CallerSettings, where: string) => {
    if (names.has(caller.name)) problems.push(`${where}.name: ${caller.name} is the name of another caller`)
    names.add(caller.name)
    for (const digest of caller.digests) {
      const hex = digest.toString('hex')
      const owner = owners.get(hex)
      if (owner !== undefined && owner !== caller.name) {
        problems.push(`${where}: a token of ${caller.name} is also a token of ${owner}`)
      }
      owners.set(hex, caller.name)
    }
    callers.push(caller)
  }
  fileCallers?.forEach((c, i) => {
    const digests = [...(c.token === undefined ? [] : [c.token]), ...(c.tokens ?? [])].map(tokenDigest)
    for (const hex of c['token-sha256'] ?? []) digests.push(Buffer.from(hex, 'hex'))
    if (!digests.length) problems.push(`callers[${i}]: ${c.name} needs a token (token, tokens or token-sha256)`)
    add(
      {
        name: c.name,
        digests,
        models: c.models,
        budget: c.budget && { usdPerDay: c.budget['usd-per-day'], usdPerMonth: c.budget['usd-per-month'] },
        clientId: `caller:${c.name}`,
      },
      `callers[${i}]`,
    )
  })
  serviceTokens.forEach((token, i) => {
    const digest = tokenDigest(token)
    const prefix = digest.toString('hex').slice(0, 12)
    add(
      { name: `token-${prefix}`, digests: [digest], models: undefined, budget: undefined, clientId: `token:${prefix}` },
      `SERVICE_TOKENS[${i}]`,
    )
  })
  return { callers, problems }
}

/** Whose money a call spends: the caller's, or `own-key:<digest prefix>` when it pays with its own key. */
export function spenderOf(caller: CallerSettings | undefined, credentials: Credentials | undefined): string {
  if (credentials) return `own-key:${ownKeyDigest(credentials)}`
  return caller?.name ?? ANONYMOUS
}

function ownKeyDigest({ apiKey }: Credentials): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 12)
}
