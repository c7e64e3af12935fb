// The embeddings cache in a real redis-server (REDIS_URL): shared by service processes, and a
// Redis that stops answering costs a call at most the command timeout, with one warning per outage.
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { capturedLogLines, serveWithUpstream, TEST_API_KEY } from './support/app.ts'
import { startFakeOpenAI, type FakeOpenAI } from './support/fake-openai/index.ts'
import { needs } from './support/needs.ts'
import { redisServerAvailable, startRedis, type RedisServer } from './support/redis-server.ts'
import { startServerProcess } from './support/server-process.ts'
import { within } from './support/within.ts'

const skip = needs('redis-server', redisServerAvailable(), 'apt-get install redis-server')
const SINGLE = '/v1/tasks/text-embeddings'
const BATCH = '/v1/tasks/text-embeddings/batch'
const SMALL = 'text-embedding-3-small'
const TIMEOUT_MS = 100

interface Answer {
  status: number
  cacheStatus: string | null
  body: any
}

async function post(base: string, path: string, body: unknown): Promise<Answer> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, cacheStatus: res.headers.get('cache-status'), body: await res.json() }
}

async function redisAndUpstream(t: TestContext): Promise<{ redis: RedisServer; upstream: FakeOpenAI }> {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const upstream = await startFakeOpenAI()
  t.after(async () => {
    await upstream.close()
    assert.deepEqual(upstream.violations, [])
  })
  return { redis, upstream }
}

test('two service processes on one Redis share hits, single and batch', { skip }, async (t) => {
  const { redis, upstream } = await redisAndUpstream(t)
  // Load shedding off: two processes starting on a busy machine is not what this is about.
  const env = {
    OPENAI_BASE_URL: upstream.url,
    OPENAI_API_KEY: TEST_API_KEY,
    REDIS_URL: redis.url,
    MAX_EVENT_LOOP_DELAY_MS: '0',
  }
  const [a, b] = await Promise.all([startServerProcess(t, env), startServerProcess(t, env)])

  const input = { model: SMALL, text: 'embedded by one replica', dimensions: 64 }
  const first = await post(a.base, SINGLE, input)
  assert.equal(first.cacheStatus, 'openai-tasks; fwd=miss; stored')
  const second = await post(b.base, SINGLE, input)
  assert.match(second.cacheStatus!, /^openai-tasks; hit; ttl=\d+$/)
  assert.deepEqual(second.body, first.body)
  assert.equal(upstream.requests.length, 1, 'the other replica answered from Redis')

  const inputs = Array.from({ length: 10 }, (_, i) => ({ model: SMALL, text: `row ${i}`, dimensions: 64 }))
  await post(a.base, BATCH, { inputs: [inputs[0], inputs[4], inputs[5], inputs[9]] })
  const partial = await post(b.base, BATCH, { inputs })
  assert.equal(partial.cacheStatus, 'openai-tasks; fwd=partial; stored; detail="4 of 10 items"')
  assert.equal(upstream.requests.length, 3)
  assert.deepEqual(
    upstream.requests[2]!.json.input,
    [1, 2, 3, 6, 7, 8].map((i) => `row ${i}`),
  )
  const all = await post(a.base, BATCH, { inputs })
  assert.match(all.cacheStatus!, /^openai-tasks; hit; ttl=\d+; detail="10 of 10 items"$/)
  assert.deepEqual(all.body, partial.body)
  assert.equal(upstream.requests.length, 3)

  // Each answer one key, living CACHE_TTL_MS (SET … PX).
  const client = new Redis(redis.url)
  t.after(() => client.disconnect())
  const keys = await client.keys('openai-tasks-cache:*')
  assert.equal(keys.length, 11)
  const ttl = await client.pttl(keys[0]!)
  assert.ok(ttl > 86_000_000 && ttl <= 86_400_000, `a day to live: ${ttl} ms`)
})

/** The cache store's warnings since `from` (an index into the captured log lines). */
function storeWarningsSince(from: number): string[] {
  return capturedLogLines
    .slice(from)
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.level === 40 && entry.msg.startsWith('cache store'))
    .map((entry) => entry.msg)
}

test(
  'a frozen Redis does not stall calls: they go to OpenAI within the command timeout, one warning per outage',
  { skip },
  async (t) => {
    const redis = await startRedis()
    // Resumed before the app closes, stopped after.
    t.after(() => process.kill(redis.pid, 'SIGCONT'))
    const mark = capturedLogLines.length
    const served = await serveWithUpstream(t, { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS) })
    t.after(() => redis.stop())
    const input = { model: SMALL, text: 'kept in Redis', dimensions: 64 }
    assert.equal((await post(served.base, SINGLE, input)).cacheStatus, 'openai-tasks; fwd=miss; stored')

    // The socket stays open and nothing answers, as with a hung or paused Redis.
    process.kill(redis.pid, 'SIGSTOP')
    for (let i = 0; i < 12; i++) {
      const started = performance.now()
      const path = i % 3 === 2 ? BATCH : SINGLE
      const res = await within(
        1_000,
        `call ${i} with Redis frozen`,
        post(served.base, path, path === BATCH ? { inputs: [input] } : input),
      )
      assert.equal(res.status, 200)
      assert.match(res.cacheStatus!, /^openai-tasks; fwd=miss(?:; detail="0 of 1 items")?$/, 'a miss, nothing stored')
      // The lookup's command timeout, the stand-in's answer, and room for a busy machine.
      assert.ok(performance.now() - started < TIMEOUT_MS + 400, `call ${i} took ${performance.now() - started} ms`)
    }
    assert.equal(served.upstream.requests.length, 13, 'every call went to OpenAI')
    assert.deepEqual(storeWarningsSince(mark), ['cache store unavailable: lookups miss and stores are dropped'])

    process.kill(redis.pid, 'SIGCONT')
    let back: string | null = null
    for (let i = 0; i < 50 && !back?.includes('hit'); i++) {
      await sleep(100)
      back = (await post(served.base, SINGLE, input)).cacheStatus
    }
    assert.match(back!, /^openai-tasks; hit;/, 'the entry written before the outage answers again')
    assert.deepEqual(storeWarningsSince(mark), [
      'cache store unavailable: lookups miss and stores are dropped',
      'cache store available again',
    ])
  },
)

test('with Redis gone, calls still answer, from OpenAI', { skip }, async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const served = await serveWithUpstream(t, { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS) })
  const input = { model: SMALL, text: 'Redis went away', dimensions: 64 }
  await post(served.base, SINGLE, input)
  await redis.stop()
  for (let i = 0; i < 3; i++) {
    const res = await within(1_000, `call ${i} with Redis stopped`, post(served.base, SINGLE, input))
    assert.equal(res.status, 200)
    assert.equal(res.cacheStatus, 'openai-tasks; fwd=miss')
  }
  assert.equal(served.upstream.requests.length, 4)
})
