import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { Pool } from 'undici'
import { defaultMaxConcurrentUpstream, BASELINE_BYTES, BYTES_PER_OPEN_CALL } from '../src/upstream/capacity.ts'
import { serveWithUpstream } from './support/app.ts'
import { startFakeOpenAI } from './support/fake-openai/index.ts'

const GiB = 1024 ** 3
const CHAT_COMPLETION = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [
    { index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, finish_reason: 'stop', logprobs: null },
  ],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
})

/** The value of an unlabelled sample in the exposition text. */
async function gauge(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return Number(line?.split(' ')[1])
}

test('open streams count against MAX_CONCURRENT_UPSTREAM and in the in-flight metric until they end', async (t) => {
  const slow = await startFakeOpenAI({ chunkDelayMs: 300 })
  t.after(() => slow.close())
  const { base } = await serveWithUpstream(t, { OPENAI_BASE_URL: slow.url, MAX_CONCURRENT_UPSTREAM: '2' })
  const client = new Pool(base, { connections: 4 })
  t.after(() => client.close())

  const openStream = async () => {
    const res = await client.request({
      method: 'POST',
      path: '/v1/tasks/text-generation',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'a prompt long enough to be answered in several chunks' }),
    })
    assert.equal(res.statusCode, 200)
    return res.body.text()
  }
  const streams = [openStream(), openStream()]
  await slow.waitForRequests(2, 5000)
  await slow.waitFor(() => slow.requests.every((r) => r.responseStatus === 200), 5000)

  assert.equal(await gauge(base, 'openai_tasks_upstream_requests_in_flight'), 2, 'both streams are open calls')
  const third = await fetch(`${base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hi' }),
  })
  assert.equal(third.status, 503, 'the cap counts the streams still being relayed')
  assert.equal(((await third.json()) as { error: { code: string } }).error.code, 'ERR_OVERLOADED')
  assert.equal(third.headers.get('retry-after'), '1')

  for (const body of await Promise.all(streams)) assert.match(body, /event: done/)
  await slow.waitFor(() => true, 10)
  assert.equal(await gauge(base, 'openai_tasks_upstream_requests_in_flight'), 0, 'ended streams are released')
  const after = await fetch(`${base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hi' }),
  })
  assert.equal(after.status, 200)
})

test('a caller that hangs up mid-stream releases its place', async (t) => {
  const slow = await startFakeOpenAI({ chunkDelayMs: 300 })
  t.after(() => slow.close())
  const { base } = await serveWithUpstream(t, { OPENAI_BASE_URL: slow.url, MAX_CONCURRENT_UPSTREAM: '1' })
  const controller = new AbortController()
  const res = await fetch(`${base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'a prompt long enough to be answered in several chunks' }),
    signal: controller.signal,
  })
  assert.equal(res.status, 200)
  assert.equal(await gauge(base, 'openai_tasks_upstream_requests_in_flight'), 1)
  controller.abort()
  await slow.waitFor(() => slow.requests[0]?.aborted === true, 5000).catch(() => undefined)
  let open = 1
  for (let i = 0; i < 50 && open !== 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    open = await gauge(base, 'openai_tasks_upstream_requests_in_flight')
  }
  assert.equal(open, 0)
})

test('the default cap follows the memory and open-files limits', () => {
  const fromMemory = (bytes: number) => Math.floor((bytes * 0.75 - BASELINE_BYTES) / BYTES_PER_OPEN_CALL)
  assert.equal(defaultMaxConcurrentUpstream({ memoryBytes: 1 * GiB, openFiles: undefined }), fromMemory(GiB))
  assert.equal(defaultMaxConcurrentUpstream({ memoryBytes: 64 * GiB, openFiles: 20_000 }), (20_000 - 256) / 2)
  assert.equal(defaultMaxConcurrentUpstream({ memoryBytes: 128 * 1024 ** 2, openFiles: 1024 }), 64, 'never below 64')
  assert.ok(
    defaultMaxConcurrentUpstream({ memoryBytes: 1 * GiB, openFiles: 1_048_576 }) >= 2000,
    'a 1 GiB pod holds 2,000 calls',
  )
})

test('over HTTP/1.1 every concurrent call gets its own connection: no pool ceiling by default', async (t) => {
  const calls = 300
  let open = 0
  let mostOpen = 0
  const waiting: Array<() => void> = []
  let released = false
  const release = () => {
    released = true
    for (const answer of waiting.splice(0)) answer()
  }
  // Answers nobody until every call has arrived (or 10 s pass): a pool ceiling would stall it.
  const barrier = createServer((req, res) => {
    open++
    mostOpen = Math.max(mostOpen, open)
    req.resume()
    waiting.push(() => {
      open--
      res.writeHead(200, { 'content-type': 'application/json' }).end(CHAT_COMPLETION)
    })
    if (released || waiting.length === calls) release()
  })
  barrier.listen(0, '127.0.0.1')
  await once(barrier, 'listening')
  const timer = setTimeout(release, 10_000)
  t.after(() => {
    clearTimeout(timer)
    barrier.closeAllConnections()
    barrier.close()
  })
  const { port } = barrier.address() as AddressInfo
  const { base } = await serveWithUpstream(t, { OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` })
  const client = new Pool(base, { connections: calls })
  t.after(() => client.close())
  const statuses = await Promise.all(
    Array.from({ length: calls }, async () => {
      const res = await client.request({
        method: 'POST',
        path: '/v1/tasks/text-generation',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hi' }),
      })
      await res.body.dump()
      return res.statusCode
    }),
  )
  assert.deepEqual(new Set(statuses), new Set([200]))
  assert.equal(mostOpen, calls, 'every call reached the upstream at once')
})
