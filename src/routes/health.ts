import type { FastifyInstance } from 'fastify'

const STATUS_SCHEMA = {
  type: 'object',
  properties: { status: { type: 'string' } },
} as const

/** Liveness and readiness; while the server closes, Fastify itself answers 503 to new requests. */
export default async function healthRoutes(fastify: FastifyInstance): Promise<void> {
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
        summary: 'Readiness: the service takes requests',
        response: { 200: STATUS_SCHEMA, 503: STATUS_SCHEMA },
      },
    },
    async () => ({ status: 'ready' }),
  )
}
