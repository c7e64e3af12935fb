import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import openaiTasksApp from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { serverOptions } from '../src/server-options.ts'
import { build, buildWithUpstream, capturedLogLines, TEST_API_KEY } from './support/app.ts'
import { startFakeOpenAI } from './support/fake-openai/index.ts'
import { needs } from './support/needs.ts'
import { redisServerAvailable, startRedis } from './support/redis-server.ts'
import { within } from './support/within.ts'

const CHAT = { model: 'gpt-4o-mini', prompt: 'hi' }
const RATE_LIMIT_HEADERS = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'retry-after']

function chat(app: FastifyInstance, token?: string) {
  return app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    payload: CHAT,
  })
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    assert.ok(Date.now() < deadline, what)
    await sleep(20)
  }
}

/** The rate-limit store's log entries since `from` (an index into the captured log lines). */
function storeLogsSince(from: number): Array<{ level: number; msg: string; [field: string]: unknown }> {
  return capturedLogLines
    .slice(from)
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.msg.startsWith('rate-limit store'))
}

/** Failed attempts to reach Redis logged since `from`, each at debug. */
function connectionErrors(from: number): number {
  return storeLogsSince(from).filter((entry) => entry.msg === 'rate-limit store connection error').length
}

test('by default there is no limit: many requests from one IP, none refused, no rate-limit headers', async (t) => {
  const upstream = await startFakeOpenAI()
  t.after(() => upstream.close())
  // Not build(): its test defaults set RATE_LIMIT_MAX, and this is about the service's own default.
  // Load shedding off: a busy test machine is not what this is about.
  const config = loadConfig({
    OPENAI_API_KEY: TEST_API_KEY,
    OPENAI_BASE_URL: upstream.url,
    MAX_EVENT_LOOP_DELAY_MS: '0',
  })
  const app = Fastify(serverOptions(config, { enabled: false }))
  await app.register(fp(openaiTasksApp), { config })
  t.after(() => app.close())
  // Past @fastify/rate-limit's own default of 1000 per window, and the service's former 600.
  for (let i = 0; i < 1_001; i++) {
    const res = await app.inject('/v1/tasks')
    assert.equal(res.statusCode, 200, `catalogue request ${i}`)
    for (const header of RATE_LIMIT_HEADERS) assert.equal(res.headers[header], undefined, `${header} on request ${i}`)
  }
  for (let i = 0; i < 5; i++) {
    const res = await chat(app)
    assert.equal(res.statusCode, 200)
    for (const header of RATE_LIMIT_HEADERS) assert.equal(res.headers[header], undefined, header)
  }
  assert.equal(upstream.requests.length, 5)
})

test('in memory: the limit applies per client IP, with Retry-After and rate-limit headers', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' })
  for (let i = 0; i < 3; i++) {
    const ok = await chat(app)
    assert.equal(ok.statusCode, 200)
    assert.equal(ok.headers['ratelimit-limit'], '3')
    assert.equal(ok.headers['ratelimit-remaining'], String(2 - i))
  }
  const limited = await chat(app)
  assert.equal(limited.statusCode, 429)
  assert.equal(limited.json().error.code, 'ERR_RATE_LIMITED')
  assert.ok(Number(limited.headers['retry-after']) > 0)
  assert.equal(upstream.requests.length, 3)
  assert.equal((await app.inject('/healthz')).statusCode, 200, 'health checks are not limited')
})

test('with service tokens the limit applies per token', async (t) => {
  const { app } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '2', SERVICE_TOKENS: 'tok-a-123,tok-b-456' })
  assert.equal((await chat(app, 'tok-a-123')).statusCode, 200)
  assert.equal((await chat(app, 'tok-a-123')).statusCode, 200)
  assert.equal((await chat(app, 'tok-a-123')).statusCode, 429)
  assert.equal((await chat(app, 'tok-b-456')).statusCode, 200, 'another token has its own budget')
})

const skipRedis = needs('redis-server', redisServerAvailable(), 'apt-get install redis-server')

test('with REDIS_URL, replicas share one count in a real Redis', { skip: skipRedis }, async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const { app: first, upstream } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '3', REDIS_URL: redis.url })
  const second = await build(t, { RATE_LIMIT_MAX: '3', REDIS_URL: redis.url, OPENAI_BASE_URL: upstream.url })
  assert.equal((await chat(first)).statusCode, 200)
  assert.equal((await chat(second)).statusCode, 200)
  assert.equal((await chat(first)).statusCode, 200)
  const limited = await chat(second)
  assert.equal(limited.statusCode, 429, 'the second replica sees the first one’s requests')
  assert.ok(Number(limited.headers['retry-after']) > 0)
})

test('when Redis goes away, requests still pass', { skip: skipRedis }, async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const { app } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '3', REDIS_URL: redis.url })
  assert.equal((await chat(app)).statusCode, 200)
  await redis.stop()
  assert.equal((await chat(app)).statusCode, 200)
})

test(
  'a frozen Redis: requests pass, one line as the outage starts and one as it ends, then the limit is back',
  { skip: skipRedis },
  async (t) => {
    const redis = await startRedis()
    // Resumed before the app closes, stopped after.
    t.after(() => process.kill(redis.pid, 'SIGCONT'))
    const mark = capturedLogLines.length
    const { app } = await buildWithUpstream(t, {
      RATE_LIMIT_MAX: '3',
      RATE_LIMIT_WINDOW_MS: '60000',
      REDIS_URL: redis.url,
    })
    t.after(() => redis.stop())
    assert.equal((await chat(app)).statusCode, 200)

    // The socket stays open and nothing answers, as with a hung or paused Redis.
    process.kill(redis.pid, 'SIGSTOP')
    const frozenRequests = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const res = await within(1_000, `request ${i} while Redis is frozen`, chat(app))
        assert.equal(res.statusCode, 200, 'the request passes unlimited')
      }
    }
    await frozenRequests(15)
    await waitFor(() => connectionErrors(mark) >= 3, 'reconnect attempts to the frozen Redis fail')
    await frozenRequests(15)
    assert.equal((await app.inject('/readyz')).statusCode, 200, 'the service stays ready: its requests pass')

    process.kill(redis.pid, 'SIGCONT')
    await waitFor(
      () => storeLogsSince(mark).some((entry) => entry.msg === 'rate-limit store available again'),
      'the service notices that Redis answers again',
    )
    let limited = false
    for (let i = 0; i < 4 && !limited; i++) limited = (await chat(app)).statusCode === 429
    assert.ok(limited, 'the limit applies again')

    const logs = storeLogsSince(mark)
    const warnings = logs.filter((entry) => entry.level === 40)
    assert.deepEqual(
      warnings.map((entry) => entry.msg),
      ['rate-limit store unavailable: requests pass unlimited', 'rate-limit store available again'],
      'one warning as the outage starts, one as it ends',
    )
    const [, recovered] = warnings
    assert.equal(recovered!.requestsPassedUnlimited, 30)
    assert.ok(Number(recovered!.outageMs) > 0)
  },
)

test('shutdown does not wait for a frozen Redis', { skip: skipRedis }, async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const { app } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '3', REDIS_URL: redis.url })
  assert.equal((await chat(app)).statusCode, 200)
  process.kill(redis.pid, 'SIGSTOP')
  await within(2_000, 'app.close() with Redis frozen', app.close())
})
