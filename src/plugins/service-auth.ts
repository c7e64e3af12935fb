import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { digestMatcher, parseBearer } from '../bearer-token.ts'
import { ServiceUnauthorizedError } from '../errors.ts'
import type { CallerSettings } from '../spend/callers.ts'

export interface ServiceAuthOptions {
  callers: CallerSettings[]
  /** SHA-256 of the tokens that may read every caller's usage, and call nothing else. */
  adminDigests: Buffer[]
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, for rate limits and logs: `token:<digest prefix>`, `caller:<name>` or `ip:<address>`. */
    clientId: string
    /** The caller its token names; undefined without tokens (and for an admin token). */
    caller: CallerSettings | undefined
    /** An admin token: only routes that say `config.admins` take it. */
    admin: boolean
  }
  interface FastifyContextConfig {
    /** The route takes admin tokens too (GET /v1/usage). */
    admins?: boolean
  }
}

/** Bearer-token authentication for the routes of the scope it is registered in. */
async function serviceAuth(fastify: FastifyInstance, { callers, adminDigests }: ServiceAuthOptions): Promise<void> {
  fastify.decorateRequest('caller', undefined)
  fastify.decorateRequest('admin', false)
  if (!callers.length) {
    // Asked for only by the rate limit, if any: the peer address costs a system call.
    fastify.decorateRequest('clientId', {
      getter(this: FastifyRequest) {
        return `ip:${this.ip}`
      },
    })
    return
  }
  fastify.decorateRequest('clientId', '')
  const owners = callers.flatMap((caller) => caller.digests.map(() => caller))
  const match = digestMatcher(callers.flatMap((caller) => caller.digests))
  const matchAdmin = digestMatcher(adminDigests)

  // Callback style: it runs on every request, and an async hook costs a promise each time.
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    const presented = parseBearer(request.headers.authorization)
    const caller = owners[match(presented)]
    if (caller) {
      request.caller = caller
      request.clientId = caller.clientId
      request.log.debug({ client: request.clientId }, 'authenticated')
      return done()
    }
    if (adminDigests.length && request.routeOptions.config.admins && matchAdmin(presented) >= 0) {
      request.admin = true
      request.clientId = 'admin'
      return done()
    }
    done(new ServiceUnauthorizedError())
  })
}

export default fp(serviceAuth, { name: 'service-auth' })
