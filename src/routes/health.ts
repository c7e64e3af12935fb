import type { FastifyInstance } from 'fastify'

const STATUS_SCHEMA = {
  type: 'object',
  properties: { status: { type: 'string' } },
} as const

declare module 'fastify' {
  interface FastifyInstance {
    /** Turns /readyz to 503 so load balancers stop sending work, ahead of close(). */
    startDraining(): void
  }
}

/**
 * Liveness and readiness. Readiness turns 503 as soon as shutdown starts; liveness stays 200
 * until the process exits, so nothing restarts a pod that is finishing its work.
 */
export default async function healthRoutes(fastify: FastifyInstance): Promise<void> {
  let draining = false
  fastify.decorate('startDraining', () => {
    draining = true
  })
  fastify.addHook('preClose', async () => {
    draining = true
  })

  fastify.get(
    '/healthz',
    { schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: STATUS_SCHEMA } } },
    async () => ({ status: 'ok' }),
  )
  fastify.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the service takes requests (503 while shutting down)',
        response: { 200: STATUS_SCHEMA, 503: STATUS_SCHEMA },
      },
    },
    async (_request, reply) => (draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ready' }),
  )
}
