import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { parseBearer, tokenDigest, tokenMatcher } from '../bearer-token.ts'
import { ServiceUnauthorizedError } from '../errors.ts'

export interface ServiceAuthOptions {
  tokens: string[]
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, for rate limits and logs: `token:<digest prefix>` or `ip:<address>`. */
    clientId: string
  }
}

/** Bearer-token authentication for the routes of the scope it is registered in. */
async function serviceAuth(fastify: FastifyInstance, { tokens }: ServiceAuthOptions): Promise<void> {
  if (!tokens.length) {
    // Asked for only by the rate limit, if any: the peer address costs a system call.
    fastify.decorateRequest('clientId', {
      getter(this: FastifyRequest) {
        return `ip:${this.ip}`
      },
    })
    return
  }
  fastify.decorateRequest('clientId', '')
  const match = tokenMatcher(tokens)
  const ids = tokens.map((token) => `token:${tokenDigest(token).toString('hex').slice(0, 12)}`)

  // Callback style: it runs on every request, and an async hook costs a promise each time.
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    const index = match(parseBearer(request.headers.authorization))
    if (index < 0) return done(new ServiceUnauthorizedError())
    request.clientId = ids[index]!
    request.log.debug({ client: request.clientId }, 'authenticated')
    done()
  })
}

export default fp(serviceAuth, { name: 'service-auth' })
