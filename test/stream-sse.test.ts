import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import { relaySse, sseEvent, type SseRelay } from '../src/streaming/sse.ts'
import type { AnswerBody, BodySink } from '../src/upstream/upstream-answer.ts'
import { serveWithUpstream } from './support/app.ts'
import { withoutCost } from './support/cost.ts'
import { openAIError } from './support/fake-openai/index.ts'
import { weatherFunction as weather } from './support/fixtures.ts'

/** The parsed JSON body (fetch types it as unknown). */
const jsonOf = (res: Response): Promise<any> => res.json() as Promise<any>

/**
 * Text generation as Server-Sent Events, through a real socket: the app listens on an ephemeral
 * port and is called with fetch, so chunking, flushing and the end of the body are the real ones.
 */

const ROUTE = '/v1/tasks/text-generation'
const SSE = { 'content-type': 'application/json', accept: 'text/event-stream' }
const JSON_ONLY = { 'content-type': 'application/json', accept: 'application/json' }
const SIMPLE = { model: 'gpt-4o-mini', prompt: 'Tell me three things about wombats' }
const NO_RETRIES = { UPSTREAM_MAX_RETRIES: '0' }

interface SseEvent {
  event: string
  data: string
}

const serve = serveWithUpstream

function post(base: string, body: unknown, headers: Record<string, string> = SSE): Promise<Response> {
  return fetch(base + ROUTE, { method: 'POST', headers, body: JSON.stringify(body) })
}

/** A strict little SSE reader: blocks end with a blank line; `:` lines are comments. */
function parseSse(raw: string): { events: SseEvent[]; comments: string[] } {
  assert.ok(raw.endsWith('\n\n'), `the stream ends with a complete event: ${JSON.stringify(raw.slice(-80))}`)
  const events: SseEvent[] = []
  const comments: string[] = []
  for (const block of raw.slice(0, -2).split('\n\n')) {
    let event = 'message'
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim())
      else if (line.startsWith('event: ')) event = line.slice('event: '.length)
      else if (line.startsWith('data: ')) data.push(line.slice('data: '.length))
      else assert.fail(`unexpected SSE line ${JSON.stringify(line)}`)
    }
    if (data.length) events.push({ event, data: data.join('\n') })
    else {
      assert.ok(
        block.split('\n').every((l) => l.startsWith(':')),
        `a block without data is a comment: ${block}`,
      )
    }
  }
  return { events, comments }
}

async function readSse(res: Response): Promise<{ raw: string; events: SseEvent[]; comments: string[] }> {
  assert.equal(res.status, 200)
  assert.match(String(res.headers.get('content-type')), /^text\/event-stream\b/)
  const raw = await res.text()
  return { raw, ...parseSse(raw) }
}

const names = (events: SseEvent[]): string => events.map((e) => e.event).join(',')
const dataOf = (e: SseEvent): any => JSON.parse(e.data)

/** Concatenated `text` of the delta events, per choice index. */
function textsOf(events: SseEvent[]): string[] {
  const texts: string[] = []
  for (const e of events.filter((x) => x.event === 'delta')) {
    const d = dataOf(e)
    assert.equal(typeof d.index, 'number')
    texts[d.index] ??= ''
    if (d.text !== undefined) texts[d.index] += d.text
  }
  return texts
}

function assertErrorBody(body: any, code: string | RegExp, requestId: string | null): void {
  assert.deepEqual(Object.keys(body), ['error'])
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message', 'request-id'])
  if (typeof code === 'string') assert.equal(body.error.code, code)
  else assert.match(body.error.code, code)
  assert.equal(typeof body.error.message, 'string')
  assert.ok(body.error.message.length > 0)
  assert.ok(Array.isArray(body.error.details))
  assert.ok(requestId, 'the answer has an X-Request-Id')
  assert.equal(body.error['request-id'], requestId)
}

/** The last event is an `error` one and no `output`/`done` came; returns its body. */
function assertEndsInError(events: SseEvent[], code: string | RegExp, requestId: string | null): any {
  assert.ok(events.length > 0)
  assert.equal(events.at(-1)!.event, 'error', names(events))
  assert.equal(events.filter((e) => e.event === 'error').length, 1, names(events))
  assert.ok(!events.some((e) => e.event === 'output' || e.event === 'done'), names(events))
  const body = dataOf(events.at(-1)!)
  assertErrorBody(body, code, requestId)
  return body
}

// Upstream SSE written by hand, for what the stand-in's own answers never do.

const chunk = (delta: object, finish: string | null = null): object => ({
  id: 'chatcmpl-hand',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
})
const usageChunk = {
  id: 'chatcmpl-hand',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [],
  usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
}
const data = (payload: unknown): string =>
  `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  res.flushHeaders()
}

test('deltas, then one output equal to the JSON answer, then done; the upstream is asked to stream', async (t) => {
  const { upstream, base } = await serve(t)
  const input = { ...SIMPLE, 'system-message': 'Be brief.', temperature: 0.5, 'top-p': 0.9, 'max-tokens': 200, n: 1 }

  const jsonRes = await post(base, input, JSON_ONLY)
  assert.equal(jsonRes.status, 200)
  assert.match(String(jsonRes.headers.get('content-type')), /^application\/json/)
  const expected = await jsonOf(jsonRes)

  const res = await post(base, input)
  assert.equal(res.headers.get('cache-control'), 'no-cache')
  const { events } = await readSse(res)

  assert.equal(upstream.requests.length, 2)
  const [plain, streamed] = upstream.requests as [(typeof upstream.requests)[0], (typeof upstream.requests)[0]]
  assert.equal(streamed.path, '/v1/chat/completions')
  assert.equal(streamed.headers.accept, 'text/event-stream')
  const { stream, stream_options: streamOptions, ...mapped } = streamed.json
  assert.equal(stream, true)
  assert.deepEqual(streamOptions, { include_usage: true })
  assert.deepEqual(mapped, plain.json, 'the same mapped fields as the JSON route')
  assert.equal('stream' in plain.json, false)

  assert.match(names(events), /^(delta,){2,}output,done$/)
  const output = dataOf(events.at(-2)!)
  assert.deepEqual(output, expected, 'the output event is the JSON answer')
  assert.ok(output.usage && output.usage['total-tokens'] > 0, 'usage comes from the include_usage chunk')
  assert.deepEqual(textsOf(events), output.texts, 'the deltas add up to the final texts')
  assert.equal(output.texts[0], 'echo: Tell me three things about wombats')
  assert.deepEqual(dataOf(events.at(-1)!), {})
  for (const e of events.slice(0, -2)) assert.deepEqual(Object.keys(dataOf(e)).sort(), ['index', 'text'])
})

test('n = 2: deltas of both choices, each adding up to its text', async (t) => {
  const { base } = await serve(t)
  const input = { ...SIMPLE, n: 2 }
  const expected = await jsonOf(await post(base, input, JSON_ONLY))
  const { events } = await readSse(await post(base, input))

  assert.match(names(events), /^(delta,)+output,done$/)
  const indexes = new Set(events.filter((e) => e.event === 'delta').map((e) => dataOf(e).index))
  assert.deepEqual([...indexes].sort(), [0, 1])
  const output = dataOf(events.at(-2)!)
  assert.deepEqual(output, expected)
  assert.equal(output.texts.length, 2)
  assert.notEqual(output.texts[0], output.texts[1])
  assert.deepEqual(textsOf(events), output.texts)
})

test("forced tool calls arrive as tool-calls fragments; the output has the JSON route's tool-calls", async (t) => {
  const { upstream, base } = await serve(t)
  const input = { ...SIMPLE, prompt: 'Weather in Paris?', tools: [{ function: weather }], 'tool-choice': 'required' }
  const expected = await jsonOf(await post(base, input, JSON_ONLY))
  assert.equal(expected['tool-calls']?.length, 1, JSON.stringify(expected))

  const { events } = await readSse(await post(base, input))
  assert.equal(upstream.requests[1]!.json.tool_choice, 'required')
  assert.match(names(events), /^(delta,)+output,done$/)
  const fragments = events
    .filter((e) => e.event === 'delta')
    .flatMap((e) => {
      const d = dataOf(e)
      assert.equal(d.index, 0)
      assert.equal(d.text, undefined, 'no text for a tool-call choice')
      assert.ok(Array.isArray(d['tool-calls']), e.data)
      return d['tool-calls']
    })
  assert.ok(fragments.length >= 2, 'the arguments come in pieces')
  assert.equal(fragments[0].function.name, 'get_weather')
  assert.equal(fragments[0].type, 'function')
  const [streamedCall] = JSON.parse(
    upstream.requests[1]!.responseBody!.toString().split('\n\n')[0]!.slice('data: '.length),
  ).choices[0].delta.tool_calls
  assert.match(streamedCall.id, /^call_/)
  assert.equal(fragments[0].id, streamedCall.id, 'the call id comes with the first fragment')
  assert.ok(
    fragments.slice(1).every((f: any) => f.id === undefined),
    'and only once',
  )
  const args = fragments.map((f: any) => f.function?.arguments ?? '').join('')

  const output = dataOf(events.at(-2)!)
  const { id: jsonCallId, ...jsonCall } = expected['tool-calls'][0]
  assert.match(jsonCallId, /^call_/, 'the JSON route has its own call id')
  assert.deepEqual(
    { ...output, 'tool-calls': output['tool-calls'].map(({ id: _id, ...call }: any) => call) },
    {
      ...expected,
      'tool-calls': [jsonCall],
    },
  )
  assert.deepEqual(output['tool-calls'], [
    { id: streamedCall.id, type: 'function', function: { name: 'get_weather', arguments: args } },
  ])
  assert.deepEqual(JSON.parse(args), { city: 'example' })
})

test('an Accept preferring JSON gets JSON, one naming SSE with a higher q gets SSE', async (t) => {
  const { upstream, base } = await serve(t)
  const json = await post(base, SIMPLE, {
    'content-type': 'application/json',
    accept: 'text/event-stream;q=0.5, application/json',
  })
  assert.match(String(json.headers.get('content-type')), /^application\/json/)
  assert.deepEqual(Object.keys(await jsonOf(json)).sort(), ['texts', 'usage'])
  assert.equal(upstream.requests[0]!.json.stream, undefined)

  const sse = await post(base, SIMPLE, {
    'content-type': 'application/json',
    accept: 'application/json;q=0.2, text/event-stream',
  })
  const { events } = await readSse(sse)
  assert.equal(events.at(-1)!.event, 'done')
  assert.equal(upstream.requests[1]!.json.stream, true)
})

test('an upstream 429 before the stream is an ordinary JSON 429 with Retry-After', async (t) => {
  const { upstream, base } = await serve(t, NO_RETRIES)
  upstream.enqueue({ status: 429, headers: { 'retry-after': '7' }, body: openAIError(429, 'Rate limit reached') })
  const res = await post(base, SIMPLE)
  assert.equal(res.status, 429)
  assert.match(String(res.headers.get('content-type')), /^application\/json/)
  assert.equal(res.headers.get('retry-after'), '7')
  const body = await jsonOf(res)
  assertErrorBody(body, 'ERR_UPSTREAM_RATE_LIMITED', res.headers.get('x-request-id'))
  assert.equal(body.error.details[0]['upstream-status'], 429)
  assert.equal(upstream.requests.length, 1)
  assert.equal(upstream.requests[0]!.json.stream, true)
})

test('an upstream 500 before the stream is an ordinary JSON 502', async (t) => {
  const { upstream, base } = await serve(t, NO_RETRIES)
  upstream.enqueue({ status: 500 })
  const res = await post(base, SIMPLE)
  assert.equal(res.status, 502)
  assert.match(String(res.headers.get('content-type')), /^application\/json/)
  const body = await jsonOf(res)
  assertErrorBody(body, 'ERR_UPSTREAM_SERVER_ERROR', res.headers.get('x-request-id'))
  assert.equal(body.error.details[0]['upstream-status'], 500)
  assert.equal(upstream.requests.length, 1)
})

for (const afterChunks of [1, 3]) {
  test(`an upstream stream cut after ${afterChunks} chunk(s) ends in an error event, never a clean end`, async (t) => {
    const { upstream, base } = await serve(t)
    upstream.enqueue({ kind: 'truncated-stream', path: '/v1/chat/completions', afterChunks })
    const res = await post(base, SIMPLE)
    const { events } = await readSse(res)

    const sent = upstream.requests[0]!
    assert.equal(sent.behaviour?.kind, 'truncated-stream')
    assert.ok(!sent.responseBody!.toString().includes('[DONE]'), 'the stand-in really cut the stream')
    assertEndsInError(events, /^ERR_UPSTREAM_/, res.headers.get('x-request-id'))
    const deltas = events.slice(0, -1)
    assert.ok(
      deltas.every((e) => e.event === 'delta'),
      names(events),
    )
    // The deltas sent before the cut are the start of the full text, nothing invented.
    assert.ok('echo: Tell me three things about wombats'.startsWith(textsOf(events)[0] ?? ''))
  })
}

test('an upstream stream that ends without [DONE] is an error event ERR_UPSTREAM_BAD_RESPONSE', async (t) => {
  const { upstream, base } = await serve(t)
  upstream.enqueue({
    kind: 'custom',
    path: '/chat/completions',
    handler(_req, res) {
      sseHead(res)
      res.write(data(chunk({ role: 'assistant', content: '' })))
      res.write(data(chunk({ content: 'Hello' })))
      res.end()
    },
  })
  const res = await post(base, SIMPLE)
  const { events } = await readSse(res)
  assert.equal(names(events), 'delta,error')
  assert.deepEqual(dataOf(events[0]!), { index: 0, text: 'Hello' })
  assertEndsInError(events, 'ERR_UPSTREAM_BAD_RESPONSE', res.headers.get('x-request-id'))
})

test('an upstream {"error":...} event mid-stream becomes an error event ERR_UPSTREAM_STREAM_ERROR', async (t) => {
  const { upstream, base } = await serve(t)
  upstream.enqueue({
    kind: 'custom',
    path: '/chat/completions',
    handler(_req, res) {
      sseHead(res)
      res.write(data(chunk({ role: 'assistant', content: '' })))
      res.write(data(chunk({ content: 'Hel' })))
      res.write(
        data({
          error: {
            message: 'The server had an error while processing your request.',
            type: 'server_error',
            param: null,
            code: 'internal_error',
          },
        }),
      )
      res.write(data(chunk({ content: 'lo' })))
      res.end(data('[DONE]'))
    },
  })
  const res = await post(base, SIMPLE)
  const { events } = await readSse(res)
  assert.equal(names(events), 'delta,error', 'nothing after the upstream error is relayed')
  assert.deepEqual(dataOf(events[0]!), { index: 0, text: 'Hel' })
  const body = assertEndsInError(events, 'ERR_UPSTREAM_STREAM_ERROR', res.headers.get('x-request-id'))
  assert.match(body.error.message, /The server had an error while processing your request\./)
  assert.equal(body.error.details[0]['upstream-code'], 'internal_error')
  assert.equal(body.error.details[0].type, 'server_error')
})

test('malformed JSON in an upstream event becomes an error event ERR_UPSTREAM_BAD_RESPONSE', async (t) => {
  const { upstream, base } = await serve(t)
  upstream.enqueue({
    kind: 'custom',
    path: '/chat/completions',
    handler(_req, res) {
      sseHead(res)
      res.write(data(chunk({ content: 'Hi' })))
      res.write(data('{"id":"chatcmpl-hand","choices":[{"index":0,"delta":{"content":" there"}'))
      res.end(data('[DONE]'))
    },
  })
  const res = await post(base, SIMPLE)
  const { events } = await readSse(res)
  assert.equal(names(events), 'delta,error')
  const body = assertEndsInError(events, 'ERR_UPSTREAM_BAD_RESPONSE', res.headers.get('x-request-id'))
  assert.match(body.error.message, /unreadable stream event/)
})

/** An upstream that sends its headers at once, then says nothing for `silenceMs`, then answers. */
function slowFirstChunk(silenceMs: number) {
  return async (_req: unknown, res: ServerResponse): Promise<void> => {
    sseHead(res)
    await sleep(silenceMs)
    if (res.destroyed) return
    res.write(data(chunk({ role: 'assistant', content: '' })))
    res.write(data(chunk({ content: 'Late ' })))
    res.write(data(chunk({ content: 'answer' })))
    res.write(data(chunk({}, 'stop')))
    res.write(data(usageChunk))
    res.end(data('[DONE]'))
  }
}

test('keep-alive comments fill the silence before the first delta', async (t) => {
  const { upstream, base } = await serve(t, { SSE_HEARTBEAT_MS: '50' })
  upstream.enqueue({ kind: 'custom', path: '/chat/completions', handler: slowFirstChunk(250) })
  const { raw, events, comments } = await readSse(await post(base, SIMPLE))

  const firstKeepAlive = raw.indexOf(': keep-alive\n\n')
  const firstDelta = raw.indexOf('event: delta')
  assert.ok(firstKeepAlive >= 0, `a keep-alive comment: ${JSON.stringify(raw.slice(0, 200))}`)
  assert.ok(firstDelta > firstKeepAlive, 'the keep-alive comes before the first delta')
  assert.ok(comments.length >= 1 && comments.every((c) => c === 'keep-alive'), String(comments))
  t.diagnostic(`${comments.length} keep-alive comment(s) in 250 ms of silence at SSE_HEARTBEAT_MS=50`)
  assert.equal(names(events), 'delta,delta,output,done', 'the heartbeats lose or reorder nothing')
  const output = dataOf(events[2]!)
  assert.deepEqual(
    { ...output, usage: withoutCost(output.usage) },
    { texts: ['Late answer'], usage: { 'total-tokens': 12, 'prompt-tokens': 9, 'completion-tokens': 3 } },
  )
})

test('no keep-alive comment when the upstream is quicker than the heartbeat', async (t) => {
  const { upstream, base } = await serve(t, { SSE_HEARTBEAT_MS: '5000' })
  upstream.enqueue({ kind: 'custom', path: '/chat/completions', handler: slowFirstChunk(100) })
  const { raw, events } = await readSse(await post(base, SIMPLE))
  assert.ok(!raw.includes('keep-alive'), raw.slice(0, 200))
  assert.equal(names(events), 'delta,delta,output,done')
})

/** An answer body fed by hand, as undici's handler feeds it: held while the relay has it paused. */
function handFedBody() {
  let sink: BodySink | undefined
  const held: Array<Buffer | null> = []
  const state = { paused: false }
  const give = (): void => {
    // The sink may pause the body while it takes a chunk.
    while (!state.paused && held.length) {
      const chunk = held.shift()!
      if (chunk) sink!.data(chunk)
      else sink!.end()
    }
  }
  const body: AnswerBody & { push(text: string | null): boolean; readonly paused: boolean } = {
    consume(s) {
      sink = s
      give()
    },
    pause() {
      state.paused = true
    },
    resume() {
      state.paused = false
      give()
    },
    destroy: () => assert.fail('the relay destroys a body it is still reading'),
    onSettled: () => undefined,
    push(text) {
      held.push(text === null ? null : Buffer.from(text))
      if (sink) give()
      return !state.paused
    },
    get paused() {
      return state.paused
    },
  }
  return body
}

test('the relay pauses the upstream body while the client reads nothing, and loses none after', async (t) => {
  const body = handFedBody()
  const relay: SseRelay = {
    data: (data) => sseEvent('delta', { text: data }),
    end: () => sseEvent('done', {}),
    fail: (err) => assert.fail(`no failure expected: ${err}`),
  }
  // The relay writes into a real response, on a real socket, to a client that stops reading.
  const server = createServer((_req, res) =>
    relaySse(body, relay, { heartbeatMs: 60_000, maxBytes: 2 ** 30 }).into(res),
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => server.close())
  const { port } = server.address() as AddressInfo
  const line = `data: ${'x'.repeat(1000)}\n\n`
  const answer = fetch(`http://127.0.0.1:${port}/`)
  body.push(line)
  const res = await answer
  // Nothing reads the answer: once the sockets' buffers are full the response stops draining,
  // and the relay pauses the body.
  let sent = 1
  for (let accepted = true; accepted && sent < 100_000; sent++) {
    accepted = body.push(line)
    await nextTurn()
  }
  assert.ok(sent < 100_000, 'the relay paused the body')
  assert.equal(body.paused, true)
  body.push(null)
  const { events } = parseSse(await res.text())
  assert.equal(events.length, sent + 1)
  assert.ok(events.slice(0, -1).every((e) => e.event === 'delta' && dataOf(e).text === 'x'.repeat(1000)))
  assert.equal(events.at(-1)!.event, 'done')
})
