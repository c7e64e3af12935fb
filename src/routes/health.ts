import type { FastifyInstance } from 'fastify'
import { REQUEST_ID_HEADERS } from '../openapi/responses.ts'

const status = (...values: string[]) => ({
  type: 'object',
  headers: REQUEST_ID_HEADERS,
  required: ['status'],
  properties: { status: { type: 'string', enum: values } },
})

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
    {
      schema: {
        operationId: 'liveness',
        tags: ['operations'],
        summary: 'Liveness: the process answers',
        security: [],
        response: { 200: { description: 'The process is alive', ...status('ok') } },
      },
    },
    async () => ({ status: 'ok' }),
  )
  fastify.get(
    '/readyz',
    {
      schema: {
        operationId: 'readiness',
        tags: ['operations'],
        summary: 'Readiness: the service takes requests (503 while shutting down)',
        security: [],
        response: {
          200: { description: 'The service takes requests', ...status('ready') },
          503: { description: 'Shutting down: send requests elsewhere', ...status('draining') },
        },
      },
    },
    async (_request, reply) => (draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ready' }),
  )
}
