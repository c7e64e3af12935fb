/**
 * The OpenTelemetry Node SDK, configured by the standard OTEL_* variables (exporter, protocol,
 * endpoint, headers, sampler, batching, resource), for traces only: metrics stay Prometheus's
 * (GET /metrics) and logs pino's (stdout). Loaded only when tracing is on (tracing.ts).
 */
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { context, diag, DiagLogLevel, trace, type Attributes, type Span } from '@opentelemetry/api'
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici'
import { NodeSDK } from '@opentelemetry/sdk-node'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { GenAiTracer, RESEND_COUNT } from './genai-tracer.ts'
import { requestSpans } from './request-spans.ts'
import type { Tracing } from './tracing.ts'

/** Probes and scrapes, every few seconds, would bury the traces worth reading. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics'])

const SERVICE_NAME = 'openai-tasks'

export function startOpenTelemetry(options: { captureContent: boolean; upstreamBaseUrl: string }): Tracing {
  const fastify = new FastifyOtelInstrumentation({
    // The request span alone: spans for every hook and the handler are noise, paid per request.
    instrumentHooks: false,
    instrumentHandler: false,
    ignorePaths: ({ url }) => UNTRACED_PATHS.has(url.split('?', 1)[0]!),
    requestHook: nameAfterRoute,
  })
  const undici = new UndiciInstrumentation({
    // Only requests made inside a trace: the OpenAI calls, each inside its GenAI span.
    requireParentforSpans: true,
    startSpanHook: resendCount,
  })
  const sdk = new NodeSDK({
    instrumentations: [fastify, undici],
    metricReaders: [],
    logRecordProcessors: [],
    ...(!namesService(process.env) && { serviceName: SERVICE_NAME }),
  })
  sdk.start()
  return {
    plugin: requestSpans(fastify),
    calls: new GenAiTracer(trace.getTracer(SERVICE_NAME), options),
    logTo: (log) => {
      // OTEL_LOG_LEVEL set: the SDK's own console logger, as documented, is left in place.
      if (process.env.OTEL_LOG_LEVEL === undefined) diag.setLogger(diagnosticsTo(log), DiagLogLevel.WARN)
    },
    shutdown: () => sdk.shutdown(),
  }
}

/** HTTP's span name: `{method} {route}`. */
function nameAfterRoute(span: Span, request: FastifyRequest): void {
  const route = request.routeOptions.url
  span.updateName(route ? `${request.method} ${route}` : request.method)
}

/** `http.request.resend_count` on an HTTP attempt after the first (the GenAI span sets which). */
function resendCount(): Attributes {
  const count = context.active().getValue(RESEND_COUNT)
  return count === undefined ? {} : { 'http.request.resend_count': count as number }
}

/** OTEL_SERVICE_NAME, or service.name in OTEL_RESOURCE_ATTRIBUTES, wins over ours. */
function namesService(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.OTEL_SERVICE_NAME) || /(?:^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '')
}

function diagnosticsTo(log: FastifyBaseLogger) {
  const write =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]) =>
      log[level]({ component: 'opentelemetry', ...(args.length && { args: args.map(String) }) }, message)
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    verbose: write('trace'),
  }
}
