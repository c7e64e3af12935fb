import assert from 'node:assert/strict'
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { capturedLogLines, serveWithUpstream } from './support/app.ts'

/**
 * Fastify runs onResponse, and writes its completion line, only for a response that finished:
 * requests whose client hung up first must still leave the in-flight gauge, and be counted and
 * logged once each, with the status the docs give them (499 ERR_CLIENT_CLOSED).
 */

const ROUTE = '/v1/tasks/text-generation'
const BODY = JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Tell me a long story' })

interface Call {
  req: ClientRequest
  /** Resolves with the first chunk of the body, or undefined when the response never came. */
  firstChunk: Promise<Buffer | undefined>
}

/** A request on its own connection (no agent), so hanging up really closes its socket. */
function open(base: string, id: string, headers: Record<string, string> = {}, body = BODY): Call {
  const req = request(`${base}${ROUTE}`, {
    method: 'POST',
    agent: false,
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(BODY)),
      'x-request-id': id,
      ...headers,
    },
  })
  req.on('error', () => undefined) // the hang-up we cause
  const firstChunk = new Promise<Buffer | undefined>((resolve) => {
    req.once('close', () => resolve(undefined))
    req.once('response', (res: IncomingMessage) => {
      res.on('error', () => undefined)
      res.once('data', (chunk: Buffer) => resolve(chunk))
    })
  })
  if (body === BODY) req.end(body)
  else req.write(body)
  return { req, firstChunk }
}

/** Every sample of the exposition text, as `name{labels}` → value. */
async function scrape(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)$/.exec(line)
    if (match) samples.set(match[1]!, Number(match[2]))
  }
  return samples
}

/** The sum of the samples named `name` whose labels include `labels`. */
function total(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const [key, value] of samples) {
    if (key !== name && !key.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value
  }
  return sum
}

/** Waits until the in-flight gauge reads `expected` (the scrape itself included); fails after 10 s. */
async function inFlightSettles(base: string, expected: number): Promise<Map<string, number>> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const samples = await scrape(base)
    const inFlight = total(samples, 'openai_tasks_http_requests_in_flight')
    if (inFlight === expected) return samples
    if (Date.now() > deadline) assert.fail(`requests in flight stayed at ${inFlight}, not ${expected}`)
    await sleep(50)
  }
}

interface LogEntry {
  msg: string
  reqId?: string
  res?: { statusCode: number }
  code?: string
}

/** The completion lines of the requests whose ids start with `prefix`, by id. */
function completionLines(prefix: string): Map<string, LogEntry[]> {
  const byId = new Map<string, LogEntry[]>()
  for (const line of capturedLogLines) {
    const entry = JSON.parse(line) as LogEntry
    if (entry.msg !== 'request completed' || !entry.reqId?.startsWith(prefix)) continue
    byId.set(entry.reqId, [...(byId.get(entry.reqId) ?? []), entry])
  }
  return byId
}

/** One completion line for each of `ids`, with that status and code. */
function assertOneLineEach(prefix: string, ids: string[], statusCode: number, code: string | undefined): void {
  const lines = completionLines(prefix)
  assert.deepEqual([...lines.keys()].sort(), [...ids].sort(), 'a completion line for every request')
  for (const [id, entries] of lines) {
    assert.equal(entries.length, 1, `${id}: one completion line`)
    assert.equal(entries[0]!.res?.statusCode, statusCode, `${id}: logged with status ${statusCode}`)
    assert.equal(entries[0]!.code, code, `${id}: with code ${code}`)
  }
}

test('callers hanging up mid-stream are counted and logged once each, as 499', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  const n = 300
  // A control that finishes, then streams that stall after their first events.
  const done = await fetch(`${base}${ROUTE}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'finished-0' },
    body: BODY,
  })
  assert.equal(done.status, 200)
  await done.text()
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/chat/completions', afterChunks: 2, stall: true, times: n })
  const ids = Array.from({ length: n }, (_, i) => `mid-stream-${i}`)
  const calls = ids.map((id) => open(base, id, { accept: 'text/event-stream' }))
  const chunks = await Promise.all(calls.map((call) => call.firstChunk))
  assert.ok(
    chunks.every((chunk) => String(chunk).includes('event: delta')),
    'every stream had started',
  )
  // Half close their connection, half reset it.
  for (const [i, { req }] of calls.entries()) {
    if (i % 2) req.socket!.resetAndDestroy()
    else req.destroy()
  }

  const samples = await inFlightSettles(base, 1)
  const route = { route: ROUTE, method: 'POST' }
  assert.equal(total(samples, 'openai_tasks_http_requests_total', { ...route, status: '499' }), n)
  assert.equal(total(samples, 'openai_tasks_http_request_duration_seconds_count', { ...route, status: '499' }), n)
  assert.equal(total(samples, 'openai_tasks_http_requests_total', { ...route, status: '200' }), 1, 'the control')
  assert.equal(total(samples, 'openai_tasks_http_requests_total', route), n + 1, 'no request counted twice')
  assertOneLineEach('mid-stream-', ids, 499, 'ERR_CLIENT_CLOSED')
  assertOneLineEach('finished-', ['finished-0'], 200, undefined)
  const aboveDebug = capturedLogLines
    .map((line) => JSON.parse(line) as LogEntry & { level: number })
    .filter((entry) => entry.reqId?.startsWith('mid-stream-') && entry.level > 20)
  assert.deepEqual(
    aboveDebug.filter((entry) => entry.msg !== 'request completed'),
    [],
    'no other line about the hang-ups above debug',
  )
})

test('callers hanging up before OpenAI answered are counted and logged once each, as 499', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  const n = 300
  upstream.enqueue({ kind: 'hang', path: '/v1/chat/completions', times: n })
  const ids = Array.from({ length: n }, (_, i) => `before-answer-${i}`)
  const calls = ids.map((id) => open(base, id))
  await upstream.waitForRequests(n, 10_000)
  for (const { req } of calls) req.destroy()
  await upstream.waitFor(() => upstream.requests.every((rec) => rec.aborted), 10_000)

  const samples = await inFlightSettles(base, 1)
  const route = { route: ROUTE, method: 'POST' }
  assert.equal(total(samples, 'openai_tasks_http_requests_total', { ...route, status: '499' }), n)
  assert.equal(total(samples, 'openai_tasks_http_request_duration_seconds_count', { ...route, status: '499' }), n)
  assert.equal(total(samples, 'openai_tasks_http_requests_total', route), n, 'no request counted twice')
  assertOneLineEach('before-answer-', ids, 499, 'ERR_CLIENT_CLOSED')
})

test('requests the service ends on the connection itself are counted with the status it sent', async (t) => {
  const { upstream, base } = await serveWithUpstream(t, { REQUEST_TIMEOUT_MS: '300', HEADERS_TIMEOUT_MS: '300' })
  const n = 5
  // Bodies that stop half-way: 408 on the socket, which is then closed.
  const slowIds = Array.from({ length: n }, (_, i) => `too-slow-${i}`)
  const slow = slowIds.map((id) => open(base, id, {}, BODY.slice(0, 10)))
  const answers = await Promise.all(slow.map((call) => call.firstChunk))
  assert.ok(
    answers.every((answer) => String(answer).includes('ERR_REQUEST_TIMEOUT')),
    'each was answered 408',
  )
  // Speech streams OpenAI cuts after their first chunk: the service cuts the caller's too.
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/speech', afterChunks: 1, times: n })
  const cutIds = Array.from({ length: n }, (_, i) => `cut-stream-${i}`)
  const text = 'A sentence long enough for several chunks of audio. '.repeat(6)
  await Promise.all(
    cutIds.map(async (id) => {
      const res = await fetch(`${base}/v1/tasks/text-to-speech`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'audio/mpeg', 'x-request-id': id },
        body: JSON.stringify({ model: 'tts-1', text, voice: 'alloy' }),
      })
      assert.equal(res.status, 200)
      await assert.rejects(res.arrayBuffer(), 'the audio stream was cut')
    }),
  )

  const samples = await inFlightSettles(base, 1)
  assert.equal(total(samples, 'openai_tasks_http_requests_total', { route: ROUTE, status: '408' }), n)
  assert.equal(total(samples, 'openai_tasks_http_request_duration_seconds_count', { route: ROUTE, status: '408' }), n)
  const speech = { route: '/v1/tasks/text-to-speech', method: 'POST' }
  assert.equal(total(samples, 'openai_tasks_http_requests_total', { ...speech, status: '200' }), n)
  assert.equal(total(samples, 'openai_tasks_http_requests_total', speech), n, 'no request counted twice')
  assertOneLineEach('too-slow-', slowIds, 408, 'ERR_REQUEST_TIMEOUT')
  assertOneLineEach('cut-stream-', cutIds, 200, undefined)
})
