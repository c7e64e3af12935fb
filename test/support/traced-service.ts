import type { TestContext } from 'node:test'
import { TEST_API_KEY } from './app.ts'
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai/index.ts'
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.ts'
import { startServerProcess, type ServerProcess } from './server-process.ts'

export interface TracedService {
  upstream: FakeOpenAI
  receiver: OtlpReceiver
  server: ServerProcess
}

/**
 * The stand-in OpenAI, an OTLP endpoint, and `src/server.ts` (OpenTelemetry is process-global)
 * exporting to it every 50 ms, http/json unless `env` says otherwise.
 */
export async function startTracedService(t: TestContext, env: Record<string, string> = {}): Promise<TracedService> {
  const upstream = await startFakeOpenAI()
  t.after(() => upstream.close())
  const receiver = await startOtlpReceiver(t)
  const server = await startServerProcess(t, {
    OPENAI_BASE_URL: upstream.url,
    OPENAI_API_KEY: TEST_API_KEY,
    UPSTREAM_RETRY_BASE_DELAY_MS: '5',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    ...env,
  })
  return { upstream, receiver, server }
}
