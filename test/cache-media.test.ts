// The opt-in cache of text to speech, text to image and speech recognition, over real sockets
// against the stand-in OpenAI, which records every call: only `Cache-Control: max-age` reads or
// stores; the JSON and the media routes share entries; a body cut short, an error or an entry
// over CACHE_MAX_ENTRY_BYTES is never kept; every field OpenAI gets is in the key.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { serveWithUpstream, type Served } from './support/app.ts'
import { expectedSpeechBytes, openAIError } from './support/fake-openai/index.ts'
import { metricSample } from './support/metric-sample.ts'
import { wavHeader } from './support/wav.ts'

const ASKED = { 'cache-control': 'max-age=600' }
const SPEECH = '/v1/audio/speech'
const IMAGES = '/v1/images/generations'
const TRANSCRIPTIONS = '/v1/audio/transcriptions'
const HIT = /^openai-tasks; hit; ttl=\d+$/
const STORED = 'openai-tasks; fwd=miss; stored'

interface Answer {
  status: number
  cacheStatus: string | null
  cost: string | null
  contentType: string | null
  headers: Headers
  bytes: Buffer
  json(): any
}

async function call(
  served: Served,
  task: string,
  input: object,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${served.base}/v1/tasks/${task}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  })
  const bytes = Buffer.from(await res.arrayBuffer())
  return {
    status: res.status,
    cacheStatus: res.headers.get('cache-status'),
    cost: res.headers.get('x-openai-tasks-cost-usd'),
    contentType: res.headers.get('content-type'),
    headers: res.headers,
    bytes,
    json: () => JSON.parse(bytes.toString('utf8')),
  }
}

/** The bytes of a `data:<mime>;base64,...` URI, and its type. */
function decoded(uri: string): { mime: string; bytes: Buffer } {
  const match = /^data:([^;,]+);base64,(.*)$/.exec(uri)
  assert.ok(match, `a data URI: ${uri.slice(0, 40)}`)
  return { mime: match[1]!, bytes: Buffer.from(match[2]!, 'base64') }
}

function wav(samples: number, pitch = 3): string {
  const data = Buffer.alloc(samples * 2)
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(8000 * Math.sin(i / pitch)), i * 2)
  return `data:audio/wav;base64,${Buffer.concat([wavHeader(samples * 2, 8000), data]).toString('base64')}`
}

async function sample(served: Served, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricSample(await (await fetch(`${served.base}/metrics`)).text(), name, labels)
}

/** A stored media entry is written once the body has ended: poll until the count moves. */
async function storedCount(served: Served, atLeast: number): Promise<number> {
  const deadline = Date.now() + 2000
  for (;;) {
    const stored = await sample(served, 'openai_tasks_cache_stores_total', { result: 'stored' })
    if (stored >= atLeast || Date.now() > deadline) return stored
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const SPOKEN = { model: 'tts-1', text: 'Welcome to the museum.', voice: 'alloy', 'response-format': 'mp3' }

test('text to speech as JSON: only with max-age, then the same audio from the cache at no cost', async (t) => {
  const served = await serveWithUpstream(t)
  const bypassed = await call(served, 'text-to-speech', SPOKEN)
  assert.equal(bypassed.status, 200)
  assert.equal(bypassed.cacheStatus, 'openai-tasks; fwd=bypass')

  const first = await call(served, 'text-to-speech', SPOKEN, ASKED)
  assert.equal(first.cacheStatus, STORED)
  assert.ok(Number(first.cost) > 0, `the first call was paid for: ${first.cost}`)
  const second = await call(served, 'text-to-speech', SPOKEN, { 'cache-control': 'max-age=60' })
  assert.equal(served.upstream.count(SPEECH), 2, 'the hit never reached OpenAI')
  assert.match(second.cacheStatus ?? '', HIT)
  assert.equal(second.cost, '0')
  assert.deepEqual(second.json(), first.json())
  const { mime, bytes } = decoded(second.json().audio)
  assert.equal(mime, 'audio/mpeg')
  assert.ok(bytes.equals(expectedSpeechBytes(served.upstream.requests[1]!.json)), "OpenAI's bytes, exactly")
})

test('text to speech as audio: kept once relayed whole, shared with the JSON route, never kept cut short', async (t) => {
  const served = await serveWithUpstream(t)
  const audio = { ...ASKED, accept: 'audio/mpeg' }
  const { 'response-format': _mp3, ...negotiated } = SPOKEN

  const first = await call(served, 'text-to-speech', negotiated, audio)
  assert.equal(first.status, 200)
  assert.equal(first.cacheStatus, 'openai-tasks; fwd=miss', 'stored or not is known only once the body has gone')
  assert.equal(await storedCount(served, 1), 1)
  const second = await call(served, 'text-to-speech', negotiated, audio)
  assert.match(second.cacheStatus ?? '', HIT)
  assert.equal(second.contentType, 'audio/mpeg')
  assert.equal(second.headers.get('content-length'), String(first.bytes.length))
  assert.equal(second.headers.get('content-disposition'), 'attachment; filename="speech.mp3"')
  assert.ok(second.bytes.equals(first.bytes), 'the same bytes')
  assert.equal(second.cost, '0')
  // The audio route asks OpenAI for mp3 by name: the JSON route asking for mp3 is the same request.
  const json = await call(served, 'text-to-speech', SPOKEN, ASKED)
  assert.match(json.cacheStatus ?? '', HIT)
  assert.ok(decoded(json.json().audio).bytes.equals(first.bytes))
  assert.equal(served.upstream.count(SPEECH), 1)

  // A body OpenAI cut short reaches the caller cut short and is not kept.
  const cut = { ...negotiated, text: 'This clip is cut.' }
  served.upstream.enqueue({ kind: 'truncated-stream', path: SPEECH, afterChunks: 1 })
  await call(served, 'text-to-speech', cut, audio).catch(() => undefined)
  const again = await call(served, 'text-to-speech', cut, audio)
  assert.equal(again.status, 200)
  assert.equal(again.cacheStatus, 'openai-tasks; fwd=miss', 'the cut answer was not kept')
  assert.equal(served.upstream.count(SPEECH), 3)
})

test('audio over CACHE_MAX_ENTRY_BYTES is relayed whole and not kept; errors are not kept', async (t) => {
  const served = await serveWithUpstream(t, { CACHE_MAX_ENTRY_BYTES: '64' })
  const audio = { ...ASKED, accept: 'audio/mpeg' }
  const first = await call(served, 'text-to-speech', SPOKEN, audio)
  assert.ok(first.bytes.length > 64, `a clip longer than the limit: ${first.bytes.length}`)
  assert.ok(first.bytes.equals(expectedSpeechBytes(served.upstream.requests[0]!.json)), 'relayed whole')
  const json = await call(served, 'text-to-speech', SPOKEN, ASKED)
  assert.equal(json.cacheStatus, 'openai-tasks; fwd=miss', 'neither route kept it')
  assert.equal(served.upstream.count(SPEECH), 2)
  const tooLarge = await sample(served, 'openai_tasks_cache_stores_total', { result: 'too-large' })
  assert.equal(tooLarge, 2)

  served.upstream.enqueue({ status: 400, path: SPEECH, body: openAIError(400, 'Input is not allowed') })
  const failed = await call(served, 'text-to-speech', { ...SPOKEN, text: 'x' }, ASKED)
  assert.equal(failed.status, 400)
  assert.equal(failed.cacheStatus, 'openai-tasks; fwd=miss')
  const retried = await call(served, 'text-to-speech', { ...SPOKEN, text: 'x' }, ASKED)
  assert.equal(retried.status, 200)
  assert.equal(served.upstream.count(SPEECH), 4, 'the error was not kept')
})

const DRAWN = { model: 'dall-e-2', prompt: 'a red circle', size: '256x256' }

test('text to image: a hit gives the same images at no cost; the image route shares the entry', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: 'gpt-image-1', prompt: 'a red circle', size: '1024x1024', 'output-format': 'png' }
  assert.equal((await call(served, 'text-to-image', input)).cacheStatus, 'openai-tasks; fwd=bypass')
  const first = await call(served, 'text-to-image', input, ASKED)
  assert.equal(first.status, 200, first.bytes.toString())
  assert.equal(first.cacheStatus, STORED)
  assert.ok(Number(first.cost) > 0)
  const second = await call(served, 'text-to-image', input, ASKED)
  assert.match(second.cacheStatus ?? '', HIT)
  assert.equal(second.cost, '0')
  assert.deepEqual(second.json(), first.json())
  const image = await call(served, 'text-to-image', input, { ...ASKED, accept: 'image/png' })
  assert.match(image.cacheStatus ?? '', HIT)
  assert.equal(image.contentType, 'image/png')
  assert.ok(image.bytes.equals(decoded(first.json().results[0].image).bytes), 'the same picture')
  assert.equal(served.upstream.count(IMAGES), 2)
  const images = await sample(served, 'openai_tasks_images_generated_total', { model: 'gpt-image-1' })
  assert.equal(images, 2, 'only the images OpenAI drew are counted')
})

test('text to image: an error is not kept', async (t) => {
  const served = await serveWithUpstream(t)
  served.upstream.enqueue({ status: 400, path: IMAGES, body: openAIError(400, 'Your request was rejected') })
  assert.equal((await call(served, 'text-to-image', DRAWN, ASKED)).status, 400)
  const retried = await call(served, 'text-to-image', DRAWN, ASKED)
  assert.equal(retried.cacheStatus, STORED)
  assert.equal(served.upstream.count(IMAGES), 2)
})

const HEARD = { model: 'whisper-1', audio: wav(800), language: 'en' }

test('speech recognition: the same audio and fields are a hit, as JSON or as a multipart upload', async (t) => {
  const served = await serveWithUpstream(t)
  assert.equal((await call(served, 'speech-recognition', HEARD)).cacheStatus, 'openai-tasks; fwd=bypass')
  const first = await call(served, 'speech-recognition', HEARD, ASKED)
  assert.equal(first.status, 200, first.bytes.toString())
  assert.equal(first.cacheStatus, STORED)
  const second = await call(served, 'speech-recognition', HEARD, ASKED)
  assert.match(second.cacheStatus ?? '', HIT)
  assert.equal(second.cost, '0')
  assert.deepEqual(second.json(), first.json())

  const form = new FormData()
  const bytes = Buffer.from(HEARD.audio.split(',')[1]!, 'base64')
  form.append('model', 'whisper-1')
  form.append('language', 'en')
  form.append('audio', new Blob([bytes], { type: 'audio/wav' }), 'any-name.wav')
  const res = await fetch(`${served.base}/v1/tasks/speech-recognition`, { method: 'POST', headers: ASKED, body: form })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('cache-status') ?? '', HIT, 'the same bytes uploaded are the same request')
  assert.deepEqual(await res.json(), first.json())
  assert.equal(served.upstream.count(TRANSCRIPTIONS), 2)
})

/** Per task, a request and changes to it, each of one field OpenAI gets: each must miss. */
const KEY_FIELDS: Array<{ task: string; base: Record<string, unknown>; changes: Array<Record<string, unknown>> }> = [
  {
    task: 'text-to-speech',
    base: { model: 'tts-1', text: 'Same words.', voice: 'alloy' },
    changes: [
      { model: 'tts-1-hd' },
      { text: 'Same words!' },
      { voice: 'echo' },
      { speed: 1.5 },
      { 'response-format': 'opus' },
      { model: 'gpt-4o-mini-tts', instructions: 'Whisper.' },
      { model: 'gpt-4o-mini-tts', instructions: 'Shout.' },
    ],
  },
  {
    task: 'text-to-image',
    base: { model: 'dall-e-2', prompt: 'a red circle', size: '256x256' },
    changes: [
      { prompt: 'a red square' },
      { size: '512x512' },
      { n: 2 },
      { model: 'dall-e-3', size: '1024x1024' },
      { model: 'dall-e-3', size: '1024x1024', quality: 'hd' },
      { model: 'dall-e-3', size: '1024x1024', style: 'natural' },
      { model: 'gpt-image-1', size: '1024x1024', background: 'transparent', 'output-format': 'png' },
      { model: 'gpt-image-1', size: '1024x1024', 'output-format': 'jpeg', 'output-compression': 50 },
      { model: 'gpt-image-1', size: '1024x1024', moderation: 'low' },
    ],
  },
  {
    task: 'speech-recognition',
    base: { model: 'whisper-1', audio: wav(800) },
    changes: [
      { audio: wav(800, 5) },
      { model: 'gpt-4o-mini-transcribe' },
      { language: 'fr' },
      { prompt: 'A tone.' },
      { temperature: 0.4 },
      { 'response-format': 'verbose_json' },
      { 'response-format': 'verbose_json', 'timestamp-granularities': ['word'] },
      { 'response-format': 'text' },
    ],
  },
]

for (const { task, base, changes } of KEY_FIELDS) {
  test(`${task}: every field OpenAI gets is in the key`, async (t) => {
    const served = await serveWithUpstream(t)
    const first = await call(served, task, base, ASKED)
    assert.equal(first.cacheStatus, STORED, first.bytes.toString())
    for (const change of changes) {
      const changed = await call(served, task, { ...base, ...change }, ASKED)
      assert.equal(changed.status, 200, `${JSON.stringify(change)}: ${changed.bytes.toString()}`)
      assert.equal(changed.cacheStatus, STORED, `${JSON.stringify(change)} is another request`)
    }
    const again = await call(served, task, base, ASKED)
    assert.match(again.cacheStatus ?? '', HIT, 'the first request is still a hit')
    assert.equal(served.upstream.requests.length, changes.length + 1)
  })
}

test('another caller with its own OpenAI key misses what the first kept', async (t) => {
  // No server key: each caller sends its own as the bearer token.
  const served = await serveWithUpstream(t, { OPENAI_API_KEY: '' })
  const own = (key: string) => ({ ...ASKED, authorization: `Bearer sk-own-${key}-0123456789abcdef` })
  assert.equal((await call(served, 'text-to-speech', SPOKEN, own('a'))).cacheStatus, STORED)
  assert.match((await call(served, 'text-to-speech', SPOKEN, own('a'))).cacheStatus ?? '', HIT)
  assert.equal((await call(served, 'text-to-speech', SPOKEN, own('b'))).cacheStatus, STORED)
  assert.equal(served.upstream.count(SPEECH), 2)
  assert.equal(served.upstream.requests[1]!.headers.authorization, own('b').authorization)
})
