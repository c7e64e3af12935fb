import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { parseBearer, tokenMatcher } from '../bearer-token.ts'
import { ServiceUnauthorizedError } from '../errors.ts'
import type { ServiceMetrics } from '../metrics/service-metrics.ts'

export interface MetricsOptions {
  metrics: ServiceMetrics
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  token: string | undefined
}

const STARTED = Symbol('metrics-started')

declare module 'fastify' {
  interface FastifyRequest {
    [STARTED]?: bigint
  }
}

/** Request counts and latencies for every route, and the Prometheus endpoint GET /metrics. */
async function metricsPlugin(fastify: FastifyInstance, { metrics, token }: MetricsOptions): Promise<void> {
  // Callback-style hooks: they run on every request, and an async one costs a promise each time.
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    request[STARTED] = process.hrtime.bigint()
    metrics.requestStarted()
    done()
  })
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const started = request[STARTED]
    if (started !== undefined) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      metrics.requestFinished(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, seconds)
    }
    done()
  })

  const scraper = token ? tokenMatcher([token]) : undefined
  fastify.get(
    '/metrics',
    { schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)' } },
    async (request, reply) => {
      if (scraper && scraper(parseBearer(request.headers.authorization)) < 0) throw new ServiceUnauthorizedError()
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
    },
  )
}

export default fp(metricsPlugin, { name: 'metrics' })
