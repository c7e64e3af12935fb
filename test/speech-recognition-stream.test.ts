import assert from 'node:assert/strict'
import { request, type IncomingMessage, type ServerResponse } from 'node:http'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { serveWithUpstream } from './support/app.ts'
import type { RecordedRequest } from './support/fake-openai/index.ts'
import { wavHeader } from './support/wav.ts'

/**
 * Speech recognition as Server-Sent Events, through a real socket: the caller's events and the
 * form that reached the stand-in OpenAI.
 */

const ROUTE = '/v1/tasks/speech-recognition'
const SSE = { 'content-type': 'application/json', accept: 'text/event-stream' }
const JSON_ONLY = { 'content-type': 'application/json', accept: 'application/json' }

interface SseEvent {
  event: string
  data: string
}

/** A 8 kHz mono 16-bit PCM WAV of `samples` samples of a tone. */
function wav(samples = 4000): Buffer {
  const data = Buffer.alloc(samples * 2)
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(8000 * Math.sin(i / 3)), i * 2)
  return Buffer.concat([wavHeader(samples * 2, 8000), data])
}

const AUDIO = `data:audio/wav;base64,${wav().toString('base64')}`

const jsonOf = (res: Response): Promise<any> => res.json() as Promise<any>

function post(base: string, body: unknown, headers: Record<string, string> = SSE): Promise<Response> {
  return fetch(base + ROUTE, { method: 'POST', headers, body: JSON.stringify(body) })
}

/** Blocks end with a blank line; `:` lines are comments, left out. */
async function readEvents(res: Response): Promise<SseEvent[]> {
  assert.equal(res.status, 200, await res.clone().text())
  assert.match(String(res.headers.get('content-type')), /^text\/event-stream\b/)
  const raw = await res.text()
  assert.ok(raw.endsWith('\n\n'), `the stream ends with a complete event: ${JSON.stringify(raw.slice(-80))}`)
  const events: SseEvent[] = []
  for (const block of raw.slice(0, -2).split('\n\n')) {
    const lines = block.split('\n').filter((line) => !line.startsWith(':'))
    if (!lines.length) continue
    const event = lines.find((line) => line.startsWith('event: '))?.slice('event: '.length) ?? 'message'
    const data = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice('data: '.length))
    events.push({ event, data: data.join('\n') })
  }
  return events
}

const names = (events: SseEvent[]): string => events.map((e) => e.event).join(',')
const dataOf = (e: SseEvent): any => JSON.parse(e.data)

/** The text parts of the form that reached the stand-in, in order. */
function textParts(sent: RecordedRequest): Array<[string, string]> {
  return sent.form!.entries.filter((entry): entry is [string, string] => typeof entry[1] === 'string')
}

/** The last event is the only `error`, and no `output` or `done` came; returns its error. */
function errorEventOf(events: SseEvent[], requestId: string | null): any {
  assert.equal(events.at(-1)?.event, 'error', names(events))
  assert.equal(events.filter((e) => e.event === 'error').length, 1, names(events))
  assert.ok(!events.some((e) => e.event === 'output' || e.event === 'done'), names(events))
  const body = dataOf(events.at(-1)!)
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message', 'request-id'])
  assert.equal(body.error['request-id'], requestId)
  return body.error
}

async function metric(app: FastifyInstance, name: string, model: string): Promise<number> {
  const line = (await app.inject('/metrics')).body.split('\n').find((l) => l.startsWith(`${name}{model="${model}"}`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

const streamed = [
  { name: 'gpt-4o-transcribe with logprobs', input: { model: 'gpt-4o-transcribe', include: ['logprobs'] } },
  { name: 'gpt-transcribe with its languages', input: { model: 'gpt-transcribe', languages: ['en', 'fr'] } },
  {
    name: 'gpt-4o-mini-transcribe, text format',
    input: { model: 'gpt-4o-mini-transcribe', 'response-format': 'text' },
  },
]

for (const { name, input: fields } of streamed) {
  test(`${name}: deltas, then the JSON route's output, then done; OpenAI is asked to stream`, async (t) => {
    const { app, upstream, base } = await serveWithUpstream(t)
    const input = { ...fields, audio: AUDIO, language: 'en', temperature: 0.2 }
    const expected = await jsonOf(await post(base, input, JSON_ONLY))
    const bytesBefore = await metric(app, 'openai_tasks_audio_input_bytes_total', input.model)

    const res = await post(base, input)
    assert.equal(res.headers.get('cache-control'), 'no-cache')
    const events = await readEvents(res)

    assert.match(names(events), /^(delta,){2,}output,done$/)
    const deltas = events.filter((e) => e.event === 'delta').map(dataOf)
    for (const delta of deltas) assert.deepEqual(Object.keys(delta), ['text'])
    const output = dataOf(events.at(-2)!)
    assert.deepEqual(output, expected, 'the output event is the JSON answer')
    assert.equal(deltas.map((d) => d.text).join(''), output.text, 'the deltas add up to the text')
    assert.deepEqual(dataOf(events.at(-1)!), {})

    const [plain, stream] = upstream.requests as [RecordedRequest, RecordedRequest]
    assert.equal(stream.headers.accept, 'text/event-stream')
    assert.deepEqual(textParts(stream), [...textParts(plain), ['stream', 'true']], 'what the caller gave, and stream')
    assert.ok(stream.form!.files.file!.data.equals(plain.form!.files.file!.data))
    const bytesAfter = await metric(app, 'openai_tasks_audio_input_bytes_total', input.model)
    assert.equal(bytesAfter - bytesBefore, plain.form!.files.file!.data.length, 'the audio is counted as for JSON')
  })
}

test('a multipart upload streams too', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  const audio = wav(8000)
  const form = new FormData()
  form.append('model', 'gpt-4o-mini-transcribe')
  form.append('audio', new Blob([audio], { type: 'audio/wav' }), 'talk.wav')
  form.append('language', 'en')
  const res = await fetch(base + ROUTE, { method: 'POST', headers: { accept: 'text/event-stream' }, body: form })
  const events = await readEvents(res)

  assert.match(names(events), /^(delta,)+output,done$/)
  const output = dataOf(events.at(-2)!)
  assert.equal(output.text, `Transcript of audio.wav (${audio.length} bytes) in en.`)
  const sent = upstream.requests[0]!
  assert.ok(sent.form!.files.file!.data.equals(audio), 'the upload reached OpenAI unchanged')
  assert.deepEqual(textParts(sent), [
    ['model', 'gpt-4o-mini-transcribe'],
    ['language', 'en'],
    ['stream', 'true'],
  ])
})

test('the diarize model: a segment event after the deltas of each; the output has the segments', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  const input = { model: 'gpt-4o-transcribe-diarize', audio: AUDIO, 'response-format': 'diarized_json' }
  const { duration, ...expected } = await jsonOf(await post(base, input, JSON_ONLY))
  assert.equal(typeof duration, 'number')

  const events = await readEvents(await post(base, input))
  assert.match(names(events), /^(delta,)+segment,(delta,)+segment,output,done$/)
  const segments = events.filter((e) => e.event === 'segment').map(dataOf)
  for (const segment of segments) assert.deepEqual(Object.keys(segment).sort(), ['end', 'speaker', 'start', 'text'])
  assert.deepEqual(
    segments.map((s) => s.speaker),
    ['A', 'B'],
  )
  const output = dataOf(events.at(-2)!)
  assert.deepEqual(output.segments, segments)
  assert.deepEqual(output, expected, 'the JSON answer but for duration, which the stream does not give')
  const text = events
    .filter((e) => e.event === 'delta')
    .map((e) => dataOf(e).text)
    .join('')
  assert.equal(text, output.text)
  assert.ok(textParts(upstream.requests[1]!).some(([name, value]) => name === 'chunking_strategy' && value === 'auto'))
})

test('whisper-1 does not stream: 406 asking for application/json, and OpenAI is not called', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  const res = await post(base, { model: 'whisper-1', audio: AUDIO })
  const body = await jsonOf(res)
  assert.equal(res.status, 406, JSON.stringify(body))
  assert.equal(body.error.code, 'ERR_NOT_ACCEPTABLE')
  assert.match(body.error.message, /application\/json/)
  assert.deepEqual(
    body.error.details.map((d: { path: string }) => d.path),
    ['/model'],
  )
  assert.equal(upstream.requests.length, 0)
})

test('a format that cannot stream is a 400 naming response-format, before OpenAI is called', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  for (const [model, format] of [
    ['gpt-transcribe', 'srt'],
    ['gpt-transcribe', 'verbose_json'],
    ['gpt-4o-transcribe', 'vtt'],
    ['gpt-4o-transcribe-diarize', 'verbose_json'],
  ] as const) {
    const res = await post(base, { model, audio: AUDIO, 'response-format': format })
    const body = await jsonOf(res)
    assert.equal(res.status, 400, JSON.stringify(body))
    assert.deepEqual(
      body.error.details.map((d: { path: string }) => d.path),
      ['/response-format'],
      `${model} ${format}: one problem`,
    )
  }
  // The same request without Accept: text/event-stream is fine: the refusal is the stream's.
  const json = await post(base, { model: 'gpt-transcribe', audio: AUDIO, 'response-format': 'srt' }, JSON_ONLY)
  assert.equal(json.status, 200)
  assert.equal(upstream.requests.length, 1)
})

test('a model of no known family gets the stream as asked', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  const events = await readEvents(await post(base, { model: 'my-whisper', audio: AUDIO, 'response-format': 'srt' }))
  assert.match(names(events), /^(delta,)+output,done$/)
  assert.deepEqual(textParts(upstream.requests[0]!), [
    ['model', 'my-whisper'],
    ['response_format', 'srt'],
    ['stream', 'true'],
  ])
})

// Upstream SSE written by hand, for what the stand-in's own answers never do.

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  res.flushHeaders()
}
const data = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`
const delta = (text: string): string => data({ type: 'transcript.text.delta', delta: text })

test("OpenAI's error event mid-stream becomes an error event with the service's error body", async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  upstream.setHandler('/audio/transcriptions', (_req, res) => {
    sseHead(res)
    res.write(delta('Hello'))
    res.end(data({ error: { message: 'The server had an error', type: 'server_error', code: null } }))
  })
  const res = await post(base, { model: 'gpt-4o-transcribe', audio: AUDIO })
  const events = await readEvents(res)
  assert.equal(events[0]!.event, 'delta')
  const error = errorEventOf(events, res.headers.get('x-request-id'))
  assert.match(error.code, /^ERR_UPSTREAM/)
})

test('a stream that ends without the done event is an error event (ERR_UPSTREAM_BAD_RESPONSE)', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  upstream.setHandler('/audio/transcriptions', (_req, res) => {
    sseHead(res)
    res.write(delta('Hello'))
    res.end(delta(' there'))
  })
  const res = await post(base, { model: 'gpt-4o-transcribe', audio: AUDIO })
  const events = await readEvents(res)
  assert.equal(names(events), 'delta,delta,error')
  assert.equal(errorEventOf(events, res.headers.get('x-request-id')).code, 'ERR_UPSTREAM_BAD_RESPONSE')
})

test('OpenAI dropping the connection mid-stream is an error event', async (t) => {
  const { upstream, base } = await serveWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/transcriptions', afterChunks: 1 })
  const res = await post(base, { model: 'gpt-4o-transcribe', audio: AUDIO })
  const events = await readEvents(res)
  assert.equal(events[0]!.event, 'delta')
  assert.match(errorEventOf(events, res.headers.get('x-request-id')).code, /^ERR_UPSTREAM/)
})

test('an OpenAI error before the stream starts is an ordinary JSON error', async (t) => {
  const { upstream, base } = await serveWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  upstream.enqueue({ status: 400, path: '/v1/audio/transcriptions' })
  const res = await post(base, { model: 'gpt-4o-transcribe', audio: AUDIO })
  assert.equal(res.status, 400)
  assert.match(String(res.headers.get('content-type')), /^application\/json/)
  assert.equal((await jsonOf(res)).error.code, 'ERR_UPSTREAM_BAD_REQUEST')
  assert.deepEqual(textParts(upstream.requests[0]!).at(-1), ['stream', 'true'], 'the stream was asked for')
})

test('hanging up during the stream aborts the upstream call', { timeout: 10_000 }, async (t) => {
  const { app, upstream, base } = await serveWithUpstream(t)
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/transcriptions', afterChunks: 1, stall: true })
  const body = JSON.stringify({ model: 'gpt-4o-transcribe', audio: AUDIO })
  const req = request(`${base}${ROUTE}`, {
    method: 'POST',
    agent: false,
    headers: { ...SSE, 'content-length': String(Buffer.byteLength(body)) },
  })
  req.on('error', () => undefined) // the hang-up we cause
  const response = new Promise<IncomingMessage>((resolve) => req.once('response', resolve))
  req.end(body)
  const res = await response
  res.on('error', () => undefined)
  assert.equal(res.statusCode, 200)
  const first = await new Promise<Buffer>((resolve) => res.once('data', resolve))
  assert.match(String(first), /event: delta/, 'the stream had started')
  const rec = upstream.requests[0]!
  await sleep(30)
  assert.equal(rec.aborted, false, 'control: the stalled stream stays open while the caller listens')
  req.destroy()
  await upstream.waitFor(() => rec.aborted, 3000)
  await upstream.waitFor(() => app.upstream.inFlight === 0, 3000)
})
