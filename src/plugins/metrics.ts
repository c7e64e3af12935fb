import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { parseBearer, tokenMatcher } from '../bearer-token.ts'
import { ServiceUnauthorizedError } from '../errors.ts'
import type { ServiceMetrics } from '../metrics/service-metrics.ts'
import { endStatus } from '../request-end.ts'
import { errorResponses, REQUEST_ID_HEADERS } from '../openapi/responses.ts'
import type { SecurityRequirement } from '../openapi/security.ts'

export interface MetricsOptions {
  metrics: ServiceMetrics
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  token: string | undefined
  /** Who may scrape, for the document. */
  security: SecurityRequirement[]
}

const STARTED = Symbol('metrics-started')
const COUNTED = Symbol('metrics-counted-reply')

declare module 'fastify' {
  interface FastifyRequest {
    [STARTED]?: bigint
  }
}

declare module 'node:http' {
  interface ServerResponse {
    [COUNTED]?: FastifyReply
  }
}

/** Request counts and latencies for every route, and the Prometheus endpoint GET /metrics. */
async function metricsPlugin(fastify: FastifyInstance, { metrics, token, security }: MetricsOptions): Promise<void> {
  // Counted when the response closes, which it does once however the request ends: onResponse
  // never runs for a request whose client hung up first. One listener for every response.
  function counted(this: ServerResponse): void {
    const reply = this[COUNTED]!
    const { request } = reply
    const seconds = Number(process.hrtime.bigint() - request[STARTED]!) / 1e9
    metrics.requestFinished(request.routeOptions.url ?? 'unmatched', request.method, endStatus(request, this), seconds)
  }
  // Callback-style: it runs on every request, and an async hook costs a promise each time.
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    request[STARTED] = process.hrtime.bigint()
    metrics.requestStarted()
    reply.raw[COUNTED] = reply
    reply.raw.on('close', counted)
    done()
  })

  const scraper = token ? tokenMatcher([token]) : undefined
  fastify.get(
    '/metrics',
    {
      schema: {
        operationId: 'metrics',
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        description:
          "This process's metrics: requests, OpenAI calls, tokens, deployments; docs/observability.md lists them.",
        security,
        response: {
          200: {
            description: 'Every metric of this process',
            headers: REQUEST_ID_HEADERS,
            content: { [metrics.registry.contentType.split(';')[0]!]: { schema: { type: 'string' } } },
          },
          ...errorResponses(
            {
              refused: token ? 'No valid METRICS_TOKEN, or a malformed request' : 'A malformed request',
              failed: 'The service failed',
            },
            {},
          ),
        },
      },
    },
    async (request, reply) => {
      if (scraper && scraper(parseBearer(request.headers.authorization)) < 0) throw new ServiceUnauthorizedError()
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
    },
  )
}

export default fp(metricsPlugin, { name: 'metrics' })
