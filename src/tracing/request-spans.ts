import type { FastifyOtelInstrumentation } from '@fastify/otel'
import { context } from '@opentelemetry/api'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'

/**
 * @fastify/otel's SERVER span per request (continuing an incoming `traceparent`), with two
 * additions: the span's ids on every log line of the request, and its context active in the
 * handler, so the OpenAI calls the handler makes become its children.
 */
export function requestSpans(instrumentation: FastifyOtelInstrumentation): FastifyPluginAsync {
  async function plugin(fastify: FastifyInstance): Promise<void> {
    await fastify.register(instrumentation.plugin())
    // Runs after @fastify/otel's onRequest hook, which starts the span.
    fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      const { span } = request.opentelemetry()
      if (span) {
        const { traceId, spanId } = span.spanContext()
        // The request's own child logger, shared by request.log and reply.log.
        ;(request.log as unknown as Logger).setBindings({ trace_id: traceId, span_id: spanId })
      }
      done()
    })
    // The body was read in socket events, outside the span's context: enter it for the handler.
    fastify.addHook('preHandler', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      const otel = request.opentelemetry()
      if (otel.context) context.with(otel.context, done)
      else done()
    })
  }
  return fp(plugin, { name: 'request-spans' })
}
