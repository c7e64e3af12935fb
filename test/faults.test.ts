/**
 * Fault suite through a real socket: the app listens on 127.0.0.1 and is called with undici, so
 * keep-alive connections, chunked bodies cut short and slow clients behave as in production
 * (Fastify's inject would hide all three). Each fault ends with the service still answering
 * /healthz and its upstream pool back to idle. A soak then sends 1,000 faulty requests and checks
 * the heap comes back to where it started.
 */
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import net from 'node:net'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import { serveWithUpstream, capturedLogLines } from './support/app.ts'
import { openAIError, type CustomHandler, type FakeOpenAI } from './support/fake-openai/index.ts'
import { findGc, settledHeap } from './support/heap.ts'

const WAV = 'data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='

/** One valid input per task, and the OpenAI path it is sent to. */
const TASKS = {
  'text-generation': { path: '/v1/chat/completions', payload: { model: 'gpt-4o-mini', prompt: 'Say hi' } },
  'text-embeddings': {
    path: '/v1/embeddings',
    payload: { model: 'text-embedding-3-small', text: 'The quick brown fox' },
  },
  'speech-recognition': {
    path: '/v1/audio/transcriptions',
    payload: { model: 'whisper-1', audio: WAV, language: 'en' },
  },
  'text-to-speech': { path: '/v1/audio/speech', payload: { model: 'tts-1', text: 'Hello there', voice: 'alloy' } },
  'text-to-image': {
    path: '/v1/images/generations',
    payload: { model: 'dall-e-2', prompt: 'A wombat', size: '256x256' },
  },
} as const
type TaskName = keyof typeof TASKS
const TASK_NAMES = Object.keys(TASKS) as TaskName[]

/**
 * Tests that cut SSE streams keep the heartbeat short: each cut stream currently leaves its
 * heartbeat timer pending (see 'a cut SSE stream leaves no heartbeat timer behind'), which at
 * the default 15 s would hold this file's process open 15 s after the last test.
 */
const SHORT_HEARTBEAT = { SSE_HEARTBEAT_MS: '1000' }

interface Service {
  app: FastifyInstance
  upstream: FakeOpenAI
  origin: string
  port: number
  agent: Agent
}

/** The app and its stand-in OpenAI, the app listening on an ephemeral loopback port. */
async function startService(t: TestContext, env: Record<string, string> = {}): Promise<Service> {
  const { app, upstream, base, port } = await serveWithUpstream(t, env)
  const agent = new Agent({ keepAliveTimeout: 1000, connections: 16 })
  t.after(() => agent.close())
  return { app, upstream, origin: base, port, agent }
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  text: string
}

async function post(
  svc: Service,
  task: TaskName,
  headers: Record<string, string> = {},
  payload: object = TASKS[task].payload,
): Promise<Answer> {
  const res = await request(`${svc.origin}/v1/tasks/${task}`, {
    method: 'POST',
    dispatcher: svc.agent,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(payload),
  })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

/** Polls `condition` every 10 ms until it holds; fails with `what` after `timeoutMs`. */
async function waitUntil(condition: () => boolean, what: () => string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`not reached within ${timeoutMs} ms: ${what()}`)
    await sleep(10)
  }
}

/** The upstream pool has nothing running or queued, and no OpenAI call is counted in flight. */
async function waitForIdlePool(app: FastifyInstance): Promise<void> {
  const { upstream } = app
  await waitUntil(
    () => upstream.stats.running === 0 && upstream.stats.pending === 0 && upstream.inFlight === 0,
    () => `pool running=${upstream.stats.running} pending=${upstream.stats.pending}, inFlight=${upstream.inFlight}`,
  )
}

async function assertHealthy(svc: Service): Promise<void> {
  const res = await request(`${svc.origin}/healthz`, { dispatcher: svc.agent })
  assert.equal(res.statusCode, 200, 'the service still answers /healthz')
  assert.deepEqual(await res.body.json(), { status: 'ok' })
}

/** A non-2xx answer in the service's one error shape, with this status and code. */
function assertError(answer: Answer, status: number, code: string): Record<string, unknown> {
  assert.equal(answer.status, status, answer.text)
  const { error } = JSON.parse(answer.text) as { error: Record<string, unknown> }
  assert.equal(error.code, code)
  assert.equal(typeof error.message, 'string')
  assert.ok(Array.isArray(error.details))
  assert.equal(error['request-id'], answer.headers['x-request-id'])
  return error
}

interface SseEvent {
  event: string
  data: string
}

function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = []
  for (const block of text.split('\n\n')) {
    let event = 'message'
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim()
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
    }
    if (data.length) events.push({ event, data: data.join('\n') })
  }
  return events
}

// -------------------------------------------------------------------------------------------------
// One fault at a time
// -------------------------------------------------------------------------------------------------

interface StatusFault {
  upstream: number
  task: TaskName
  status: number
  code: string
  /** OpenAI calls made: the first try and UPSTREAM_MAX_RETRIES (2) retries when retryable. */
  calls: number
}

const STATUS_FAULTS: StatusFault[] = [
  { upstream: 429, task: 'text-embeddings', status: 429, code: 'ERR_UPSTREAM_RATE_LIMITED', calls: 3 },
  { upstream: 500, task: 'text-generation', status: 502, code: 'ERR_UPSTREAM_SERVER_ERROR', calls: 3 },
  { upstream: 503, task: 'text-to-image', status: 502, code: 'ERR_UPSTREAM_SERVER_ERROR', calls: 3 },
  { upstream: 401, task: 'text-to-speech', status: 401, code: 'ERR_UPSTREAM_UNAUTHORIZED', calls: 1 },
  { upstream: 400, task: 'speech-recognition', status: 400, code: 'ERR_UPSTREAM_BAD_REQUEST', calls: 1 },
]

describe('faults through a real socket', () => {
  for (const fault of STATUS_FAULTS) {
    test(`a persistent upstream ${fault.upstream} on ${fault.task} gives ${fault.status} ${fault.code}`, async (t) => {
      const svc = await startService(t)
      const message = `persistent ${fault.upstream}`
      svc.upstream.enqueue({ status: fault.upstream, body: openAIError(fault.upstream, message), times: 3 })
      const answer = await post(svc, fault.task)
      const error = assertError(answer, fault.status, fault.code)
      assert.match(String(error.message), new RegExp(message))
      assert.equal(svc.upstream.requests.length, fault.calls, 'retried only when retryable, within the policy')
      assert.ok(svc.upstream.requests.every((r) => r.path === TASKS[fault.task].path))
      await waitForIdlePool(svc.app)
      await assertHealthy(svc)
    })
  }

  test('a hung upstream gives 504 ERR_UPSTREAM_TIMEOUT after UPSTREAM_HEADERS_TIMEOUT_MS', async (t) => {
    const svc = await startService(t, { UPSTREAM_HEADERS_TIMEOUT_MS: '300' })
    svc.upstream.enqueue({ kind: 'hang', times: 3 })
    const started = Date.now()
    const answer = await post(svc, 'text-generation')
    const elapsed = Date.now() - started
    const error = assertError(answer, 504, 'ERR_UPSTREAM_TIMEOUT')
    assert.equal((error.details as Array<Record<string, unknown>>)[0]!['transport-code'], 'UND_ERR_HEADERS_TIMEOUT')
    assert.ok(elapsed >= 250 && elapsed < 3000, `answered after ${elapsed} ms`)
    assert.equal(svc.upstream.requests.length, 1, 'a timeout is not retried')
    await waitForIdlePool(svc.app)
    await assertHealthy(svc)
  })

  test('a connection reset on every try gives 502 ERR_UPSTREAM_UNREACHABLE', async (t) => {
    const svc = await startService(t)
    svc.upstream.enqueue({ kind: 'reset', times: 3 })
    const answer = await post(svc, 'text-embeddings')
    const error = assertError(answer, 502, 'ERR_UPSTREAM_UNREACHABLE')
    assert.ok((error.details as Array<Record<string, unknown>>)[0]!['transport-code'])
    assert.equal(svc.upstream.requests.length, 3, 'a reset is retried twice')
    await waitForIdlePool(svc.app)
    await assertHealthy(svc)
  })

  test('malformed JSON from the upstream gives 502 ERR_UPSTREAM_BAD_RESPONSE', async (t) => {
    const svc = await startService(t)
    svc.upstream.enqueue({ kind: 'malformed-json' })
    assertError(await post(svc, 'text-generation'), 502, 'ERR_UPSTREAM_BAD_RESPONSE')
    assert.equal(svc.upstream.requests.length, 1)
    await waitForIdlePool(svc.app)
    await assertHealthy(svc)
  })

  test('a chat completion of an unexpected shape gives 502 ERR_UPSTREAM_BAD_RESPONSE, not a crash', async (t) => {
    const svc = await startService(t)
    const shapes = [
      { choices: [null] },
      { choices: ['text'] },
      { choices: [{ index: 0, message: 'hi' }] },
      { choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [null] } }] },
      { choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: 'get_weather' } }] },
    ]
    for (const body of shapes) {
      svc.upstream.enqueue({ status: 200, body })
      assertError(await post(svc, 'text-generation'), 502, 'ERR_UPSTREAM_BAD_RESPONSE')
    }
    await assertHealthy(svc)
  })

  test('a stream chunk whose choices are not objects ends the stream with ERR_UPSTREAM_BAD_RESPONSE', async (t) => {
    const svc = await startService(t, SHORT_HEARTBEAT)
    svc.upstream.enqueue({
      kind: 'custom',
      path: '/v1/chat/completions',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.end(`data: ${SSE_CHUNK}\n\ndata: {"choices":[null]}\n\ndata: [DONE]\n\n`)
      },
    })
    const answer = await post(svc, 'text-generation', { accept: 'text/event-stream' })
    const events = parseSse(answer.text)
    assert.equal(events[0]?.event, 'delta', 'the first chunk was relayed')
    const last = events.at(-1)!
    assert.equal(last.event, 'error', `last event: ${JSON.stringify(last)}`)
    assert.equal(JSON.parse(last.data).error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
    await waitForIdlePool(svc.app)
    await assertHealthy(svc)
  })

  test('a truncated SSE stream ends with an error event, never silently', async (t) => {
    const svc = await startService(t, SHORT_HEARTBEAT)
    svc.upstream.enqueue({ kind: 'truncated-stream', path: '/v1/chat/completions', afterChunks: 2 })
    const answer = await post(svc, 'text-generation', { accept: 'text/event-stream' })
    assert.equal(answer.status, 200)
    assert.match(String(answer.headers['content-type']), /^text\/event-stream/)
    const events = parseSse(answer.text)
    const last = events.at(-1)
    assert.ok(last, 'the stream has events')
    assert.equal(last.event, 'error', `last event: ${JSON.stringify(last)}`)
    assert.ok(!events.some((e) => e.event === 'done' || e.event === 'output'), 'no output or done after a cut')
    const { error } = JSON.parse(last.data) as { error: Record<string, unknown> }
    assert.ok(
      ['ERR_UPSTREAM_UNREACHABLE', 'ERR_UPSTREAM_BAD_RESPONSE'].includes(String(error.code)),
      String(error.code),
    )
    assert.equal(typeof error.message, 'string')
    assert.ok(Array.isArray(error.details))
    assert.equal(error['request-id'], answer.headers['x-request-id'])
    await waitForIdlePool(svc.app)
    await assertHealthy(svc)
  })

  test('a cut SSE stream leaves no heartbeat timer behind', async (t) => {
    const svc = await startService(t, { SSE_HEARTBEAT_MS: '1500' })
    const pendingTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const whole = await post(svc, 'text-generation', { accept: 'text/event-stream' })
    assert.equal(parseSse(whole.text).at(-1)?.event, 'done')
    await waitForIdlePool(svc.app)
    const before = pendingTimers()
    svc.upstream.enqueue({ kind: 'truncated-stream', path: '/v1/chat/completions', afterChunks: 2, times: 20 })
    for (let i = 0; i < 20; i++) {
      const answer = await post(svc, 'text-generation', { accept: 'text/event-stream' })
      assert.equal(parseSse(answer.text).at(-1)?.event, 'error')
    }
    await waitForIdlePool(svc.app)
    const leaked = pendingTimers() - before
    t.diagnostic(`${leaked} more timers pending after 20 cut streams`)
    assert.ok(leaked < 5, `${leaked} more timers pending after 20 cut streams`)
  })

  test('a truncated audio stream makes the client read fail rather than end cleanly', async (t) => {
    const svc = await startService(t)
    svc.upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/speech', afterChunks: 1 })
    const payload = {
      model: 'tts-1',
      text: 'A sentence long enough for several chunks of audio. '.repeat(4),
      voice: 'alloy',
    }
    const res = await request(`${svc.origin}/v1/tasks/text-to-speech`, {
      method: 'POST',
      dispatcher: svc.agent,
      headers: { 'content-type': 'application/json', accept: 'audio/*' },
      body: JSON.stringify(payload),
    })
    assert.equal(res.statusCode, 200, 'the audio had started')
    assert.equal(res.headers['content-type'], 'audio/mpeg')
    await assert.rejects(res.body.arrayBuffer(), 'the body read fails: a cut file is not passed off as a whole one')
    await waitForIdlePool(svc.app)
    await assertHealthy(svc)
    const next = await post(svc, 'text-to-speech', { accept: 'audio/*' })
    assert.equal(next.status, 200, 'the next speech request is served')
  })
})

// -------------------------------------------------------------------------------------------------
// Slow clients
// -------------------------------------------------------------------------------------------------

const CLIENT_TIMEOUTS = { REQUEST_TIMEOUT_MS: '500', HEADERS_TIMEOUT_MS: '300' }

interface LorisResult {
  /** ms from connect to the server closing the socket, or undefined if it was still open at the end. */
  closedAfterMs: number | undefined
  /** What the server wrote back (a 408, or nothing). */
  received: string
  bytesSent: number
}

/**
 * A slow-loris client: the request's headers dribbled a byte every 50 ms ('headers'), or the
 * headers sent whole with a content-length and the body dribbled ('body'). Gives up (destroys
 * its socket) after `maxMs`; `whileOpen` runs while the dribble goes on.
 */
async function slowLoris(
  port: number,
  mode: 'headers' | 'body',
  maxMs: number,
  whileOpen: () => Promise<void> = async () => {},
): Promise<LorisResult> {
  const started = Date.now()
  const socket = net.connect(port, '127.0.0.1')
  let received = ''
  let closedAfterMs: number | undefined
  let givenUp = false
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
  socket.on('error', () => undefined)
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      if (!givenUp) closedAfterMs = Date.now() - started
      resolve()
    }),
  )
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))

  const body = JSON.stringify(TASKS['text-embeddings'].payload)
  const head = 'POST /v1/tasks/text-embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
  let dribble: string
  if (mode === 'headers') {
    socket.write(head)
    dribble = `X-Slow: ${'z'.repeat(4096)}`
  } else {
    socket.write(`${head}Content-Length: ${body.length}\r\n\r\n`)
    dribble = body
  }
  let bytesSent = 0
  const dribbling = (async () => {
    const everyMs = 50
    for (let i = 0; i < Math.min(dribble.length, Math.ceil(maxMs / everyMs)); i++) {
      if (socket.destroyed || closedAfterMs !== undefined) return
      socket.write(dribble[i]!)
      bytesSent++
      await Promise.race([sleep(everyMs, undefined, { ref: false }), closed])
    }
  })()
  await whileOpen()
  await Promise.race([
    dribbling.then(() =>
      Promise.race([closed, sleep(Math.max(0, maxMs - (Date.now() - started)), undefined, { ref: false })]),
    ),
    closed,
  ])
  givenUp = closedAfterMs === undefined
  socket.destroy()
  await closed
  return { closedAfterMs, received, bytesSent }
}

describe('slow clients', () => {
  for (const mode of ['headers', 'body'] as const) {
    test(`a slow-loris client (${mode} dribbled) does not keep others from being served`, async (t) => {
      const svc = await startService(t, CLIENT_TIMEOUTS)
      const served: number[] = []
      await slowLoris(svc.port, mode, 1200, async () => {
        await sleep(100)
        for (let i = 0; i < 3; i++) {
          const health = await request(`${svc.origin}/healthz`, { dispatcher: svc.agent })
          await health.body.dump()
          served.push(health.statusCode)
          served.push((await post(svc, 'text-generation')).status)
        }
      })
      assert.deepEqual(served, [200, 200, 200, 200, 200, 200])
      await waitForIdlePool(svc.app)
      await assertHealthy(svc)
    })

    test(`a slow-loris client (${mode} dribbled) is cut off soon after REQUEST_TIMEOUT_MS / HEADERS_TIMEOUT_MS`, async (t) => {
      const svc = await startService(t, CLIENT_TIMEOUTS)
      const deadline = 2000
      const result = await slowLoris(svc.port, mode, deadline)
      t.diagnostic(
        `closed after ${result.closedAfterMs ?? `> ${deadline}`} ms, ${result.bytesSent} bytes dribbled, got ${JSON.stringify(result.received.split('\r\n')[0])}`,
      )
      assert.ok(result.closedAfterMs !== undefined, `the server still held the slow socket after ${deadline} ms`)
      if (result.received) assert.match(result.received, /^HTTP\/1\.1 408 /)
      await waitForIdlePool(svc.app)
      await assertHealthy(svc)
    })
  }
})

// -------------------------------------------------------------------------------------------------
// Soak
// -------------------------------------------------------------------------------------------------

type SoakKind =
  | 'status-429'
  | 'status-500'
  | 'status-503'
  | 'status-401'
  | 'status-400'
  | 'reset'
  | 'malformed'
  | 'hang'
  | 'sse-cut'
  | 'audio-cut'

interface SoakCase {
  kind: SoakKind
  task: TaskName
  accept?: string
  /** Checks the answer; returns a description of what was wrong, or undefined. */
  check: (status: number, headers: IncomingHttpHeaders, read: () => Promise<string>) => Promise<string | undefined>
}

function expectError(status: number, code: string): SoakCase['check'] {
  return async (got, _headers, read) => {
    const text = await read()
    if (got !== status) return `status ${got}, wanted ${status}: ${text.slice(0, 200)}`
    const body = JSON.parse(text) as {
      error?: { code?: unknown; message?: unknown; details?: unknown; 'request-id'?: unknown }
    }
    const e = body.error
    if (
      e?.code !== code ||
      typeof e.message !== 'string' ||
      !Array.isArray(e.details) ||
      typeof e['request-id'] !== 'string'
    ) {
      return `wanted ${code} in the error shape, got ${text.slice(0, 200)}`
    }
    return undefined
  }
}

const SOAK_STATUS = {
  'status-429': 429,
  'status-500': 500,
  'status-503': 503,
  'status-401': 401,
  'status-400': 400,
} as const
const SOAK_CODES: Record<keyof typeof SOAK_STATUS, [number, string]> = {
  'status-429': [429, 'ERR_UPSTREAM_RATE_LIMITED'],
  'status-500': [502, 'ERR_UPSTREAM_SERVER_ERROR'],
  'status-503': [502, 'ERR_UPSTREAM_SERVER_ERROR'],
  'status-401': [401, 'ERR_UPSTREAM_UNAUTHORIZED'],
  'status-400': [400, 'ERR_UPSTREAM_BAD_REQUEST'],
}

/**
 * The i-th request of the soak: the fault kinds in turn, each over the tasks it applies to. A hang
 * costs about a second whatever UPSTREAM_HEADERS_TIMEOUT_MS says (undici's headers timer ticks
 * every ~0.5 s), so only one request in 50 hangs; its other turns are resets.
 */
function soakCase(i: number): SoakCase {
  const kinds: SoakKind[] = [
    'status-429',
    'status-500',
    'sse-cut',
    'status-503',
    'reset',
    'status-401',
    'audio-cut',
    'malformed',
    'status-400',
    'hang',
  ]
  const round = Math.floor(i / kinds.length)
  let kind = kinds[i % kinds.length]!
  if (kind === 'hang' && round % 5 !== 0) kind = 'reset'
  const anyTask = TASK_NAMES[round % TASK_NAMES.length]!
  switch (kind) {
    case 'reset':
      return { kind, task: anyTask, check: expectError(502, 'ERR_UPSTREAM_UNREACHABLE') }
    case 'malformed':
      return {
        kind,
        task: round % 2 ? 'text-generation' : 'text-embeddings',
        check: expectError(502, 'ERR_UPSTREAM_BAD_RESPONSE'),
      }
    case 'hang':
      return { kind, task: 'text-embeddings', check: expectError(504, 'ERR_UPSTREAM_TIMEOUT') }
    case 'sse-cut':
      return {
        kind,
        task: 'text-generation',
        accept: 'text/event-stream',
        check: async (status, _headers, read) => {
          const text = await read()
          if (status !== 200) return `status ${status}: ${text.slice(0, 200)}`
          const last = parseSse(text).at(-1)
          return last?.event === 'error' ? undefined : `last event ${JSON.stringify(last)}`
        },
      }
    case 'audio-cut':
      return {
        kind,
        task: 'text-to-speech',
        accept: 'audio/mpeg',
        check: async (status, _headers, read) => {
          if (status !== 200) return `status ${status}: ${(await read()).slice(0, 200)}`
          try {
            const text = await read()
            return `the cut audio ended cleanly (${text.length} bytes)`
          } catch {
            return undefined
          }
        },
      }
    default: {
      const [status, code] = SOAK_CODES[kind]
      return { kind, task: anyTask, check: expectError(status, code) }
    }
  }
}

const SSE_CHUNK = JSON.stringify({
  id: 'chatcmpl-soak',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' }, logprobs: null, finish_reason: null }],
})

/**
 * The stand-in's persistent answer during the soak: the fault named by the request id the
 * service forwards as X-Client-Request-Id (`soak-<kind>-<n>`), so kinds can interleave freely.
 */
const faultyUpstream: CustomHandler = (req, res) => {
  const id = String(req.headers['x-client-request-id'] ?? '')
  const kind = /^soak-([a-z]+(?:-\d+|-cut)?)-\d+$/.exec(id)?.[1] as SoakKind | undefined
  const cut = (): void => {
    setTimeout(() => req.socket.destroy(), 5)
  }
  switch (kind) {
    case 'reset':
      req.socket.resetAndDestroy()
      return
    case 'hang':
      return
    case 'malformed':
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"x","object":"chat.completion","choi')
      return
    case 'sse-cut':
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(`data: ${SSE_CHUNK}\n\n`)
      cut()
      return
    case 'audio-cut':
      res.writeHead(200, { 'content-type': 'audio/mpeg' })
      res.write(Buffer.concat([Buffer.from([0x49, 0x44, 0x33, 0x04, 0, 0, 0, 0, 0, 0]), Buffer.alloc(2048, 7)]))
      cut()
      return
    default: {
      const status = kind && kind in SOAK_STATUS ? SOAK_STATUS[kind as keyof typeof SOAK_STATUS] : 418
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(JSON.stringify(openAIError(status, `soak ${kind}`)))
    }
  }
}

describe('soak', () => {
  test('1,000 faulty requests leave the pool idle, the service healthy and the heap where it was', async (t) => {
    const svc = await startService(t, {
      ...SHORT_HEARTBEAT,
      UPSTREAM_MAX_RETRIES: '0',
      UPSTREAM_HEADERS_TIMEOUT_MS: '200',
      LOG_LEVEL: 'warn',
    })
    for (const name of TASK_NAMES) svc.upstream.setHandler(TASKS[name].path, faultyUpstream)
    const gc = findGc()
    t.diagnostic(
      `gc: ${(globalThis as { gc?: unknown }).gc ? 'global.gc (--expose-gc)' : gc ? 'v8.setFlagsFromString + vm' : 'unavailable, min of samples'}`,
    )

    const failures: string[] = []
    let sent = 0
    /** `count` requests, `concurrency` at a time; ids continue from the previous run. */
    const run = async (count: number, concurrency: number): Promise<void> => {
      const end = sent + count
      const worker = async (): Promise<void> => {
        while (sent < end) {
          const i = sent++
          const c = soakCase(i)
          const res = await request(`${svc.origin}/v1/tasks/${c.task}`, {
            method: 'POST',
            dispatcher: svc.agent,
            headers: {
              'content-type': 'application/json',
              'x-request-id': `soak-${c.kind}-${i}`,
              ...(c.accept && { accept: c.accept }),
            },
            body: JSON.stringify(TASKS[c.task].payload),
          })
          const problem = await c
            .check(res.statusCode, res.headers, () => res.body.text())
            .catch((err: Error) => `check threw ${err.message}`)
          await res.body.dump().catch(() => undefined)
          if (problem && failures.length < 20) failures.push(`#${i} ${c.kind} on ${c.task}: ${problem}`)
        }
      }
      await Promise.all(Array.from({ length: concurrency }, worker))
    }

    // Warm-up: lazy modules, JIT, pools and caches reach their working size before the baseline.
    await run(500, 10)
    await waitForIdlePool(svc.app)
    assert.deepEqual(svc.upstream.violations, [])
    svc.upstream.reset()
    const logCharsBefore = capturedLogLines.reduce((n, line) => n + line.length, 0)
    const before = await settledHeap(gc)

    const started = Date.now()
    await run(1000, 10)
    const elapsed = Date.now() - started
    assert.deepEqual(failures, [], 'every faulty request got its documented answer')
    await waitForIdlePool(svc.app)
    await assertHealthy(svc)
    assert.equal(svc.upstream.requests.length, 1000, 'each request reached the stand-in once (no retries)')
    assert.deepEqual(svc.upstream.violations, [])
    svc.upstream.reset() // the stand-in records every request; that is the test's memory, not the service's

    const after = await settledHeap(gc)
    // The test harness keeps every log line the app writes (capturedLogLines, for the secrets
    // check); that is retained on purpose, so it is allowed on top of the 10 %.
    const logGrowth = capturedLogLines.reduce((n, line) => n + line.length, 0) - logCharsBefore
    const limit = before * 1.1 + logGrowth * 2
    const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`
    t.diagnostic(
      `1000 requests in ${elapsed} ms; heapUsed ${mb(before)} -> ${mb(after)} (${((after / before - 1) * 100).toFixed(1)} %), ` +
        `log lines kept by the harness +${mb(logGrowth)}, limit ${mb(limit)}`,
    )
    assert.ok(after <= limit, `heap grew from ${mb(before)} to ${mb(after)} (limit ${mb(limit)})`)
  })
})
