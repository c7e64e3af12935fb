import type { FastifyInstance } from 'fastify'
import { errorResponses, REQUEST_ID_HEADERS } from '../openapi/responses.ts'

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

// Any route refuses a malformed request; the probes have no other error.
const MALFORMED = errorResponses(
  {
    refused: 'The request itself was refused: malformed, too slow, or its headers too large',
    failed: 'The service failed',
  },
  {},
)

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
        description:
          'Stays 200 until the process exits, draining included, so nothing restarts a pod finishing its work.',
        security: [],
        response: { 200: { description: 'The process is alive', ...status('ok') }, ...MALFORMED },
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
        description: 'Turns 503 as soon as shutdown starts, so load balancers send new work elsewhere.',
        security: [],
        response: {
          200: { description: 'The service takes requests', ...status('ready') },
          503: { description: 'Shutting down: send requests elsewhere', ...status('draining') },
          ...MALFORMED,
        },
      },
    },
    async (_request, reply) => (draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ready' }),
  )
}
