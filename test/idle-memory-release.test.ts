import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { build, buildWithUpstream, capturedLogLines } from './support/app.ts'
import { startFakeOpenAI } from './support/fake-openai/index.ts'

const IDLE_MS = 100

/** The idle releases logged since `from` (an index into the captured log lines). */
function releasesSince(from: number): Array<{ rssBeforeMb: number; rssAfterMb: number; durationMs: number }> {
  return capturedLogLines
    .slice(from)
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.msg === 'released memory while idle')
}

function generate(app: FastifyInstance) {
  return app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    payload: { model: 'gpt-4o-mini', prompt: 'hi' },
  })
}

test('memory is released once after start and once after each burst of calls, when idle', async (t) => {
  const mark = capturedLogLines.length
  const { app } = await buildWithUpstream(t, { IDLE_MEMORY_RELEASE_MS: String(IDLE_MS) })
  await sleep(IDLE_MS * 3)
  const afterStart = releasesSince(mark)
  assert.equal(afterStart.length, 1, 'one release after start-up')
  const [release] = afterStart
  assert.ok(release!.rssBeforeMb > 0 && release!.rssAfterMb > 0, 'RSS before and after are logged')
  assert.ok(release!.durationMs >= 0, 'how long the collection took is logged')

  await sleep(IDLE_MS * 3)
  assert.equal(releasesSince(mark).length, 1, 'no release while nothing happened since the last one')

  for (let i = 0; i < 3; i++) assert.equal((await generate(app)).statusCode, 200)
  await sleep(IDLE_MS * 3)
  assert.equal(releasesSince(mark).length, 2, 'one release after the burst')
})

test('no release while an OpenAI call awaits its answer', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { IDLE_MEMORY_RELEASE_MS: String(IDLE_MS) })
  await sleep(IDLE_MS * 3)
  const mark = capturedLogLines.length
  upstream.enqueue({ kind: 'slow', delayMs: IDLE_MS * 6 })
  const answered = generate(app)
  await upstream.waitForRequests(1)
  await sleep(IDLE_MS * 4)
  assert.equal(releasesSince(mark).length, 0, 'not while the call is out')
  assert.equal((await answered).statusCode, 200)
  await sleep(IDLE_MS * 3)
  assert.equal(releasesSince(mark).length, 1, 'once the answer is in and the service is idle')
})

test('no release while a stream is still being relayed', async (t) => {
  const slow = await startFakeOpenAI({ chunkDelayMs: IDLE_MS })
  t.after(() => slow.close())
  const app = await build(t, { OPENAI_BASE_URL: slow.url, IDLE_MEMORY_RELEASE_MS: String(IDLE_MS) })
  await sleep(IDLE_MS * 3)
  const mark = capturedLogLines.length
  const started = performance.now()
  const stream = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: { accept: 'text/event-stream' },
    payload: { model: 'gpt-4o-mini', prompt: 'a prompt long enough to be answered in several chunks, one by one' },
  })
  assert.match(stream.body, /event: done/)
  assert.ok(performance.now() - started > IDLE_MS * 4, 'the stream outlasted several idle checks')
  assert.equal(releasesSince(mark).length, 0, 'not while the stream was open')
})

test('IDLE_MEMORY_RELEASE_MS=0 turns the release off', async (t) => {
  const mark = capturedLogLines.length
  const { app } = await buildWithUpstream(t, { IDLE_MEMORY_RELEASE_MS: '0' })
  assert.equal((await generate(app)).statusCode, 200)
  await sleep(IDLE_MS * 3)
  assert.equal(releasesSince(mark).length, 0)
})
