import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildWithUpstream, capturedLogLines } from './support/app.ts'
import { openAIError } from './support/fake-openai/index.ts'

const CHAT = { model: 'gpt-4o-mini', prompt: 'Say hi' }

function retryLogs(requestId: string): Array<Record<string, unknown>> {
  return capturedLogLines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry.msg === 'retrying OpenAI request' && entry.reqId === requestId)
}

for (const status of [429, 500, 502, 503]) {
  test(`a ${status} is retried and the caller gets the later success`, async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    upstream.enqueue({ status, body: openAIError(status, 'try again') })
    const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
    assert.equal(res.statusCode, 200)
    assert.equal(upstream.requests.length, 2)
    const logs = retryLogs(String(res.headers['x-request-id']))
    assert.equal(logs.length, 1)
    assert.equal(logs[0]!.status, status)
    assert.equal(logs[0]!.attempt, 1)
  })
}

test('a reset connection is retried', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({ kind: 'reset' })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
  assert.equal(res.statusCode, 200)
  assert.equal(upstream.requests.length, 2)
})

test('retries stop after UPSTREAM_MAX_RETRIES and the last error is mapped', async (t) => {
  // Each retry's own line: with a summary interval the second would only be counted.
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_MAX_RETRIES: '2', LOG_SUMMARY_INTERVAL_MS: '0' })
  upstream.enqueue({ status: 500, times: 5 })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
  assert.equal(res.statusCode, 502)
  assert.equal(upstream.requests.length, 3)
  assert.equal(retryLogs(String(res.headers['x-request-id'])).length, 2)
})

for (const status of [400, 401, 403, 404]) {
  test(`a ${status} is never retried`, async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    upstream.enqueue({ status, times: 3 })
    const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
    assert.equal(res.statusCode, status)
    assert.equal(upstream.requests.length, 1)
  })
}

test("the upstream's retry-after-ms sets the wait", async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({ status: 429, headers: { 'retry-after-ms': '120' } })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
  assert.equal(res.statusCode, 200)
  const [log] = retryLogs(String(res.headers['x-request-id']))
  // What is left of the 120 ms when the wait starts: not rounded up to the seconds of Retry-After.
  const waited = log!.delayMs as number
  assert.ok(waited > 100 && waited <= 120, `waited ${waited} ms`)
  const [first, second] = upstream.requests
  assert.ok(second!.receivedAt - first!.receivedAt >= 100)
})

test('retry-after-ms: 1 waits a millisecond, not the second Retry-After would round it to', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({ status: 429, headers: { 'retry-after-ms': '1' } })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
  assert.equal(res.statusCode, 200)
  const [log] = retryLogs(String(res.headers['x-request-id']))
  assert.equal(log!.delayMs, 1)
  const [first, second] = upstream.requests
  assert.ok(second!.receivedAt - first!.receivedAt < 1000, 'retried before a whole second went by')
})

test('a Retry-After beyond the cap is passed to the caller instead of waited for', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_RETRY_MAX_DELAY_MS: '2000' })
  upstream.enqueue({ status: 429, headers: { 'retry-after': '30' }, times: 3 })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
  assert.equal(res.statusCode, 429)
  assert.equal(res.headers['retry-after'], '30')
  assert.equal(upstream.requests.length, 1)
})

test('x-should-retry: false from OpenAI is obeyed', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({
    status: 429,
    headers: { 'x-should-retry': 'false' },
    body: openAIError(429, 'quota', 'insufficient_quota', 'insufficient_quota'),
  })
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: CHAT })
  assert.equal(res.statusCode, 429)
  assert.equal(upstream.requests.length, 1)
})
