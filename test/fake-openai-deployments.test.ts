// The stand-in as the deployment tests use it: several at once, counted, stopped and restarted.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startFakeOpenAI } from './support/fake-openai/index.ts'
import type { FakeOpenAI } from './support/fake-openai/index.ts'

const BEARER = { authorization: 'Bearer sk-test-123' }

const chatBody = (model = 'gpt-4o-mini'): object => ({ model, messages: [{ role: 'user', content: 'hello there' }] })

function post(url: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

/** The statuses of `n` chat calls, one after another. */
async function statuses(fake: FakeOpenAI, n: number, path = '/chat/completions', body: unknown = chatBody()) {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const res = await post(fake.url + path, body, BEARER)
    await res.arrayBuffer()
    out.push(res.status)
  }
  return out
}

describe('several stand-ins', () => {
  test('each records and counts its own requests; record: false still counts', async () => {
    const a = await startFakeOpenAI()
    const b = await startFakeOpenAI({ record: false })
    const c = await startFakeOpenAI()
    try {
      assert.equal(new Set([a.port, b.port, c.port]).size, 3)
      await statuses(a, 3)
      await statuses(b, 5)
      await statuses(b, 2, '/embeddings', { model: 'm', input: 'x' })
      await statuses(c, 2)
      assert.deepEqual([a.requests.length, b.requests.length, c.requests.length], [3, 0, 2])
      assert.deepEqual([a.count(), b.count(), c.count()], [3, 7, 2])
      assert.equal(b.count('/chat/completions'), 5)
      assert.equal(b.count('/v1/embeddings'), 2)
      assert.equal(c.count('/chat/completions'), 2)
      assert.equal(a.count('/embeddings'), 0)
      b.reset()
      assert.equal(b.count(), 0)
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
    }
  })

  test('stop(): connecting refused, open calls cut; restart(): the same port, what was recorded kept', async () => {
    const fake = await startFakeOpenAI()
    try {
      fake.enqueue({ kind: 'hang' })
      const hung = post(`${fake.url}/chat/completions`, chatBody(), BEARER).catch((e: unknown) => e)
      await fake.waitForRequests(1)
      await fake.stop()
      assert.ok((await hung) instanceof Error, 'the open call is cut')
      assert.equal(fake.requests[0]!.aborted, false, 'stopping is not a client abort')
      const refused = await post(`${fake.url}/chat/completions`, chatBody(), BEARER).catch((e: unknown) => e)
      assert.ok(refused instanceof Error)
      assert.equal((refused.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED')
      await fake.stop() // a second stop is no error

      await fake.restart()
      assert.deepEqual(await statuses(fake, 2), [200, 200])
      assert.equal(fake.count(), 3)
      assert.equal(fake.url, `http://127.0.0.1:${fake.port}/v1`)
      await fake.restart() // restarting a running stand-in changes nothing
      assert.deepEqual(await statuses(fake, 1), [200])
    } finally {
      await fake.close()
    }
    await assert.rejects(fake.restart(), /after close/)
  })
})
