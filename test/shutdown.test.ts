import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { Client } from 'undici'
import { startFakeOpenAI } from './support/fake-openai.ts'

async function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', OPENAI_API_KEY: 'sk-shutdown-test-key', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  child.stderr.on('data', (chunk: Buffer) => (log += chunk))
  const base = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      log += chunk
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log)
      if (match) resolve(match[1]!)
    })
    child.once('exit', () => reject(new Error(`server exited early:\n${log}`)))
  })
  return { child, base, log: () => log }
}

test('SIGTERM: readyz turns 503, new connections are refused, a stream in flight finishes, exit 0', async (t) => {
  const upstream = await startFakeOpenAI({ chunkDelayMs: 150 })
  t.after(() => upstream.close())
  const server = await startServer({
    OPENAI_BASE_URL: upstream.url,
    SHUTDOWN_DELAY_MS: '600',
    GRACE_PERIOD_MS: '10000',
  })
  t.after(() => server.child.kill('SIGKILL'))

  const streamClient = new Client(server.base)
  t.after(() => streamClient.destroy())
  const stream = await streamClient.request({
    method: 'POST',
    path: '/v1/tasks/text-generation',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'a long enough prompt to stream in several chunks', n: 2 }),
  })
  assert.equal(stream.statusCode, 200)
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
  await assert.rejects(fetch(`${server.base}/healthz`), 'new connections are refused once the listener closed')

  await streamDone
  const body = chunks.join('')
  assert.match(body, /event: output/)
  assert.match(body, /event: done\n/)
  const [code] = await exited
  assert.equal(code, 0)
  assert.ok(!server.log().includes('sk-shutdown-test-key'), 'the real process never logs its key')
  assert.ok(!server.log().includes('Bearer sk-'), 'nor an Authorization header')
})
