import assert from 'node:assert/strict'
import { test } from 'node:test'
import { capturedLogLines, serveWithUpstream, TEST_API_KEY } from './support/app.ts'
import { openAIError } from './support/fake-openai/index.ts'
import { wavHeader } from './support/wav.ts'

/**
 * Every route at LOG_LEVEL=trace, with every credential a request can carry: not one log line,
 * whatever its level or whoever wrote it (Fastify, its plugins, the service), holds one of them.
 */

const SERVICE_TOKEN = 'svc-token-log-probe-7f3a9c'
const CALLER_KEY = 'sk-caller-log-probe-0123456789'
const ORGANIZATION = 'org-log-probe-4d2b8e'
const METRICS_TOKEN = 'metrics-log-probe-91c5d0'
const SECRETS = { SERVICE_TOKEN, CALLER_KEY, ORGANIZATION, METRICS_TOKEN, TEST_API_KEY }

const ENV = {
  LOG_LEVEL: 'trace',
  SERVICE_TOKENS: SERVICE_TOKEN,
  ALLOW_CALLER_API_KEYS: 'true',
  METRICS_TOKEN,
  // One retry: its warning is a line too.
  UPSTREAM_MAX_RETRIES: '1',
}

const CREDENTIALS = {
  authorization: `Bearer ${SERVICE_TOKEN}`,
  'x-openai-api-key': CALLER_KEY,
  'openai-organization': ORGANIZATION,
}
const JSON_BODY = { ...CREDENTIALS, 'content-type': 'application/json' }

function wav(samples = 4000): Buffer {
  return Buffer.concat([wavHeader(samples * 2, 8000), Buffer.alloc(samples * 2, 1)])
}
const AUDIO = `data:audio/wav;base64,${wav().toString('base64')}`

const INPUTS: Record<string, object> = {
  'text-generation': { model: 'gpt-4o-mini', prompt: 'hi' },
  'text-embeddings': { model: 'text-embedding-3-small', text: 'one' },
  'speech-recognition': { model: 'gpt-4o-mini-transcribe', audio: AUDIO },
  'text-to-speech': { model: 'tts-1', text: 'Hello', voice: 'alloy' },
  'text-to-image': { model: 'dall-e-3', prompt: 'A wombat' },
}
const STREAMS: Record<string, string> = {
  'text-generation': 'text/event-stream',
  'speech-recognition': 'text/event-stream',
  'text-to-speech': 'audio/mpeg',
  'text-to-image': 'image/png',
}

function audioForm(): FormData {
  const form = new FormData()
  form.append('model', 'gpt-4o-mini-transcribe')
  form.append('audio', new Blob([wav()], { type: 'audio/wav' }), 'talk.wav')
  form.append('temperature', '0.2')
  return form
}

/** One request; the body read whole, so that every line of its exchange is written. */
async function call(base: string, path: string, init: RequestInit, status: number): Promise<void> {
  const res = await fetch(base + path, init)
  const body = await res.text()
  assert.equal(res.status, status, `${init.method ?? 'GET'} ${path}: ${body.slice(0, 300)}`)
}

const post = (body: unknown, headers: Record<string, string> = JSON_BODY): RequestInit => ({
  method: 'POST',
  headers,
  body: JSON.stringify(body),
})

function leaksIn(lines: string[]): string[] {
  return lines.flatMap((line) =>
    Object.entries(SECRETS)
      .filter(([, secret]) => line.includes(secret))
      .map(([name]) => `${name} in ${line.slice(0, 400)}`),
  )
}

test('at trace, no log line of any route holds a token, a key or the organization', async (t) => {
  const mark = capturedLogLines.length
  const { app, upstream, base } = await serveWithUpstream(t, ENV)

  // Operations and the catalogue.
  await call(base, '/healthz', {}, 200)
  await call(base, '/readyz', { headers: CREDENTIALS }, 200)
  await call(base, '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }, 200)
  await call(base, '/metrics', { headers: CREDENTIALS }, 401)
  await call(base, '/v1/tasks', { headers: CREDENTIALS }, 200)
  await call(base, '/openapi.json', { headers: CREDENTIALS }, 200)
  await call(base, '/docs/', { headers: CREDENTIALS }, 200)

  for (const [task, input] of Object.entries(INPUTS)) {
    await call(base, `/v1/tasks/${task}`, post(input), 200)
    await call(base, `/v1/tasks/${task}/batch`, post({ inputs: [input, { model: 'x' }] }), 200)
    const stream = STREAMS[task]
    if (stream) await call(base, `/v1/tasks/${task}`, post(input, { ...JSON_BODY, accept: stream }), 200)
  }
  const form = { method: 'POST', headers: CREDENTIALS }
  await call(base, '/v1/tasks/speech-recognition', { ...form, body: audioForm() }, 200)
  await call(
    base,
    '/v1/tasks/speech-recognition',
    { ...form, headers: { ...CREDENTIALS, accept: 'text/event-stream' }, body: audioForm() },
    200,
  )

  // Refusals: no token, a wrong one, bad bodies, a wrong route or method.
  const { authorization: _, ...withoutToken } = JSON_BODY
  await call(base, '/v1/tasks/text-generation', post(INPUTS['text-generation'], withoutToken), 401)
  const wrongToken = { ...JSON_BODY, authorization: 'Bearer svc-token-not-this-one' }
  await call(base, '/v1/tasks/text-generation', post(INPUTS['text-generation'], wrongToken), 401)
  await call(base, '/v1/tasks/text-generation', { ...post({}), body: '{"model":' }, 400)
  await call(base, '/v1/tasks/text-generation', post({ model: 'gpt-4o-mini' }), 400)
  await call(
    base,
    '/v1/tasks/text-generation',
    { ...post({}), headers: { ...CREDENTIALS, 'content-type': 'text/csv' }, body: 'a' },
    415,
  )
  const gzipped = { ...post(INPUTS['text-embeddings']), headers: { ...JSON_BODY, 'content-encoding': 'gzip' } }
  await call(base, '/v1/tasks/text-embeddings', gzipped, 415)
  await call(base, '/v1/tasks/no-such-task', post({}), 404)
  await call(base, '/v1/tasks/text-generation', { headers: CREDENTIALS }, 405)
  await call(
    base,
    '/v1/tasks/speech-recognition',
    { ...form, headers: { ...CREDENTIALS, 'content-type': 'multipart/form-data; boundary=x' }, body: '--x\r\nbroken' },
    400,
  )

  // OpenAI refusing and failing, plain and mid-stream.
  upstream.enqueue({ status: 401, body: openAIError(401, 'Incorrect API key provided') })
  await call(base, '/v1/tasks/text-generation', post(INPUTS['text-generation']), 401)
  upstream.enqueue({ status: 429, headers: { 'retry-after': '0' }, times: 2 })
  // no-cache: embedded above, it would be answered from the cache without asking OpenAI.
  await call(
    base,
    '/v1/tasks/text-embeddings',
    post(INPUTS['text-embeddings'], { ...JSON_BODY, 'cache-control': 'no-cache' }),
    429,
  )
  upstream.enqueue({ status: 500, times: 2 })
  await call(base, '/v1/tasks/text-to-image', post(INPUTS['text-to-image']), 502)
  upstream.enqueue({ kind: 'reset', times: 2 })
  await call(base, '/v1/tasks/text-to-speech', post(INPUTS['text-to-speech']), 502)
  upstream.enqueue({ kind: 'truncated-stream', afterChunks: 2 })
  await call(
    base,
    '/v1/tasks/text-generation',
    post(INPUTS['text-generation'], { ...JSON_BODY, accept: 'text/event-stream' }),
    200,
  )
  upstream.enqueue({ status: 500, times: 2 })
  await call(base, '/v1/tasks/speech-recognition', { ...form, body: audioForm() }, 502)

  // The caller's credentials did reach OpenAI: they were there to leak.
  assert.ok(upstream.requests.length > 10)
  for (const sent of upstream.requests) {
    assert.equal(sent.headers.authorization, `Bearer ${CALLER_KEY}`)
    assert.equal(sent.headers['openai-organization'], ORGANIZATION)
  }

  // The service's own rate limit, on an app of its own.
  const limited = await serveWithUpstream(t, { ...ENV, RATE_LIMIT_MAX: '1' })
  await call(limited.base, '/v1/tasks/text-generation', post(INPUTS['text-generation']), 200)
  await call(limited.base, '/v1/tasks/text-generation', post(INPUTS['text-generation']), 429)

  // Closed first, so that every request's last line is in.
  await Promise.all([app.close(), limited.app.close(), upstream.close(), limited.upstream.close()])
  const lines = capturedLogLines.slice(mark)
  const levels = new Set(lines.map((line) => (JSON.parse(line) as { level: number }).level))
  assert.ok(levels.has(10) && levels.has(20), 'trace and debug lines were written')
  assert.ok(
    lines.some((line) => line.includes('Providing options to busboy')),
    "@fastify/multipart's trace line, the one that carries the request headers, was written",
  )
  assert.deepEqual(leaksIn(lines), [])
})
