import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildWithUpstream, build } from './support/app.ts'
import { openAIError } from './support/fake-openai/index.ts'

const NO_RETRIES = { UPSTREAM_MAX_RETRIES: '0' }
const CHAT = { model: 'gpt-4o-mini', prompt: 'Say hi' }

async function chat(app: Awaited<ReturnType<typeof build>>) {
  return app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
}

const STATUS_MAPPING = [
  { upstream: 400, status: 400, code: 'ERR_UPSTREAM_BAD_REQUEST' },
  { upstream: 401, status: 401, code: 'ERR_UPSTREAM_UNAUTHORIZED' },
  { upstream: 403, status: 403, code: 'ERR_UPSTREAM_FORBIDDEN' },
  { upstream: 404, status: 404, code: 'ERR_UPSTREAM_NOT_FOUND' },
  { upstream: 422, status: 400, code: 'ERR_UPSTREAM_BAD_REQUEST' },
  { upstream: 500, status: 502, code: 'ERR_UPSTREAM_SERVER_ERROR' },
  { upstream: 503, status: 502, code: 'ERR_UPSTREAM_SERVER_ERROR' },
]

for (const { upstream: upstreamStatus, status, code } of STATUS_MAPPING) {
  test(`upstream ${upstreamStatus} becomes ${status} ${code} with OpenAI's message`, async (t) => {
    const { app, upstream } = await buildWithUpstream(t, NO_RETRIES)
    const message = `upstream says no (${upstreamStatus})`
    upstream.enqueue({ status: upstreamStatus, body: openAIError(upstreamStatus, message, undefined, 'some_code') })
    const res = await chat(app)
    assert.equal(res.statusCode, status)
    const { error } = res.json()
    assert.equal(error.code, code)
    assert.match(error.message, new RegExp(message.replace(/[()]/g, '\\$&')))
    assert.equal(error['request-id'], res.headers['x-request-id'])
    assert.equal(error.details[0]['upstream-status'], upstreamStatus)
    assert.equal(error.details[0]['upstream-code'], 'some_code')
    assert.equal(upstream.requests.length, 1)
  })
}

test('upstream 429 becomes 429 with Retry-After passed on', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, NO_RETRIES)
  upstream.enqueue({ status: 429, headers: { 'retry-after': '7' }, body: openAIError(429, 'Rate limit reached') })
  const res = await chat(app)
  assert.equal(res.statusCode, 429)
  assert.equal(res.headers['retry-after'], '7')
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_RATE_LIMITED')
})

test('retry-after-ms is rounded up to whole seconds', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, NO_RETRIES)
  upstream.enqueue({ status: 429, headers: { 'retry-after-ms': '1500' }, body: openAIError(429, 'slow down') })
  const res = await chat(app)
  assert.equal(res.statusCode, 429)
  assert.equal(res.headers['retry-after'], '2')
})

test('retry-after-ms: 1 gives the caller Retry-After: 1, whole seconds as HTTP has them', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, NO_RETRIES)
  upstream.enqueue({ status: 429, headers: { 'retry-after-ms': '1' }, body: openAIError(429, 'slow down') })
  const res = await chat(app)
  assert.equal(res.statusCode, 429)
  assert.equal(res.headers['retry-after'], '1')
})

test('a non-JSON error body from the upstream still gives a readable message', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, NO_RETRIES)
  upstream.enqueue({ status: 502, body: '<html>Bad gateway</html>', headers: { 'content-type': 'text/html' } })
  const res = await chat(app)
  assert.equal(res.statusCode, 502)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_SERVER_ERROR')
  assert.match(res.json().error.message, /Bad gateway/)
})

test('malformed upstream JSON becomes 502 ERR_UPSTREAM_BAD_RESPONSE', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({ kind: 'malformed-json' })
  const res = await chat(app)
  assert.equal(res.statusCode, 502)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
})

test('a reset connection becomes 502 ERR_UPSTREAM_UNREACHABLE', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, NO_RETRIES)
  upstream.enqueue({ kind: 'reset' })
  const res = await chat(app)
  assert.equal(res.statusCode, 502)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_UNREACHABLE')
})

test('a refused connection becomes 502 ERR_UPSTREAM_UNREACHABLE', async (t) => {
  const { upstream } = await buildWithUpstream(t)
  const closedUrl = upstream.url
  await upstream.close()
  const app = await build(t, { OPENAI_BASE_URL: closedUrl, ...NO_RETRIES })
  const res = await chat(app)
  assert.equal(res.statusCode, 502)
  const { error } = res.json()
  assert.equal(error.code, 'ERR_UPSTREAM_UNREACHABLE')
  assert.equal(error.details[0]['transport-code'], 'ECONNREFUSED')
})

test('an upstream that never answers becomes 504 after the headers timeout', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_HEADERS_TIMEOUT_MS: '300' })
  upstream.enqueue({ kind: 'hang' })
  const res = await chat(app)
  assert.equal(res.statusCode, 504)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_TIMEOUT')
})

test('an upstream body that stalls becomes 504 after the body timeout', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_BODY_TIMEOUT_MS: '300' })
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/speech', afterChunks: 1, stall: true })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-to-speech',
    payload: { model: 'tts-1', text: 'hello', voice: 'alloy' },
  })
  assert.equal(res.statusCode, 504)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_TIMEOUT')
})

test('an audio body cut short becomes 502, and the service keeps serving', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, NO_RETRIES)
  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/audio/speech', afterChunks: 1 })
  const payload = { model: 'tts-1', text: 'hello', voice: 'alloy' }
  const cut = await app.inject({ method: 'POST', url: '/v1/tasks/text-to-speech', payload })
  assert.equal(cut.statusCode, 502)
  assert.equal(cut.json().error.code, 'ERR_UPSTREAM_UNREACHABLE')
  const next = await app.inject({ method: 'POST', url: '/v1/tasks/text-to-speech', payload })
  assert.equal(next.statusCode, 200)
})
