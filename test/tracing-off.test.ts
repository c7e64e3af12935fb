// Tracing is off unless an OTEL_* variable asks for it, and off costs nothing: no OpenTelemetry
// module is loaded, nothing listens on undici's or Fastify's diagnostics channels, and log lines
// carry no trace ids. Every import this process makes is recorded from the start.
import assert from 'node:assert/strict'
import diagnosticsChannel from 'node:diagnostics_channel'
import { registerHooks } from 'node:module'
import { test } from 'node:test'

const resolved: string[] = []
registerHooks({
  resolve(specifier, context, nextResolve) {
    resolved.push(specifier)
    return nextResolve(specifier, context)
  },
})

const { loadConfig } = await import('../src/config.ts')
const { startTracing } = await import('../src/tracing/tracing.ts')
const { capturedLogLines, serveWithUpstream } = await import('./support/app.ts')

test('the OTEL_* variables decide whether tracing is on', () => {
  assert.equal(loadConfig({}).tracing.enabled, false, 'off by default')
  assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing.enabled, true)
  assert.equal(
    loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }).tracing.enabled,
    true,
  )
  assert.equal(loadConfig({ OTEL_TRACES_EXPORTER: 'otlp' }).tracing.enabled, true)
  assert.equal(
    loadConfig({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing.enabled,
    false,
  )
  assert.equal(
    loadConfig({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing.enabled,
    false,
  )
  assert.equal(loadConfig({}).tracing.captureMessageContent, false)
  assert.equal(
    loadConfig({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true' }).tracing.captureMessageContent,
    true,
  )
  assert.equal(
    loadConfig({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'SPAN_ONLY' }).tracing.captureMessageContent,
    true,
  )
  assert.equal(
    loadConfig({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'false' }).tracing.captureMessageContent,
    false,
  )
  assert.equal(
    loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ', OTEL_TRACES_SAMPLER_ARG: '' }).tracing.enabled,
    false,
    'empty is unset',
  )
  assert.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' }), /OTEL_EXPORTER_OTLP_PROTOCOL/)
  assert.throws(() => loadConfig({ OTEL_TRACES_SAMPLER: 'ratio' }), /OTEL_TRACES_SAMPLER/)
  assert.throws(() => loadConfig({ OTEL_TRACES_SAMPLER_ARG: '10' }), /OTEL_TRACES_SAMPLER_ARG/)
})

test('docs/observability.md documents every OTEL_* variable the service reads', async () => {
  const { OTEL_ENV_SCHEMA } = await import('../src/config.ts')
  const { readFile } = await import('node:fs/promises')
  const doc = await readFile(new URL('../docs/observability.md', import.meta.url), 'utf8')
  const missing = Object.keys(OTEL_ENV_SCHEMA.properties).filter((name) => !doc.includes(`| \`${name}\` |`))
  assert.deepEqual(missing, [])
})

test('off: no OpenTelemetry module is loaded, no diagnostics channel is listened to, no trace ids are logged', async (t) => {
  assert.equal(await startTracing(loadConfig({})), undefined)
  const { base } = await serveWithUpstream(t)
  const post = (path: string, body: unknown, accept = 'application/json'): Promise<Response> =>
    fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept },
      body: JSON.stringify(body),
    })
  for (const res of [
    await post('/v1/tasks/text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }),
    await post('/v1/tasks/text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, 'text/event-stream'),
    await post('/v1/tasks/text-embeddings/batch', { inputs: [{ model: 'text-embedding-3-small', text: 'hi' }] }),
  ]) {
    assert.equal(res.status, 200)
    await res.arrayBuffer()
  }
  assert.ok(resolved.includes('fastify') && resolved.includes('undici'), 'the hook sees package imports')
  // prom-client loads @opentelemetry/api itself (for exemplars): without an SDK behind it, it is inert.
  const loaded = resolved.filter((specifier) =>
    /@opentelemetry\/(?!api$)|@fastify\/otel|open-telemetry|genai-tracer|request-spans/.test(specifier),
  )
  assert.deepEqual(loaded, [])
  for (const name of [
    'undici:request:create',
    'undici:request:headers',
    'undici:request:trailers',
    'fastify.initialization',
  ]) {
    assert.equal(diagnosticsChannel.hasSubscribers(name), false, `nothing listens on ${name}`)
  }
  const requestLines = capturedLogLines.filter((line) => line.includes('"request completed"'))
  assert.ok(requestLines.length >= 3)
  for (const line of requestLines) assert.doesNotMatch(line, /trace_id|span_id/)
})
