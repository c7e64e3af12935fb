import accepts from '@fastify/accepts'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from './config.ts'
import { hasCodedBody } from './content-coding.ts'
import { ERROR_SCHEMA, UnsupportedContentEncodingError } from './errors.ts'
import { IdleMemoryRelease } from './idle-memory-release.ts'
import { LogSummary } from './log-summary.ts'
import { ServiceMetrics } from './metrics/service-metrics.ts'
import { TaskCache } from './cache/task-cache.ts'
import { Spend } from './spend/spend.ts'
import clientWriteTimeout from './plugins/client-write-timeout.ts'
import errorHandler from './plugins/error-handler.ts'
import metricsPlugin from './plugins/metrics.ts'
import swaggerPlugin from './plugins/swagger.ts'
import { documentedSecurity } from './openapi/security.ts'
import { documentComponents } from './openapi/components.ts'
import unmatchedRoutes from './plugins/unmatched-routes.ts'
import healthRoutes from './routes/health.ts'
import taskRoutes from './routes/tasks.ts'
import { boundedSchemaCompiler } from './schemas/body-validator.ts'
import { loadComponentDefinition, loadTaskDefinitions } from './schemas/load-tasks.ts'
import type { Tracing } from './tracing/tracing.ts'
import { defaultMaxConcurrentUpstream } from './upstream/capacity.ts'
import { CIRCUIT, NO_CIRCUIT } from './routing/deployment.ts'
import { OpenAIUpstream } from './upstream/openai-upstream.ts'

export interface AppOptions {
  config: Config
  /** OpenTelemetry, when tracing is on (server.ts starts it). */
  tracing?: Tracing
}

/** The whole service as a Fastify plugin; server.ts (or a test) gives it a server to live in. */
export default async function openaiTasksApp(fastify: FastifyInstance, { config, tracing }: AppOptions): Promise<void> {
  // First: every route and hook registered after it is inside the request's span.
  if (tracing) await fastify.register(tracing.plugin)
  const [definitions, component] = await Promise.all([loadTaskDefinitions(), loadComponentDefinition()])
  let upstream: OpenAIUpstream | undefined
  const logSummary = new LogSummary({ intervalMs: config.logSummaryIntervalMs, log: fastify.log })
  fastify.addHook('onClose', (_instance, done) => {
    logSummary.close()
    done()
  })
  const metrics = new ServiceMetrics({
    upstreamInFlight: () => upstream?.inFlight ?? 0,
    deployments: () => upstream?.deploymentGauges() ?? [],
    // The deployments' patterns name models too; `*` names none.
    knownModels: [...config.allowedModels, ...config.deployments.flatMap((d) => d.models).filter((m) => m !== '*')],
    knownCallers: config.auth.callers.map((caller) => caller.name),
  })
  const maxConcurrent = config.maxConcurrentUpstream ?? defaultMaxConcurrentUpstream()
  fastify.log.info(
    { maxConcurrentUpstream: maxConcurrent, derived: config.maxConcurrentUpstream === undefined },
    'OpenAI calls open at most',
  )
  upstream = new OpenAIUpstream({
    deployments: config.deployments,
    ...config.upstream,
    retries: config.retries,
    // With one deployment there is nowhere else to go: its calls are retried as they always were.
    circuit: config.deployments.length > 1 ? CIRCUIT : NO_CIRCUIT,
    maxConcurrent,
    observer: metrics.upstream,
    logSummary,
    log: fastify.log,
  })
  fastify.addHook('onClose', () => upstream.close())
  if (config.idleMemoryReleaseMs) {
    const idleRelease = new IdleMemoryRelease({
      idleMs: config.idleMemoryReleaseMs,
      calls: () => upstream.calls,
      busy: () => upstream.inFlight > 0,
      log: fastify.log,
    })
    fastify.addHook('onReady', (done) => {
      idleRelease.start()
      done()
    })
    fastify.addHook('onClose', (_instance, done) => {
      idleRelease.stop()
      done()
    })
  }
  fastify.decorate('upstream', upstream)
  const cache = await TaskCache.open(config.cache, { log: fastify.log, registry: metrics.registry })
  fastify.addHook('onClose', () => cache.close())
  const spend = await Spend.open(config, { log: fastify.log, metrics })
  fastify.addHook('onClose', () => spend.close())

  // Task inputs are JSON; a text/plain body is refused with 415 rather than parsed as a string.
  fastify.removeContentTypeParser('text/plain')
  fastify.addSchema(ERROR_SCHEMA)
  // Bodies up to the route's limit are refused in milliseconds, whatever their shape.
  fastify.setValidatorCompiler(boundedSchemaCompiler)
  await fastify.register(unmatchedRoutes)
  // As enforced at start-up: a reloaded file keeps the kinds of key the service started with.
  const security = documentedSecurity(config, upstream.hasServerKeys)
  await fastify.register(swaggerPlugin, {
    component,
    schemas: documentComponents(definitions),
    schemes: security.schemes,
    publicUrl: config.publicUrl,
    port: config.port,
  })
  await fastify.register(errorHandler, { logSummary })
  await fastify.register(metricsPlugin, { metrics, token: config.metricsToken, security: security.metrics })
  await fastify.register(clientWriteTimeout, {
    timeoutMs: config.clientWriteTimeoutMs,
    onTimeout: (pendingBytes) => {
      metrics.clientWriteTimedOut()
      logSummary.warn(
        fastify.log,
        { kind: 'stalled client', operation: 'response' },
        { pendingBytes },
        'client stopped reading: connection closed',
      )
    },
  })
  await fastify.register(accepts)
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    // Here rather than in a parser: a compressed body is refused before anything reads it.
    if (hasCodedBody(request.headers)) {
      reply.header('accept-encoding', 'identity')
      return done(new UnsupportedContentEncodingError())
    }
    done()
  })

  await fastify.register(fp(healthRoutes))
  await fastify.register(taskRoutes, {
    config,
    definitions,
    component,
    upstream,
    metrics,
    security,
    tracer: tracing?.calls,
    cache,
    spend,
  })
}

declare module 'fastify' {
  interface FastifyInstance {
    upstream: OpenAIUpstream
  }
}
