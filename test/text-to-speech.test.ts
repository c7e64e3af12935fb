import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildWithUpstream } from './support/app.ts'
import { SPEECH_FORMATS } from './support/speech-formats.ts'
import { expectedSpeechBytes } from './support/fake-openai.ts'

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

test('sends the speech request and answers with the exact mp3 bytes as a data URI', async (t) => {
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
    response_format: 'mp3',
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
    response_format: 'mp3',
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

test('voices: any lowercase name is passed through, others are refused', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  for (const voice of ['echo', 'coral', 'marin', 'my_voice-2', 'v'.repeat(64)]) {
    upstream.reset()
    const res = await app.inject({ method: 'POST', url: URL, payload: { ...BASE, voice } })
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
  assert.deepEqual(upstream.requests.map((r) => r.json.speed), [0.25, 4])
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
