// Tracing, end to end: the service runs as its own process (OpenTelemetry is process-global)
// with the standard OTEL_* variables pointing at a real OTLP/HTTP endpoint the test starts, in
// front of the stand-in OpenAI; the spans are read from what that endpoint received.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { FakeOpenAI } from './support/fake-openai/index.ts'
import { SpanKind, StatusCode, type ReceivedSpan } from './support/otlp-receiver.ts'
import type { ServerProcess } from './support/server-process.ts'
import { startTracedService } from './support/traced-service.ts'

// Each span anchors its clock on Date.now(), so two spans' times agree to about a millisecond.
const CLOCK_SKEW_NS = 2_000_000n

/** A caller's W3C trace context: a fresh trace, a parent span in it, sampled. */
interface CallerTrace {
  traceId: string
  parentId: string
  traceparent: string
}

function callerTrace(): CallerTrace {
  const traceId = randomBytes(16).toString('hex')
  const parentId = randomBytes(8).toString('hex')
  return { traceId, parentId, traceparent: `00-${traceId}-${parentId}-01` }
}

/** POSTs as a caller in a trace of its own: its trace id tells this request's spans from the others'. */
async function postInTrace(
  server: ServerProcess,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ res: Response; trace: CallerTrace }> {
  const trace = callerTrace()
  const res = await post(server, path, body, { ...headers, traceparent: trace.traceparent })
  return { res, trace }
}

function post(
  server: ServerProcess,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(server.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

const isServer = (span: ReceivedSpan): boolean => span.kind === SpanKind.SERVER
const isHttp = (span: ReceivedSpan): boolean =>
  span.kind === SpanKind.CLIENT && 'http.request.method' in span.attributes
const isGenAi = (span: ReceivedSpan): boolean => 'gen_ai.operation.name' in span.attributes
const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] =>
  spans.filter((s) => s.parentSpanId === parent.spanId)

function only(spans: ReceivedSpan[], match: (span: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(match)
  assert.equal(found.length, 1, `one ${what} span among: ${spans.map((s) => s.name).join(', ')}`)
  return found[0]!
}

/** The `traceparent` a request to the stand-in carried: `[traceId, parentSpanId]`. */
function traceparentAt(upstream: FakeOpenAI, index: number): [string, string] {
  const header = upstream.requests[index]?.headers.traceparent
  assert.equal(typeof header, 'string', `request ${index} to OpenAI carries a traceparent`)
  const [, traceId, parentId] = (header as string).split('-')
  return [traceId!, parentId!]
}

test("a call continues the caller's trace: SERVER → GenAI CLIENT → HTTP, with the GenAI attributes, and OpenAI sees the trace", async (t) => {
  const { upstream, receiver, server } = await startTracedService(t)
  const prompt = 'a prompt nobody may read in a trace'
  const { res, trace: caller } = await postInTrace(server, '/v1/tasks/text-generation', {
    model: 'gpt-4o-mini',
    prompt,
    'system-message': 'an instruction nobody may read either',
    temperature: 0.3,
    'top-p': 0.9,
    'max-tokens': 50,
    'presence-penalty': 0.1,
    'frequency-penalty': 0.2,
    n: 2,
  })
  assert.equal(res.status, 200)
  const answer = (await res.json()) as { usage: Record<string, number> }
  const spans = await receiver.waitForSpans((s) => s.traceId === caller.traceId, 3)
  assert.equal(spans.length, 3)

  const request = only(spans, isServer, 'SERVER')
  assert.equal(request.parentSpanId, caller.parentId, "the request span continues the caller's span")
  assert.equal(request.name, 'POST /v1/tasks/text-generation')
  assert.equal(request.attributes['http.route'], '/v1/tasks/text-generation')
  assert.equal(request.attributes['http.response.status_code'], 200)
  assert.equal(request.attributes['openai_tasks.caller'], 'anonymous', 'no service tokens: the caller is anonymous')
  const cost = Number(res.headers.get('x-openai-tasks-cost-usd'))
  assert.ok(cost > 0, 'gpt-4o-mini has a price')
  assert.equal(request.attributes['openai_tasks.cost_usd'], cost, "the request's span says what the header says")
  assert.equal(request.attributes['openai_tasks.cost_unknown'], undefined)

  const call = only(childrenOf(spans, request), isGenAi, 'GenAI')
  assert.equal(call.name, 'chat gpt-4o-mini')
  assert.equal(call.kind, SpanKind.CLIENT)
  assert.notEqual(call.status.code, StatusCode.ERROR)
  const { origin } = new URL(upstream.url)
  assert.deepEqual(
    { ...call.attributes, 'gen_ai.response.id': typeof call.attributes['gen_ai.response.id'] },
    {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(origin).port),
      // The environment's one upstream is the deployment named default.
      'openai_tasks.deployment': 'default',
      'openai_tasks.caller': 'anonymous',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.request.temperature': 0.3,
      'gen_ai.request.top_p': 0.9,
      'gen_ai.request.max_tokens': 50,
      'gen_ai.request.presence_penalty': 0.1,
      'gen_ai.request.frequency_penalty': 0.2,
      'gen_ai.request.choice.count': 2,
      'gen_ai.output.type': 'text',
      'gen_ai.response.id': 'string',
      'gen_ai.response.model': JSON.parse(upstream.requests[0]!.responseBody!.toString()).model,
      'gen_ai.response.finish_reasons': ['stop', 'stop'],
      'gen_ai.usage.input_tokens': answer.usage['prompt-tokens'],
      'gen_ai.usage.output_tokens': answer.usage['completion-tokens'],
      'gen_ai.usage.cache_read.input_tokens': 0,
      'gen_ai.usage.reasoning.output_tokens': 0,
    },
  )

  const http = only(childrenOf(spans, call), isHttp, 'HTTP')
  assert.equal(http.name, 'POST')
  assert.equal(http.attributes['url.full'], `${upstream.url}/chat/completions`)
  assert.equal(http.attributes['http.response.status_code'], 200)
  assert.deepEqual(
    traceparentAt(upstream, 0),
    [caller.traceId, http.spanId],
    'OpenAI is called inside the HTTP span of the same trace',
  )
  assert.ok(
    call.startNs <= http.startNs + CLOCK_SKEW_NS && http.endNs <= call.endNs + CLOCK_SKEW_NS,
    'the GenAI span covers its HTTP span',
  )

  assert.doesNotMatch(
    JSON.stringify(receiver.spans, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
    /nobody may read/,
    'no prompt recorded',
  )
  const line = server
    .log()
    .split('\n')
    .filter((l) => l.includes('"request completed"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => (l.req as { url: string }).url === '/v1/tasks/text-generation')
  assert.ok(line, 'the request was logged')
  assert.equal(line.trace_id, caller.traceId)
  assert.equal(line.span_id, request.spanId)
})

test("a streamed answer's span ends with the stream, with its token counts; a hang-up ends it too", async (t) => {
  const { upstream, receiver, server } = await startTracedService(t)
  const { res, trace: caller } = await postInTrace(
    server,
    '/v1/tasks/text-generation',
    { model: 'gpt-4o', prompt: 'stream me' },
    { accept: 'text/event-stream' },
  )
  const text = await res.text()
  const output = JSON.parse(/event: output\ndata: (.*)\n/.exec(text)![1]!) as { usage: Record<string, number> }
  const spans = await receiver.waitForSpans((s) => s.traceId === caller.traceId, 3)
  const call = only(spans, isGenAi, 'GenAI')
  assert.ok(output.usage['cost-usd']! > 0)
  assert.equal(call.attributes['openai_tasks.cost_usd'], output.usage['cost-usd'], "the stream's cost, on its span")
  const http = only(childrenOf(spans, call), isHttp, 'HTTP')
  assert.equal(call.name, 'chat gpt-4o')
  assert.equal(call.attributes['gen_ai.request.stream'], true)
  assert.equal(call.attributes['gen_ai.usage.input_tokens'], output.usage['prompt-tokens'])
  assert.equal(call.attributes['gen_ai.usage.output_tokens'], output.usage['completion-tokens'])
  assert.deepEqual(call.attributes['gen_ai.response.finish_reasons'], ['stop'])
  assert.equal(call.attributes['gen_ai.response.model'], 'gpt-4o')
  const firstChunk = call.attributes['gen_ai.response.time_to_first_chunk'] as number
  assert.ok(
    firstChunk > 0 && firstChunk * 1e9 < Number(call.endNs - call.startNs),
    'the first chunk came before the end',
  )
  assert.ok(call.endNs + CLOCK_SKEW_NS >= http.endNs, 'the span lasts until the whole stream was read')

  // A stream OpenAI breaks off: the span ends with the failure the caller's error event reports.
  upstream.enqueue({ kind: 'truncated-stream', afterChunks: 3 })
  const { res: cut, trace: broken } = await postInTrace(
    server,
    '/v1/tasks/text-generation',
    { model: 'gpt-4o', prompt: 'cut me' },
    { accept: 'text/event-stream' },
  )
  const reported = JSON.parse(/event: error\ndata: (.*)\n/.exec(await cut.text())![1]!) as {
    error: { code: string; details?: Array<Record<string, unknown>> }
  }
  const [failed] = await receiver.waitForSpans((s) => s.traceId === broken.traceId && isGenAi(s))
  assert.equal(failed!.status.code, StatusCode.ERROR)
  assert.equal(failed!.attributes['error.type'], reported.error.details?.[0]?.['transport-code'] ?? reported.error.code)

  // A stream the caller leaves: the span ends with the hang-up, as a failure.
  upstream.enqueue({ kind: 'truncated-stream', afterChunks: 3, stall: true })
  const left = callerTrace()
  const controller = new AbortController()
  const stalled = await fetch(server.base + '/v1/tasks/text-generation', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', traceparent: left.traceparent },
    body: JSON.stringify({ model: 'gpt-4o', prompt: 'leave me' }),
    signal: controller.signal,
  })
  const reader = stalled.body!.getReader()
  await reader.read()
  controller.abort()
  const [gone] = await receiver.waitForSpans((s) => s.traceId === left.traceId && isGenAi(s))
  assert.equal(gone!.status.code, StatusCode.ERROR)
  assert.equal(gone!.attributes['error.type'], 'ERR_CLIENT_CLOSED')
})

test("a streamed transcript's span ends at OpenAI's done event, with its token counts", async (t) => {
  const { receiver, server } = await startTracedService(t)
  const wav = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='
  const { res, trace: caller } = await postInTrace(
    server,
    '/v1/tasks/speech-recognition',
    { model: 'gpt-4o-transcribe', audio: wav },
    { accept: 'text/event-stream' },
  )
  assert.match(await res.text(), /event: output\n/)
  const spans = await receiver.waitForSpans((s) => s.traceId === caller.traceId, 3)
  const call = only(spans, isGenAi, 'GenAI')
  const http = only(childrenOf(spans, call), isHttp, 'HTTP')
  assert.equal(call.name, 'speech_to_text gpt-4o-transcribe')
  assert.equal(call.status.code, StatusCode.UNSET)
  assert.equal(call.attributes['gen_ai.request.stream'], true)
  assert.ok((call.attributes['gen_ai.usage.input_tokens'] as number) > 0, 'usage from the done event')
  assert.ok((call.attributes['gen_ai.usage.output_tokens'] as number) > 0)
  assert.ok((call.attributes['gen_ai.response.time_to_first_chunk'] as number) > 0)
  assert.ok(call.endNs + CLOCK_SKEW_NS >= http.endNs, 'the span lasts until the stream was read')
})

test('retries are HTTP attempts of their own under the one GenAI span; failures carry error.type', async (t) => {
  const { upstream, receiver, server } = await startTracedService(t)
  upstream.enqueue({ status: 500 })
  const { res: ok, trace: retried } = await postInTrace(server, '/v1/tasks/text-embeddings', {
    model: 'text-embedding-3-small',
    text: 'again',
  })
  assert.equal(ok.status, 200)
  const spans = await receiver.waitForSpans((s) => s.traceId === retried.traceId, 4)
  const call = only(spans, isGenAi, 'GenAI')
  assert.notEqual(call.status.code, StatusCode.ERROR, 'the call succeeded in the end')
  const attempts = childrenOf(spans, call).sort((a, b) => Number(a.startNs - b.startNs))
  assert.equal(attempts.length, 2, 'two HTTP attempts')
  assert.equal(attempts[0]!.attributes['http.response.status_code'], 500)
  assert.equal(attempts[0]!.attributes['error.type'], '500')
  assert.equal(attempts[0]!.status.code, StatusCode.ERROR)
  assert.equal(attempts[0]!.attributes['http.request.resend_count'], undefined)
  assert.equal(attempts[1]!.attributes['http.response.status_code'], 200)
  assert.equal(attempts[1]!.attributes['http.request.resend_count'], 1)
  assert.deepEqual(traceparentAt(upstream, 0), [retried.traceId, attempts[0]!.spanId])
  assert.deepEqual(traceparentAt(upstream, 1), [retried.traceId, attempts[1]!.spanId])

  upstream.enqueue({ status: 400 })
  const { res: bad, trace: refused } = await postInTrace(server, '/v1/tasks/text-embeddings', {
    model: 'text-embedding-3-small',
    text: 'no',
  })
  assert.equal(bad.status, 400)
  const [refusedCall] = await receiver.waitForSpans((s) => s.traceId === refused.traceId && isGenAi(s))
  assert.equal(refusedCall!.status.code, StatusCode.ERROR)
  assert.equal(refusedCall!.attributes['error.type'], '400', "OpenAI's status")

  upstream.enqueue({ kind: 'reset', times: 3 })
  const { res: unreachable, trace: reset } = await postInTrace(server, '/v1/tasks/text-embeddings', {
    model: 'text-embedding-3-small',
    text: 'gone',
  })
  assert.equal(unreachable.status, 502)
  const resetSpans = await receiver.waitForSpans((s) => s.traceId === reset.traceId, 5)
  const resetCall = only(resetSpans, isGenAi, 'GenAI')
  assert.equal(resetCall.status.code, StatusCode.ERROR)
  assert.match(
    String(resetCall.attributes['error.type']),
    /^(ECONNRESET|UND_ERR_SOCKET|EPIPE)$/,
    "the transport's code",
  )
  assert.equal(childrenOf(resetSpans, resetCall).length, 3, 'three attempts')
})

test('each batch item is a span; items run alone have their calls beneath, a shared call links to its items', async (t) => {
  const { receiver, server } = await startTracedService(t)
  const { res, trace: perItem } = await postInTrace(server, '/v1/tasks/text-generation/batch', {
    inputs: [
      { model: 'gpt-4o-mini', prompt: 'one' },
      { model: 'gpt-4o-mini', prompt: 'two' },
      { model: 'gpt-4o-mini' },
    ],
  })
  assert.equal(res.status, 200)
  const spans = await receiver.waitForSpans((s) => s.traceId === perItem.traceId, 7)
  const request = only(spans, isServer, 'SERVER')
  const items = childrenOf(spans, request).filter((s) => s.name === 'batch item')
  assert.deepEqual(
    items.map((s) => s.attributes['openai_tasks.batch.item.index']).sort(),
    [0, 1],
    'the two valid items',
  )
  for (const item of items) {
    const call = only(childrenOf(spans, item), isGenAi, 'GenAI')
    assert.equal(call.name, 'chat gpt-4o-mini')
    assert.equal(childrenOf(spans, call).filter(isHttp).length, 1)
  }

  const { res: embedded, trace: shared } = await postInTrace(server, '/v1/tasks/text-embeddings/batch', {
    inputs: [
      { model: 'text-embedding-3-small', text: 'one' },
      { model: 'text-embedding-3-small', text: 'two' },
    ],
  })
  assert.equal(embedded.status, 200)
  const sharedSpans = await receiver.waitForSpans((s) => s.traceId === shared.traceId, 5)
  const sharedRequest = only(sharedSpans, isServer, 'SERVER')
  const call = only(sharedSpans, isGenAi, 'GenAI')
  assert.equal(call.parentSpanId, sharedRequest.spanId, 'one call, under the request')
  const sharedItems = childrenOf(sharedSpans, sharedRequest).filter((s) => s.name === 'batch item')
  assert.equal(sharedItems.length, 2)
  assert.deepEqual(
    call.links.map((l) => l.spanId).sort(),
    sharedItems.map((s) => s.spanId).sort(),
    'the call links to the items it served',
  )
})

test("every task's call is named for its operation and model", async (t) => {
  const { receiver, server } = await startTracedService(t)
  const caller = callerTrace()
  const headers = { traceparent: caller.traceparent }
  const wav = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='
  const calls: Array<[string, unknown, Record<string, string>?]> = [
    ['/v1/tasks/text-embeddings', { model: 'text-embedding-3-small', text: 'count', dimensions: 256 }],
    ['/v1/tasks/speech-recognition', { model: 'whisper-1', audio: wav, temperature: 0.2 }],
    ['/v1/tasks/text-to-speech', { model: 'tts-1', text: 'say it', voice: 'alloy' }],
    // Long enough for the audio to come in many chunks, after its headers.
    [
      '/v1/tasks/text-to-speech',
      { model: 'gpt-4o-mini-tts', text: 'stream it '.repeat(300), voice: 'alloy' },
      { accept: 'audio/mpeg' },
    ],
    ['/v1/tasks/text-to-image', { prompt: 'two cats', n: 2, size: '256x256' }],
  ]
  for (const [path, body, extra] of calls) {
    const res = await post(server, path, body, { ...headers, ...extra })
    assert.equal(res.status, 200, `${path}: ${res.status}`)
    await res.arrayBuffer()
  }
  const spans = await receiver.waitForSpans((s) => s.traceId === caller.traceId && isGenAi(s), calls.length)
  const byName = new Map(spans.map((s) => [s.name, s.attributes]))
  const relayed = spans.find((s) => s.name === 'text_to_speech gpt-4o-mini-tts')!
  const [audio] = await receiver.waitForSpans((s) => s.parentSpanId === relayed.spanId && isHttp(s))
  assert.ok(relayed.endNs + CLOCK_SKEW_NS >= audio!.endNs, 'relayed audio: the span lasts until all of it was read')
  assert.deepEqual([...byName.keys()].sort(), [
    'embeddings text-embedding-3-small',
    'generate_content dall-e-2',
    'speech_to_text whisper-1',
    'text_to_speech gpt-4o-mini-tts',
    'text_to_speech tts-1',
  ])
  const embeddings = byName.get('embeddings text-embedding-3-small')!
  assert.equal(embeddings['gen_ai.operation.name'], 'embeddings')
  assert.deepEqual(embeddings['gen_ai.request.encoding_formats'], ['float'])
  assert.equal(embeddings['gen_ai.embeddings.dimension.count'], 256)
  assert.equal(embeddings['gen_ai.response.model'], 'text-embedding-3-small')
  assert.ok((embeddings['gen_ai.usage.input_tokens'] as number) > 0)
  const transcription = byName.get('speech_to_text whisper-1')!
  assert.equal(transcription['gen_ai.output.type'], 'text')
  assert.equal(transcription['gen_ai.request.temperature'], 0.2)
  assert.equal(byName.get('text_to_speech tts-1')!['gen_ai.output.type'], 'speech')
  const image = byName.get('generate_content dall-e-2')!
  assert.equal(image['gen_ai.output.type'], 'image')
  assert.equal(image['gen_ai.request.choice.count'], 2)
  for (const attributes of byName.values()) {
    assert.equal(attributes['gen_ai.provider.name'], 'openai')
    assert.equal(attributes['gen_ai.input.messages'], undefined)
  }
})

test('a named caller is on the request span and each GenAI span; a model without a price makes the cost unknown', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tracing-callers-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const token = 'pipeline-a-token-0123456789'
  writeFileSync(join(dir, 'config.yaml'), `callers:\n  - { name: pipeline-a, token: ${token} }\n`)
  const { receiver, server } = await startTracedService(t, { CONFIG_FILE: join(dir, 'config.yaml') })
  const headers = { authorization: `Bearer ${token}` }
  const spansOf = async (body: unknown) => {
    const { res, trace } = await postInTrace(server, '/v1/tasks/text-generation', body, headers)
    assert.equal(res.status, 200)
    await res.arrayBuffer()
    const spans = await receiver.waitForSpans((s) => s.traceId === trace.traceId, 3)
    return {
      header: res.headers.get('x-openai-tasks-cost-usd'),
      request: only(spans, isServer, 'SERVER'),
      call: only(spans, isGenAi, 'GenAI'),
    }
  }

  const priced = await spansOf({ model: 'gpt-4o-mini', prompt: 'priced' })
  assert.equal(priced.request.attributes['openai_tasks.caller'], 'pipeline-a')
  assert.equal(priced.call.attributes['openai_tasks.caller'], 'pipeline-a')
  assert.equal(priced.request.attributes['openai_tasks.cost_usd'], Number(priced.header))

  const unpriced = await spansOf({ model: 'a-model-without-a-price', prompt: 'unpriced' })
  assert.equal(unpriced.header, 'unknown')
  assert.equal(unpriced.request.attributes['openai_tasks.caller'], 'pipeline-a')
  assert.equal(unpriced.call.attributes['openai_tasks.caller'], 'pipeline-a')
  assert.equal(unpriced.request.attributes['openai_tasks.cost_unknown'], true)
})

test("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true records the chat's input and output messages", async (t) => {
  const { receiver, server } = await startTracedService(t, {
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true',
  })
  const { res, trace: caller } = await postInTrace(server, '/v1/tasks/text-generation', {
    model: 'gpt-4o-mini',
    prompt: 'Say hi',
    'system-message': 'Be brief.',
  })
  const { texts } = (await res.json()) as { texts: string[] }
  const { res: stream, trace: streamed } = await postInTrace(
    server,
    '/v1/tasks/text-generation',
    { model: 'gpt-4o-mini', prompt: 'Stream hi' },
    { accept: 'text/event-stream' },
  )
  const streamedOutput = JSON.parse(/event: output\ndata: (.*)\n/.exec(await stream.text())![1]!) as { texts: string[] }

  const [call] = await receiver.waitForSpans((s) => s.traceId === caller.traceId && isGenAi(s))
  assert.deepEqual(call!.attributes['gen_ai.input.messages'], [
    { role: 'system', parts: [{ type: 'text', content: 'Be brief.' }] },
    { role: 'user', parts: [{ type: 'text', content: 'Say hi' }] },
  ])
  assert.deepEqual(call!.attributes['gen_ai.output.messages'], [
    { role: 'assistant', parts: [{ type: 'text', content: texts[0] }], finish_reason: 'stop' },
  ])
  const [streamCall] = await receiver.waitForSpans((s) => s.traceId === streamed.traceId && isGenAi(s))
  assert.deepEqual(streamCall!.attributes['gen_ai.output.messages'], [
    { role: 'assistant', parts: [{ type: 'text', content: streamedOutput.texts[0] }], finish_reason: 'stop' },
  ])
})

test('the default protocol is http/protobuf, with OTEL_SERVICE_NAME and OTEL_EXPORTER_OTLP_HEADERS honoured', async (t) => {
  const { receiver, server } = await startTracedService(t, {
    OTEL_EXPORTER_OTLP_PROTOCOL: '',
    OTEL_SERVICE_NAME: 'tasks-under-test',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=collector-secret',
  })
  const { res, trace: caller } = await postInTrace(server, '/v1/tasks/text-generation', {
    model: 'gpt-4o-mini',
    prompt: 'hi',
  })
  assert.equal(res.status, 200)
  const spans = await receiver.waitForSpans((s) => s.traceId === caller.traceId, 3)
  const exported = receiver.exports.filter((e) => e.body.length > 0)
  assert.ok(exported.length > 0)
  for (const e of exported) {
    assert.equal(e.contentType, 'application/x-protobuf')
    assert.equal(e.headers['x-collector-token'], 'collector-secret')
  }
  const request = only(spans, isServer, 'SERVER')
  assert.equal(request.parentSpanId, caller.parentId)
  assert.equal(request.resource['service.name'], 'tasks-under-test')
  assert.equal(only(spans, isGenAi, 'GenAI').attributes['gen_ai.usage.output_tokens'] !== undefined, true)
})

test('shutdown exports the spans still buffered', async (t) => {
  const { receiver, server } = await startTracedService(t, { OTEL_BSP_SCHEDULE_DELAY: '600000' })
  const { res, trace: caller } = await postInTrace(server, '/v1/tasks/text-generation', {
    model: 'gpt-4o-mini',
    prompt: 'hi',
  })
  assert.equal(res.status, 200)
  assert.equal(receiver.spans.length, 0, 'nothing exported yet: the batch waits')
  server.child.kill('SIGTERM')
  const [code] = (await once(server.child, 'exit')) as [number | null]
  assert.equal(code, 0)
  assert.equal(receiver.spans.filter((s) => s.traceId === caller.traceId).length, 3, 'exported before exiting')
})

test('OTEL_TRACES_SAMPLER is honoured: nothing recorded, the trace still passed on to OpenAI', async (t) => {
  const { upstream, receiver, server } = await startTracedService(t, { OTEL_TRACES_SAMPLER: 'always_off' })
  const { res, trace: caller } = await postInTrace(server, '/v1/tasks/text-generation', {
    model: 'gpt-4o-mini',
    prompt: 'hi',
  })
  assert.equal(res.status, 200)
  server.child.kill('SIGTERM')
  await once(server.child, 'exit')
  assert.deepEqual(receiver.spans, [])
  const header = String(upstream.lastRequest()!.headers.traceparent)
  assert.equal(header.split('-')[1], caller.traceId)
  assert.equal(header.split('-')[3], '00', 'not sampled')
})
