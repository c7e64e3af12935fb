import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { Client } from 'undici'
import { startFakeOpenAI } from './support/fake-openai/index.ts'
import { startServerProcess } from './support/server-process.ts'

const KEY = { OPENAI_API_KEY: 'sk-shutdown-test-key' }

/** A request on a connection of its own (fetch would reuse one kept alive). */
async function newConnection(base: string): Promise<void> {
  const client = new Client(base)
  try {
    await (await client.request({ method: 'GET', path: '/healthz' })).body.text()
  } finally {
    await client.destroy()
  }
}

const GENERATE = {
  method: 'POST' as const,
  path: '/v1/tasks/text-generation',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hello' }),
}
const STREAM = {
  ...GENERATE,
  headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
  body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'a prompt long enough to stream in a few chunks' }),
}

test('SIGTERM: readyz turns 503, new connections are refused, a stream in flight finishes, its client is answered again, exit 0', async (t) => {
  const upstream = await startFakeOpenAI({ chunkDelayMs: 150 })
  t.after(() => upstream.close())
  const server = await startServerProcess(t, {
    ...KEY,
    OPENAI_BASE_URL: upstream.url,
    SHUTDOWN_DELAY_MS: '600',
    GRACE_PERIOD_MS: '10000',
  })

  const streamClient = new Client(server.base)
  t.after(() => streamClient.destroy())
  const stream = await streamClient.request({
    ...STREAM,
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'a long enough prompt to stream in several chunks', n: 2 }),
  })
  assert.equal(stream.statusCode, 200)
  assert.equal(stream.headers.connection, 'keep-alive')
  const chunks: string[] = []
  const streamDone = (async () => {
    for await (const chunk of stream.body) chunks.push(chunk.toString())
  })()
  await upstream.waitFor(() => chunks.join('').includes('event: delta'), 5000)

  server.child.kill('SIGTERM')
  const exited = once(server.child, 'exit')
  // During the shutdown delay the listener is still open: readiness says 503, liveness 200.
  await new Promise((resolve) => setTimeout(resolve, 150))
  const ready = await fetch(`${server.base}/readyz`)
  assert.equal(ready.status, 503)
  assert.deepEqual(await ready.json(), { status: 'draining' })
  assert.equal((await fetch(`${server.base}/healthz`)).status, 200)

  await upstream.waitFor(() => /"msg":"closing"/.test(server.log()), 5000)
  await new Promise((resolve) => setTimeout(resolve, 700))
  await assert.rejects(newConnection(server.base), 'new connections are refused once the listener closed')

  await streamDone
  const body = chunks.join('')
  assert.match(body, /event: output/)
  assert.match(body, /event: done\n/)
  // The stream said keep-alive before the drain began; the request its client sends at once on
  // that connection, after the listener closed, is answered rather than cut off.
  const next = await streamClient.request(GENERATE)
  assert.equal(next.statusCode, 200)
  assert.equal(next.headers.connection, 'close')
  await next.body.json()
  const [code] = await exited
  assert.equal(code, 0)
  assert.ok(!server.log().includes('sk-shutdown-test-key'), 'the real process never logs its key')
  assert.ok(!server.log().includes('Bearer sk-'), 'nor an Authorization header')
})

test('SIGTERM: keep-alive until the listener closes, then every answer says Connection: close and none is cut off', async (t) => {
  const upstream = await startFakeOpenAI()
  t.after(() => upstream.close())
  const server = await startServerProcess(t, {
    ...KEY,
    OPENAI_BASE_URL: upstream.url,
    SHUTDOWN_DELAY_MS: '1000',
    GRACE_PERIOD_MS: '10000',
  })
  const busy = new Client(server.base)
  const idle = new Client(server.base)
  const during = new Client(server.base)
  t.after(() => Promise.all([busy.destroy(), idle.destroy(), during.destroy()]))
  for (const client of [busy, idle, during]) {
    const res = await client.request({ method: 'GET', path: '/healthz' })
    await res.body.text()
    assert.equal(res.headers.connection, 'keep-alive')
  }

  upstream.enqueue({ kind: 'slow', delayMs: 2000 })
  const inFlight = busy.request(GENERATE)
  await upstream.waitForRequests(1)
  const exited = once(server.child, 'exit')
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  await upstream.waitFor(() => /"msg":"closing"/.test(server.log()), 5000)

  // During SHUTDOWN_DELAY_MS: served as usual, the connection kept (a client told to close would
  // reconnect at once, into a listener about to close).
  const early = await during.request(GENERATE)
  assert.equal(early.statusCode, 200)
  assert.equal(early.headers.connection, 'keep-alive')
  await early.body.json()

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, signalled + 1300 - Date.now())))
  await assert.rejects(newConnection(server.base), 'new connections are refused once the listener closed')
  // A connection idle since before the listener closed is not closed under the request its client sends.
  const late = await idle.request(GENERATE)
  assert.equal(late.statusCode, 200)
  assert.equal(late.headers.connection, 'close')
  await late.body.json()
  // The request in flight when the listener closed is answered, and ends its connection.
  const answer = await inFlight
  assert.equal(answer.statusCode, 200)
  assert.equal(answer.headers.connection, 'close')
  await answer.body.json()

  const [code] = await exited
  assert.equal(code, 0)
})

test(
  'SIGTERM under load on keep-alive connections: no request that was sent is reset or cut short',
  { timeout: 60_000 },
  async (t) => {
    const upstream = await startFakeOpenAI({ chunkDelayMs: 10, record: false })
    t.after(() => upstream.close())
    const server = await startServerProcess(t, {
      ...KEY,
      OPENAI_BASE_URL: upstream.url,
      SHUTDOWN_DELAY_MS: '500',
      GRACE_PERIOD_MS: '10000',
    })

    const counts = { answered: 0, toldToClose: 0, refused: 0, lost: [] as string[] }
    let signalled = false
    const deadline = Date.now() + 30_000
    // One keep-alive connection per client, which sends its next request once the last is answered,
    // until it cannot connect any more.
    async function keepSending(client: Client): Promise<void> {
      for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
        try {
          const res = await client.request(STREAM)
          const body = await res.body.text()
          assert.equal(res.statusCode, 200)
          assert.match(body, /event: done\n/)
          counts.answered++
          if (signalled && res.headers.connection === 'close') counts.toldToClose++
        } catch (err) {
          // Refused: the listener is gone and the client can go elsewhere; anything else lost a request.
          if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') counts.refused++
          else counts.lost.push(`${(err as Error).name}: ${(err as Error).message}`)
          return
        }
      }
    }
    const clients = Array.from({ length: 200 }, () => new Client(server.base))
    t.after(() => Promise.all(clients.map((client) => client.destroy())))
    const sending = Promise.all(clients.map(keepSending))
    await upstream.waitFor(() => counts.answered >= 400, 15_000)

    const exited = once(server.child, 'exit')
    signalled = true
    server.child.kill('SIGTERM')
    await sending
    const [code] = await exited
    t.diagnostic(JSON.stringify({ ...counts, lost: counts.lost.length, reasons: [...new Set(counts.lost)] }))
    assert.deepEqual(counts.lost, [], 'no request already sent is reset or cut short')
    assert.ok(counts.toldToClose >= 200, 'every client was told to close its connection')
    assert.equal(counts.refused, 200, 'every client sent until the listener closed')
    assert.equal(code, 0)
  },
)
