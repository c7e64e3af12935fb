import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildWithUpstream } from './support/app.ts'
import { SPEECH_FORMATS } from './support/speech-formats.ts'
import { expectedSpeechBytes } from './support/fake-openai/index.ts'
import { BUILT_IN_VOICES } from './support/fixtures.ts'

const URL = '/v1/tasks/text-to-speech'
const BASE = { model: 'tts-1', text: 'Hello from openai-tasks.', voice: 'alloy' }

/** Splits `data:<mime>;base64,<data>` into the MIME type and the decoded bytes. */
function decodeDataUri(uri: string): { mime: string; bytes: Buffer } {
  const match = /^data:([^;,]+);base64,([A-Za-z0-9+/]*={0,2})$/.exec(uri)
  assert.ok(match, `a base64 data URI: ${uri.slice(0, 60)}`)
  return { mime: match[1]!, bytes: Buffer.from(match[2]!, 'base64') }
}

function paths(res: { json(): any }): string[] {
  return res.json().error.details.map((d: { path: string }) => d.path)
}

test("sends only the fields given and answers with the exact mp3 bytes (OpenAI's default) as a data URI", async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: BASE })

  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests.length, 1)
  const sent = upstream.requests[0]!
  assert.equal(sent.path, '/v1/audio/speech')
  assert.deepEqual(sent.json, {
    model: 'tts-1',
    input: 'Hello from openai-tasks.',
    voice: 'alloy',
  })

  assert.deepEqual(Object.keys(res.json()), ['audio'])
  const { mime, bytes } = decodeDataUri(res.json().audio)
  assert.equal(mime, 'audio/mpeg')
  assert.ok(bytes.equals(sent.responseBody!), 'byte-exact copy of what the upstream sent')
  assert.ok(bytes.equals(expectedSpeechBytes(sent.json)))
  assert.equal(bytes.subarray(0, 3).toString('ascii'), 'ID3')
})

test('speed and a non-default model are passed on', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { ...BASE, model: 'tts-1-hd', voice: 'shimmer', speed: 2.5 }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(upstream.requests[0]!.json, {
    model: 'tts-1-hd',
    input: BASE.text,
    voice: 'shimmer',
    speed: 2.5,
  })
  assert.ok(decodeDataUri(res.json().audio).bytes.equals(upstream.requests[0]!.responseBody!))
})

for (const field of ['response-format', 'response-type']) {
  test(`every format via ${field} gets its MIME type and the exact bytes`, async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    for (const [format, expectedMime] of SPEECH_FORMATS) {
      upstream.reset()
      const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, [field]: format } })
      assert.equal(res.statusCode, 200, `${format}: ${res.body}`)
      const sent = upstream.requests[0]!
      assert.equal(sent.json.response_format, format)
      const { mime, bytes } = decodeDataUri(res.json().audio)
      assert.equal(mime, expectedMime, format)
      assert.ok(bytes.equals(expectedSpeechBytes(sent.json)), `${format}: byte-exact`)
    }
  })
}

test('response-format and response-type may both be given when they agree', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { ...BASE, 'response-format': 'wav', 'response-type': 'wav' }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests[0]!.json.response_format, 'wav')
  const { mime, bytes } = decodeDataUri(res.json().audio)
  assert.equal(mime, 'audio/wav')
  assert.equal(bytes.subarray(0, 4).toString('ascii'), 'RIFF')
})

test('a text of exactly 4096 characters is spoken', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const text = 'a'.repeat(4096)
  const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, text } })
  assert.equal(res.statusCode, 200, res.body.slice(0, 300))
  assert.equal(upstream.requests[0]!.json.input, text)
  assert.ok(decodeDataUri(res.json().audio).bytes.equals(upstream.requests[0]!.responseBody!))
})

test('voices: the built-in ones and any lowercase name are passed through, others are refused', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const builtIn = BUILT_IN_VOICES
  assert.ok(builtIn.length >= 13, 'the schema documents the built-in voices')
  for (const voice of [...builtIn, 'my_voice-2', 'v'.repeat(64)]) {
    upstream.reset()
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, model: 'gpt-4o-mini-tts', voice } })
    assert.equal(res.statusCode, 200, `${voice}: ${res.body}`)
    assert.equal(upstream.requests[0]!.json.voice, voice)
  }
  upstream.reset()
  for (const voice of ['Alloy', '', 'two words', 'v'.repeat(65), 'nova!']) {
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, voice } })
    assert.equal(res.statusCode, 400, `${JSON.stringify(voice)}: ${res.body}`)
    assert.ok(paths(res).includes('/voice'), voice)
  }
  assert.equal(upstream.requests.length, 0)
})

test('a custom voice is sent as OpenAI\'s {"id": ...} object', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { ...BASE, model: 'gpt-4o-mini-tts', voice: { id: 'voice_1234' } }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200, res.body)
  const sent = upstream.requests[0]!
  assert.deepEqual(sent.json, {
    model: 'gpt-4o-mini-tts',
    input: BASE.text,
    voice: { id: 'voice_1234' },
  })
  assert.ok(decodeDataUri(res.json().audio).bytes.equals(expectedSpeechBytes(sent.json)))
})

test('custom voices of another shape are refused naming voice', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  for (const voice of [
    {},
    { id: '' },
    { id: 7 },
    { id: 'voice_1', name: 'mine' },
    { name: 'voice_1' },
    ['alloy'],
    null,
    3,
  ]) {
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, voice } })
    assert.equal(res.statusCode, 400, `${JSON.stringify(voice)}: ${res.body}`)
    assert.ok(
      paths(res).every((p) => p.startsWith('/voice')),
      `${JSON.stringify(voice)}: ${paths(res)}`,
    )
  }
  assert.equal(upstream.requests.length, 0)
})

test('instructions go to gpt-4o-mini-tts as given', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const instructions = 'Speak in a cheerful, warm tone, a little slower than usual.'
  for (const model of ['gpt-4o-mini-tts', 'gpt-4o-mini-tts-2025-12-15']) {
    upstream.reset()
    const payload = { model, text: BASE.text, voice: 'coral', instructions, 'response-format': 'wav' }
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 200, `${model}: ${res.body}`)
    const sent = upstream.requests[0]!
    assert.deepEqual(sent.json, {
      model,
      input: BASE.text,
      voice: 'coral',
      instructions,
      response_format: 'wav',
    })
    const { mime, bytes } = decodeDataUri(res.json().audio)
    assert.equal(mime, 'audio/wav')
    assert.ok(bytes.equals(expectedSpeechBytes(sent.json)), `${model}: byte-exact`)
  }
})

test('instructions for tts-1 or tts-1-hd are a 400 naming the field, before any upstream call', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  for (const model of ['tts-1', 'tts-1-hd', 'tts-1-1106', 'ft:tts-1-hd:acme::x1']) {
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, model, instructions: 'Whisper.' } })
    assert.equal(res.statusCode, 400, `${model}: ${res.body}`)
    const { error } = res.json()
    assert.equal(error.code, 'ERR_VALIDATION')
    assert.deepEqual(paths(res), ['/instructions'], model)
    assert.match(error.details[0].message, new RegExp(`not ${model}$`))
  }
  assert.equal(upstream.requests.length, 0)
})

test('the task field is accepted when it names this task', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { task: 'TASK_TEXT_TO_SPEECH', ...BASE } })
  assert.equal(res.statusCode, 200, res.body)
  assert.equal(upstream.requests.length, 1)
})

test('refused with a 400 naming the field, before any upstream call', async (t) => {
  const { model, text, voice } = BASE
  const cases: Array<[name: string, payload: object, path: string]> = [
    ['another task id', { task: 'TASK_TEXT_TO_IMAGE', ...BASE }, '/task'],
    ['contradicting formats', { ...BASE, 'response-format': 'mp3', 'response-type': 'flac' }, '/response-type'],
    ['an unknown format', { ...BASE, 'response-format': 'ogg' }, '/response-format'],
    ['text of 4097 characters', { ...BASE, text: 'a'.repeat(4097) }, '/text'],
    ['empty text', { ...BASE, text: '' }, '/text'],
    ['speed below 0.25', { ...BASE, speed: 0.2 }, '/speed'],
    ['speed above 4', { ...BASE, speed: 4.01 }, '/speed'],
    ['no model', { text, voice }, '/model'],
    ['no text', { model, voice }, '/text'],
    ['no voice', { model, text }, '/voice'],
    [
      'instructions of 4097 characters',
      { ...BASE, model: 'gpt-4o-mini-tts', instructions: 'a'.repeat(4097) },
      '/instructions',
    ],
  ]
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, payload, path] of cases) {
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 400, `${name}: ${res.body.slice(0, 300)}`)
    assert.ok(paths(res).includes(path), `${name}: ${JSON.stringify(res.json().error.details)}`)
  }
  assert.equal(upstream.requests.length, 0)
})

test('the speed limits themselves are accepted', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  for (const speed of [0.25, 4]) {
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, speed } })
    assert.equal(res.statusCode, 200, `${speed}: ${res.body}`)
  }
  assert.deepEqual(
    upstream.requests.map((r) => r.json.speed),
    [0.25, 4],
  )
})

test('an audio answer cut off midway is a 502, not truncated audio', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  upstream.enqueue({ kind: 'truncated-stream', path: '/audio/speech', afterChunks: 1 })
  const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, text: 'x'.repeat(500) } })
  assert.equal(res.statusCode, 502, res.body.slice(0, 300))
  assert.match(res.json().error.code, /^ERR_UPSTREAM_/)
})

test('an empty audio answer is a 502', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.setHandler('/audio/speech', (_req, res) => {
    res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': '0' }).end()
  })
  const res = await app.inject({ method: 'POST', url: URL, payload: BASE })
  assert.equal(res.statusCode, 502, res.body)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
})

const NOT_AUDIO: Array<[name: string, type: string, body: string]> = [
  ['JSON', 'application/json', '{"object":"audio.speech","data":"not audio"}'],
  ['an HTML page', 'text/html; charset=utf-8', '<html><body>Gateway</body></html>'],
  ['plain text', 'text/plain', 'ok'],
]
for (const [name, type, body] of NOT_AUDIO) {
  test(`a 200 answer of ${name} instead of audio is a 502`, async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    // An OpenAI-compatible server that answers the speech call with something else.
    upstream.setHandler('/audio/speech', (_req, res) => {
      res.writeHead(200, { 'content-type': type }).end(body)
    })
    const res = await app.inject({ method: 'POST', url: URL, payload: BASE })
    assert.equal(res.statusCode, 502, res.body)
    const { error } = res.json()
    assert.equal(error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
    assert.match(error.message, new RegExp(type.split(';')[0]!.replace('/', '\\/')))
    assert.equal(upstream.requests.length, 1)
  })
}

test('a 200 answer of application/octet-stream is taken as the audio it carries', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const audio = expectedSpeechBytes({ ...BASE, input: BASE.text })
  upstream.setHandler('/audio/speech', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(audio)
  })
  const res = await app.inject({ method: 'POST', url: URL, payload: BASE })
  assert.equal(res.statusCode, 200, res.body)
  const { mime, bytes } = decodeDataUri(res.json().audio)
  assert.equal(mime, 'audio/mpeg')
  assert.ok(bytes.equals(audio))
  assert.equal(upstream.requests.length, 1)
})
