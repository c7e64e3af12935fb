import assert from 'node:assert/strict'
import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { serveWithUpstream } from './support/app.ts'
import type { FakeOpenAI, RecordedRequest } from './support/fake-openai/index.ts'
import { findGc, settledHeap } from './support/heap.ts'

/**
 * A caller that hangs up must not leave an OpenAI request running: the stand-in sees its
 * connection closed (`recorded.aborted`). Times from hang-up to upstream abort are reported with
 * t.diagnostic, never asserted (speed goals live in the benchmarks).
 */

const serve = serveWithUpstream

interface Call {
  req: ClientRequest
  /** Resolves with the response once its headers arrive (never rejects). */
  response: Promise<IncomingMessage | undefined>
  /** Resolves with the first chunk of the body. */
  firstChunk: Promise<Buffer | undefined>
}

/** A request on its own connection (no agent), so hanging up really closes the socket. */
function open(base: string, path: string, body: string | Buffer, headers: Record<string, string>): Call {
  const req = request(`${base}${path}`, {
    method: 'POST',
    agent: false,
    headers: { 'content-length': String(Buffer.byteLength(body)), ...headers },
  })
  req.on('error', () => undefined) // the hang-up we cause
  const response = new Promise<IncomingMessage | undefined>((resolve) => {
    req.once('response', resolve)
    req.once('close', () => resolve(undefined))
  })
  const firstChunk = response.then(
    (res) =>
      new Promise<Buffer | undefined>((resolve) => {
        if (!res) return resolve(undefined)
        res.on('error', () => undefined)
        res.once('data', (c: Buffer) => resolve(c))
        res.once('close', () => resolve(undefined))
      }),
  )
  req.end(body)
  return { req, response, firstChunk }
}

const JSON_HEADERS = { 'content-type': 'application/json' }

/** Waits until the stand-in saw the request's connection closed; reports how long after `since`. */
async function assertUpstreamAborted(
  t: TestContext,
  upstream: FakeOpenAI,
  rec: RecordedRequest,
  since: number,
  what: string,
): Promise<void> {
  await upstream
    .waitFor(() => rec.aborted, 3000)
    .catch(() => {
      assert.fail(`${what}: the upstream request was not aborted after the client hung up`)
    })
  t.diagnostic(
    `${what}: upstream aborted ≈${(performance.now() - since).toFixed(1)} ms after the hang-up (5 ms polling)`,
  )
}

async function assertSettled(app: FastifyInstance): Promise<void> {
  const deadline = Date.now() + 5000
  for (;;) {
    const { running, pending } = app.upstream.stats
    if (running === 0 && pending === 0 && app.upstream.inFlight === 0) return
    if (Date.now() > deadline) {
      assert.fail(`upstream pool not settled: ${JSON.stringify(app.upstream.stats)}, inFlight ${app.upstream.inFlight}`)
    }
    await sleep(10)
  }
}

const WAV = Buffer.concat([
  Buffer.from('524946462400000057415645666d74201000000001000100401f0000803e0000020010006461746100000000', 'hex'),
  Buffer.alloc(4000, 3),
])

/** Every way into the upstream: JSON answers and byte answers, hung before OpenAI's headers. */
const BEFORE_HEADERS: Array<{
  name: string
  route: string
  upstreamPath: string
  body: string
  headers?: Record<string, string>
}> = [
  {
    name: 'text-generation JSON',
    route: 'text-generation',
    upstreamPath: '/chat/completions',
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Hi' }),
  },
  {
    name: 'text-generation SSE',
    route: 'text-generation',
    upstreamPath: '/chat/completions',
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Hi' }),
    headers: { accept: 'text/event-stream' },
  },
  {
    name: 'text-embeddings',
    route: 'text-embeddings',
    upstreamPath: '/embeddings',
    body: JSON.stringify({ model: 'text-embedding-3-small', text: 'Hi' }),
  },
  {
    name: 'text-to-speech JSON',
    route: 'text-to-speech',
    upstreamPath: '/audio/speech',
    body: JSON.stringify({ model: 'tts-1', text: 'Hi', voice: 'alloy' }),
  },
  {
    name: 'text-to-speech audio',
    route: 'text-to-speech',
    upstreamPath: '/audio/speech',
    body: JSON.stringify({ model: 'tts-1', text: 'Hi', voice: 'alloy' }),
    headers: { accept: 'audio/*' },
  },
  {
    name: 'text-to-image JSON',
    route: 'text-to-image',
    upstreamPath: '/images/generations',
    body: JSON.stringify({ prompt: 'A wombat', size: '256x256' }),
  },
  {
    name: 'text-to-image WebP',
    route: 'text-to-image',
    upstreamPath: '/images/generations',
    body: JSON.stringify({ prompt: 'A wombat', size: '256x256' }),
    headers: { accept: 'image/webp' },
  },
  {
    name: 'speech-recognition JSON',
    route: 'speech-recognition',
    upstreamPath: '/audio/transcriptions',
    body: JSON.stringify({ model: 'whisper-1', audio: WAV.toString('base64') }),
  },
]

// First in the file: timers other tests might leave behind would expire during this one and hide its count.
// (It caught a heartbeat timer leaked per failed stream in the withHeartbeat of c84215b.)
test('a failed or cancelled SSE stream leaves no heartbeat timer running', async (t) => {
  const { app, upstream, base } = await serve(t, { SSE_HEARTBEAT_MS: '10000' })
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  // Warm-up, then the baseline.
  const warm = await fetch(`${base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { ...JSON_HEADERS, accept: 'text/event-stream' },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Hi' }),
  })
  await warm.text()
  await sleep(50)
  const before = timers()

  const count = 10
  for (let i = 0; i < count; i++) {
    upstream.enqueue({ kind: 'truncated-stream', path: '/v1/chat/completions', afterChunks: 2, stall: i % 2 === 0 })
    const call = open(base, '/v1/tasks/text-generation', JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Hi' }), {
      ...JSON_HEADERS,
      accept: 'text/event-stream',
    })
    await call.firstChunk
    // Odd: the upstream cuts the stream (error event); even: it stalls and the client hangs up.
    if (i % 2 === 0) call.req.destroy()
    else {
      await new Promise((resolve) =>
        call.response.then((res) => (res ? res.on('end', resolve).resume() : resolve(undefined))),
      )
    }
  }
  await upstream.waitFor(() => upstream.requests.slice(1).every((r) => r.aborted || r.responseBody !== undefined), 3000)
  await assertSettled(app)
  await sleep(100)
  const after = timers()
  t.diagnostic(`ref'd timers: ${before} before, ${after} after ${count} failed streams`)
  assert.ok(after - before < count / 2, `${after - before} timers left behind by ${count} failed streams`)
})

test('hanging up before OpenAI answered aborts the upstream request, on every route', async (t) => {
  const { app, upstream, base } = await serve(t)
  for (const [i, c] of BEFORE_HEADERS.entries()) {
    upstream.enqueue({ kind: 'hang', path: c.upstreamPath })
    const call = open(base, `/v1/tasks/${c.route}`, c.body, { ...JSON_HEADERS, ...c.headers })
    const rec = (await upstream.waitForRequests(i + 1))[i]!
    assert.equal(rec.path, `/v1${c.upstreamPath}`)
    assert.equal(rec.behaviour?.kind, 'hang')
    // Control: without a hang-up the upstream request stays open.
    await sleep(30)
    assert.equal(rec.aborted, false, `${c.name}: not aborted while the client waits`)
    const since = performance.now()
    call.req.destroy()
    await assertUpstreamAborted(t, upstream, rec, since, c.name)
  }
  await assertSettled(app)
})

test("hanging up during a multipart upload's upstream call aborts it", async (t) => {
  const { app, upstream, base } = await serve(t)
  upstream.enqueue({ kind: 'hang', path: '/audio/transcriptions' })
  const boundary = 'cancel-boundary'
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\ncontent-disposition: form-data; name="audio"; filename="a.wav"\r\ncontent-type: audio/wav\r\n\r\n`,
    ),
    WAV,
    Buffer.from(
      `\r\n--${boundary}\r\ncontent-disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--${boundary}--\r\n`,
    ),
  ])
  const call = open(base, '/v1/tasks/speech-recognition', body, {
    'content-type': `multipart/form-data; boundary=${boundary}`,
  })
  const [rec] = await upstream.waitForRequests(1)
  assert.ok(rec!.form!.files.file!.data.equals(WAV))
  const since = performance.now()
  call.req.destroy()
  await assertUpstreamAborted(t, upstream, rec!, since, 'speech-recognition multipart')
  await assertSettled(app)
})

test('hanging up during an SSE stream aborts the stalled upstream stream', async (t) => {
  const { app, upstream, base } = await serve(t)
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/chat/completions', afterChunks: 3, stall: true })
  const call = open(
    base,
    '/v1/tasks/text-generation',
    JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Tell me a long story' }),
    {
      ...JSON_HEADERS,
      accept: 'text/event-stream',
    },
  )
  const res = await call.response
  assert.equal(res?.statusCode, 200)
  assert.match(String(res?.headers['content-type']), /^text\/event-stream/)
  const first = await call.firstChunk
  assert.match(String(first), /event: delta/, 'the stream had started')
  const rec = upstream.requests[0]!
  await sleep(30)
  assert.equal(rec.aborted, false, 'control: the stalled stream stays open while the client listens')
  const since = performance.now()
  call.req.destroy()
  await assertUpstreamAborted(t, upstream, rec, since, 'SSE stream')
  await assertSettled(app)
})

test('hanging up during a speech byte stream aborts the stalled upstream body', async (t) => {
  const { app, upstream, base } = await serve(t)
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/speech', afterChunks: 1, stall: true })
  const text = 'A sentence long enough for several chunks of audio. '.repeat(6)
  const call = open(base, '/v1/tasks/text-to-speech', JSON.stringify({ model: 'tts-1', text, voice: 'alloy' }), {
    ...JSON_HEADERS,
    accept: 'audio/*',
  })
  const res = await call.response
  assert.equal(res?.statusCode, 200)
  assert.equal(res?.headers['content-type'], 'audio/mpeg')
  const first = await call.firstChunk
  assert.equal(first?.subarray(0, 3).toString('latin1'), 'ID3', 'audio bytes had arrived')
  const rec = upstream.requests[0]!
  await sleep(30)
  assert.equal(rec.aborted, false, 'control: the stalled body stays open while the client listens')
  const since = performance.now()
  call.req.destroy()
  await assertUpstreamAborted(t, upstream, rec, since, 'speech stream')
  await assertSettled(app)
})

// ---------------------------------------------------------------------------------------------
// Leak check
// ---------------------------------------------------------------------------------------------

function connectionsOf(app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) => app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
}

const FIRST_CHUNK = {
  id: 'c',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, delta: { content: 'Once' }, logprobs: null, finish_reason: null }],
}

const sseHead = (res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
  res.write(`data: ${JSON.stringify(FIRST_CHUNK)}\n\n`)
}

/** An upstream whose answers never end: hung JSON calls, and SSE / audio streams that stall after a first chunk. */
function neverEndingUpstream(upstream: FakeOpenAI): (id: string) => Promise<void> {
  const seen = new Set<string>()
  const waiting = new Map<string, () => void>()
  const arrived = (rec: RecordedRequest): void => {
    const id = String(rec.headers['x-client-request-id'])
    seen.add(id)
    waiting.get(id)?.()
  }
  upstream.setHandler('/chat/completions', (_req, res, rec) => {
    if (rec.json?.stream) sseHead(res)
    arrived(rec)
  })
  upstream.setHandler('/audio/speech', (_req, res, rec) => {
    res.writeHead(200, { 'content-type': 'audio/mpeg' })
    res.write(Buffer.concat([Buffer.from('ID3'), Buffer.alloc(2000, 1)]))
    arrived(rec)
  })
  upstream.setHandler('/embeddings', (_req, _res, rec) => arrived(rec))
  return (id) =>
    seen.has(id)
      ? Promise.resolve()
      : new Promise((resolve) => {
          waiting.set(id, () => {
            waiting.delete(id)
            resolve()
          })
        })
}

const KINDS = [
  {
    path: '/v1/tasks/text-generation',
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Hi' }),
    accept: 'application/json',
    streams: false,
  },
  {
    path: '/v1/tasks/text-generation',
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Hi' }),
    accept: 'text/event-stream',
    streams: true,
  },
  {
    path: '/v1/tasks/text-to-speech',
    body: JSON.stringify({ model: 'tts-1', text: 'Hi', voice: 'alloy' }),
    accept: 'audio/mpeg',
    streams: true,
  },
  {
    path: '/v1/tasks/text-embeddings',
    body: JSON.stringify({ model: 'text-embedding-3-small', text: 'Hi' }),
    accept: 'application/json',
    streams: false,
  },
]

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const timer = new AbortController()
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: timer.signal }).then(() => assert.fail(`${what}: no progress in ${ms} ms`)),
    ])
  } finally {
    timer.abort()
  }
}

/** `count` requests, `concurrency` at a time, each hung up once its upstream call is under way. */
async function cancelMany(
  base: string,
  arrivedUpstream: (id: string) => Promise<void>,
  prefix: string,
  count: number,
  concurrency: number,
): Promise<number[]> {
  let next = 0
  const gaps: number[] = []
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const kind = KINDS[i % KINDS.length]!
      const id = `${prefix}-${i}`
      const call = open(base, kind.path, kind.body, { ...JSON_HEADERS, accept: kind.accept, 'x-request-id': id })
      await withTimeout(arrivedUpstream(id), 5000, id)
      if (kind.streams) {
        const first = await withTimeout(call.firstChunk, 5000, `${id} first chunk`)
        assert.ok(first && first.length > 0, `${id}: the stream had started`)
      }
      const since = performance.now()
      call.req.destroy()
      gaps.push(since)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return gaps
}

test('1,000 cancelled requests in a row leave no upstream request, connection or memory behind', async (t) => {
  const { app, upstream, base } = await serve(t)
  const arrivedUpstream = neverEndingUpstream(upstream)
  const gc = findGc()
  const started = performance.now()

  // Warm-up: JIT, pools and caches reach their steady size before the baseline.
  await cancelMany(base, arrivedUpstream, 'warm', 100, 20)
  await upstream.waitFor(() => upstream.requests.every((r) => r.aborted), 10_000)
  await assertSettled(app)
  const baselineConnections = await connectionsOf(app)
  const baselineHeap = gc ? await settledHeap(gc) : undefined

  await cancelMany(base, arrivedUpstream, 'run', 1000, 20)
  const runRequests = upstream.requests.filter((r) => String(r.headers['x-client-request-id']).startsWith('run-'))
  assert.equal(runRequests.length, 1000, 'every request reached the upstream before the hang-up')
  await upstream
    .waitFor(() => runRequests.every((r) => r.aborted), 10_000)
    .catch(() => {
      assert.fail(
        `${runRequests.filter((r) => !r.aborted).length} upstream request(s) still open after their callers hung up`,
      )
    })
  await assertSettled(app)

  const deadline = Date.now() + 5000
  let connections = await connectionsOf(app)
  while (connections > baselineConnections && Date.now() < deadline) {
    await sleep(20)
    connections = await connectionsOf(app)
  }
  assert.ok(connections <= baselineConnections, `server connections back to ${baselineConnections}: ${connections}`)

  if (gc && baselineHeap !== undefined) {
    const heap = await settledHeap(gc)
    const growthMb = (heap - baselineHeap) / 2 ** 20
    const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)
    t.diagnostic(
      `heap after gc: ${mb(baselineHeap)} MB → ${mb(heap)} MB (${growthMb >= 0 ? '+' : ''}${growthMb.toFixed(1)} MB; ` +
        "includes the stand-in's 1,000 recordings and the captured log lines)",
    )
    assert.ok(growthMb < 30, `heap grew by ${growthMb.toFixed(1)} MB over 1,000 cancelled requests`)
  } else {
    t.diagnostic('gc unavailable: heap check skipped')
  }
  t.diagnostic(`1,100 cancelled requests in ${((performance.now() - started) / 1000).toFixed(1)} s`)
})
