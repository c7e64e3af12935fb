import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import eventLoopShedding from '../plugins/event-loop-shedding.ts'
import rateLimitPlugin from '../plugins/rate-limit.ts'
import serviceAuth from '../plugins/service-auth.ts'
import uploads from '../plugins/uploads.ts'
import type { DocumentedSecurity } from '../openapi/security.ts'
import type { ComponentDefinition, TaskDefinition } from '../schemas/load-tasks.ts'
import type { ServiceMetrics } from '../metrics/service-metrics.ts'
import type { TaskCache } from '../cache/task-cache.ts'
import type { Spend } from '../spend/spend.ts'
import type { CallTracer } from '../tracing/model-call.ts'
import type { OpenAIUpstream } from '../upstream/openai-upstream.ts'
import { registerBatchRoute } from './batch-route.ts'
import { registerCatalogueRoute } from './catalogue.ts'
import { registerTaskRoute } from './task-route.ts'
import { registerUsageRoute } from './usage.ts'

export interface TaskRoutesOptions {
  config: Config
  definitions: TaskDefinition[]
  component: ComponentDefinition
  upstream: OpenAIUpstream
  metrics: ServiceMetrics
  /** GenAI spans for OpenAI calls, when tracing is on. */
  tracer?: CallTracer
  /** Who may call the task routes and the catalogue, for the document. */
  security: DocumentedSecurity
  /** The cache of the tasks that have one. */
  cache?: TaskCache | undefined
  spend: Spend
}

/**
 * Everything under /v1/tasks, behind the service's guards: client authentication, per-client
 * rate limits and load shedding. One route per task of schemas/tasks.yaml, and the catalogue.
 */
export default async function taskRoutes(fastify: FastifyInstance, options: TaskRoutesOptions): Promise<void> {
  const { config, definitions, component, upstream, metrics, tracer, security, cache, spend } = options
  await fastify.register(serviceAuth, { callers: config.auth.callers, adminDigests: config.auth.adminDigests })
  fastify.decorateRequest('bill', undefined)
  await fastify.register(rateLimitPlugin, { rateLimit: config.rateLimit })
  if (config.maxEventLoopDelayMs) await fastify.register(eventLoopShedding, { maxDelayMs: config.maxEventLoopDelayMs })

  const answers = { rateLimited: config.rateLimit.max > 0, shed: config.maxEventLoopDelayMs > 0 }
  const documented = { security: security.tasks, answers: { ...answers, deployment: true } }
  const deps = { config, upstream, metrics, tracer, documented, cache, spend }
  for (const def of definitions) {
    if (Object.keys(def.uploads).length) {
      await fastify.register(async (scope) => {
        await scope.register(uploads, { fields: def.uploads, schema: def.input })
        registerTaskRoute(scope, def, deps)
      })
    } else {
      registerTaskRoute(fastify, def, deps)
    }
    registerBatchRoute(fastify, def, deps)
  }
  registerCatalogueRoute(fastify, component, definitions, { security: security.catalogue, answers })
  registerUsageRoute(
    fastify,
    { ledger: spend.ledger, callers: config.auth.callers },
    { security: security.catalogue, answers },
  )
}
