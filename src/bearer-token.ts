import { createHash, timingSafeEqual } from 'node:crypto'

const BEARER = /^Bearer\s+(\S+)\s*$/i

/** The token of an `Authorization: Bearer <token>` header; undefined for anything else. */
export function parseBearer(authorization: string | undefined): string | undefined {
  return BEARER.exec(authorization ?? '')?.[1]
}

/** SHA-256 of a token: equal-length digests let timingSafeEqual compare tokens of any length. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

/**
 * Which of `tokens` a presented token is (its index), or -1. Every token is compared, in
 * constant time, so neither the length nor the position of a match shows in the timing.
 */
export function tokenMatcher(tokens: readonly string[]): (presented: string | undefined) => number {
  return digestMatcher(tokens.map(tokenDigest))
}

/** As tokenMatcher, for tokens known by their SHA-256 digests. */
export function digestMatcher(digests: readonly Buffer[]): (presented: string | undefined) => number {
  return (presented) => {
    if (presented === undefined) return -1
    const digest = tokenDigest(presented)
    let match = -1
    for (let i = 0; i < digests.length; i++) {
      if (timingSafeEqual(digests[i]!, digest) && match < 0) match = i
    }
    return match
  }
}
