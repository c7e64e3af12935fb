import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ServiceUnauthorizedError } from '../errors.ts'

export interface ServiceAuthOptions {
  tokens: string[]
}

const BEARER = /^Bearer\s+(\S+)\s*$/i

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, for rate limits and logs: `token:<digest prefix>` or `ip:<address>`. */
    clientId: string
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * Bearer-token authentication for the routes of the scope it is registered in. Tokens are
 * compared as SHA-256 digests with timingSafeEqual, against every configured token, so neither
 * the length nor the position of a match shows in the timing.
 */
async function serviceAuth(fastify: FastifyInstance, { tokens }: ServiceAuthOptions): Promise<void> {
  const known = tokens.map((token) => ({ digest: digest(token), id: `token:${digest(token).toString('hex').slice(0, 12)}` }))
  if (!known.length) {
    // Asked for only by the rate limit, if any: the peer address costs a system call.
    fastify.decorateRequest('clientId', {
      getter(this: FastifyRequest) {
        return `ip:${this.ip}`
      },
    })
    return
  }
  fastify.decorateRequest('clientId', '')

  // Callback style: it runs on every request, and an async hook costs a promise each time.
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    const presented = BEARER.exec(request.headers.authorization ?? '')?.[1]
    if (presented === undefined) return done(new ServiceUnauthorizedError())
    const presentedDigest = digest(presented)
    let match: string | undefined
    for (const token of known) {
      if (timingSafeEqual(token.digest, presentedDigest)) match = token.id
    }
    if (!match) return done(new ServiceUnauthorizedError())
    request.clientId = match
    request.log.debug({ client: match }, 'authenticated')
    done()
  })
}

export default fp(serviceAuth, { name: 'service-auth' })
