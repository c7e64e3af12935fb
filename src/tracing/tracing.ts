import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.ts'
import type { CallTracer } from './model-call.ts'

/** OpenTelemetry, started: what the app plugs in, and how it ends. */
export interface Tracing {
  /** Registered before anything else: a SERVER span per request, its ids on the request's log lines. */
  plugin: FastifyPluginAsync
  /** GenAI spans for OpenAI calls. */
  calls: CallTracer
  /** The SDK's own warnings (spans it could not export) go to this log. */
  logTo(log: FastifyBaseLogger): void
  /** Exports the spans still buffered; call it once the server has closed. */
  shutdown(): Promise<void>
}

/**
 * Starts OpenTelemetry when the configuration asks for it. Off, the SDK is never even loaded:
 * no module, no hook, no diagnostics_channel subscriber. No `--import` is needed either: Fastify
 * is traced by a plugin and undici through its diagnostics channels, neither by patching modules.
 */
export async function startTracing(config: Config): Promise<Tracing | undefined> {
  if (!config.tracing.enabled) return undefined
  const { startOpenTelemetry } = await import('./open-telemetry.ts')
  return startOpenTelemetry({
    captureContent: config.tracing.captureMessageContent,
    upstreamBaseUrl: config.openai.baseUrl,
  })
}
