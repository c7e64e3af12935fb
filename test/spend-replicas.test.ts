// Spend counted in one real redis-server by two service processes: a budget spent through one
// replica is refused by the other, a frozen Redis neither stalls nor loses a budgeted caller's
// calls, and concurrent calls add up to the nano-dollar.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { TEST_API_KEY } from './support/app.ts'
import { startFakeOpenAI } from './support/fake-openai/index.ts'
import { needs } from './support/needs.ts'
import { redisServerAvailable, startRedis } from './support/redis-server.ts'
import { startServerProcess } from './support/server-process.ts'
import { within } from './support/within.ts'

const skip = needs('redis-server', redisServerAvailable(), 'apt-get install redis-server')
const TOKEN_A = 'pipeline-a-token-0123456789'
const TOKEN_B = 'pipeline-b-token-9876543210'
const TIMEOUT_MS = 200
const CHAT_PATH = '/v1/chat/completions'

/** `0.012` (the header's dollars) as integer nano-dollars, without a float's rounding. */
function nano(usd: string): number {
  assert.match(usd, /^\d+(?:\.\d{1,9})?$/, `a cost in dollars: ${usd}`)
  const [whole, fraction = ''] = usd.split('.')
  return Number(whole) * 1e9 + Number(fraction.padEnd(9, '0'))
}

/** A caller's spend as /v1/usage reports it, in nano-dollars. */
interface Today {
  shared: boolean
  day: string
  calls: number
  nanoUsd: number
}

async function setUp(t: TestContext, budgetA: number) {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const upstream = await startFakeOpenAI()
  t.after(() => upstream.close())
  const dir = mkdtempSync(join(tmpdir(), 'spend-redis-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // A dollar per thousand tokens: each call costs a few cents, visible in the header.
  const file = [
    'callers:',
    `  - { name: pipeline-a, token: ${TOKEN_A}, models: [gpt-4o-mini], budget: { usd-per-day: ${budgetA} } }`,
    `  - { name: pipeline-b, token: ${TOKEN_B}, models: [gpt-4o-mini], budget: { usd-per-day: 1000 } }`,
    'prices:',
    '  gpt-4o-mini: { input-per-1m-tokens: 1000, output-per-1m-tokens: 1000 }',
    '',
  ].join('\n')
  writeFileSync(join(dir, 'config.yaml'), file)
  const processEnv = {
    CONFIG_FILE: join(dir, 'config.yaml'),
    OPENAI_API_KEY: TEST_API_KEY,
    OPENAI_BASE_URL: upstream.url,
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS),
    MAX_EVENT_LOOP_DELAY_MS: '0',
  }
  const [one, two] = await Promise.all([startServerProcess(t, processEnv), startServerProcess(t, processEnv)])
  const direct = new Redis(redis.url, { maxRetriesPerRequest: 0 })
  t.after(() => direct.disconnect())
  /** The integer nano-dollars Redis holds for the caller today. */
  const redisTotal = async (caller: string, day: string) =>
    Number((await direct.hget(`openai-tasks-spend:day:${day}:${caller}`, 'total')) ?? 0)
  return { redis, upstream, one: one.base, two: two.base, redisTotal }
}

async function generate(base: string, token: string) {
  const res = await within(
    5_000,
    `text generation at ${base}`,
    fetch(`${base}/v1/tasks/text-generation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Count the waves on the shore' }),
    }),
  )
  const body: any = await res.json()
  const cost = res.headers.get('x-openai-tasks-cost-usd')
  assert.ok(cost !== null, `an answer says what it cost, a refusal too (${res.status})`)
  return {
    status: res.status,
    body,
    nanoUsd: nano(cost),
    retryAfter: res.headers.get('retry-after'),
  }
}

async function today(base: string, token: string): Promise<Today> {
  const res = await within(5_000, 'usage', fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${token}` } }))
  assert.equal(res.status, 200)
  const usage: any = await res.json()
  assert.equal(usage.callers.length, 1, 'a caller sees its own spend only')
  const spent = usage.callers[0].today
  return { shared: usage.shared, day: usage.day, calls: spent.calls, nanoUsd: nano(String(spent['cost-usd'])) }
}

test(
  'a day budget spent through one replica is refused by the other; the total overshoots by less than a call',
  { skip },
  async (t) => {
    const BUDGET = 0.1
    const { upstream, one, two, redisTotal } = await setUp(t, BUDGET)
    const first = await generate(one, TOKEN_A)
    assert.equal(first.status, 200, JSON.stringify(first.body))
    const each = first.nanoUsd
    assert.ok(each > 0 && each < (BUDGET * 1e9) / 3, `a call costs a visible part of the budget: ${each} nano-dollars`)
    let spent = each
    let calls = 1
    for (;;) {
      const answer = await generate(one, TOKEN_A)
      if (answer.status !== 200) {
        assert.equal(answer.status, 429, JSON.stringify(answer.body))
        assert.equal(answer.body.error.code, 'ERR_BUDGET_EXCEEDED')
        assert.ok(Number(answer.retryAfter) > 0, `Retry-After: ${answer.retryAfter}`)
        assert.equal(answer.nanoUsd, 0, 'a refusal costs nothing')
        break
      }
      assert.equal(answer.nanoUsd, each, 'the same call costs the same')
      spent += answer.nanoUsd
      calls++
      assert.ok(calls <= 20, 'the budget is reached')
    }
    assert.equal(upstream.count(CHAT_PATH), calls, 'the refused call never reached OpenAI')
    assert.ok(spent >= BUDGET * 1e9, `refused only once ${spent} reached the budget`)
    assert.ok(spent < BUDGET * 1e9 + each, `${spent} overshoots ${BUDGET * 1e9} by less than a call of ${each}`)

    const refused = await generate(two, TOKEN_A)
    assert.equal(refused.status, 429, 'the other replica refuses on its first call: the budget is shared')
    assert.equal(refused.body.error.code, 'ERR_BUDGET_EXCEEDED')
    const retryAfter = Number(refused.retryAfter)
    assert.ok(retryAfter > 0 && retryAfter <= 86_400, `Retry-After at most until UTC midnight: ${refused.retryAfter}`)
    assert.equal(upstream.count(CHAT_PATH), calls, 'nothing reached OpenAI for the refused calls')

    const usage = await today(two, TOKEN_A)
    assert.equal(usage.shared, true, 'read from Redis')
    assert.equal(usage.calls, calls)
    assert.equal(usage.nanoUsd, spent, 'the sum of the headers, to the nano-dollar')
    assert.equal(await redisTotal('pipeline-a', usage.day), spent, 'HINCRBY of nano-dollars under the day key')

    for (const base of [one, two]) {
      const other = await generate(base, TOKEN_B)
      assert.equal(other.status, 200, `pipeline-b is still served at ${base}`)
      assert.equal(other.nanoUsd, each)
    }
    assert.equal(upstream.count(CHAT_PATH), calls + 2)
  },
)

test(
  'a frozen Redis neither stalls nor fails a budgeted caller, and what it spent meanwhile reaches Redis after',
  { skip },
  async (t) => {
    const { redis, upstream, one, two, redisTotal } = await setUp(t, 100)
    const before = await generate(one, TOKEN_A)
    assert.equal(before.status, 200)
    let spent = before.nanoUsd
    const FROZEN_CALLS = 6
    process.kill(redis.pid, 'SIGSTOP')
    try {
      // Spread over about three seconds: longer than the service's socket timeout (2 s at 200 ms).
      for (let i = 0; i < FROZEN_CALLS; i++) {
        const started = performance.now()
        const answer = await generate(one, TOKEN_A)
        const ms = performance.now() - started
        assert.equal(answer.status, 200, `call ${i} with Redis frozen: ${JSON.stringify(answer.body)}`)
        // The budget check's command timeout, the stand-in's answer, and room for a busy machine.
        assert.ok(ms < TIMEOUT_MS + 800, `call ${i} with Redis frozen took ${Math.round(ms)} ms`)
        spent += answer.nanoUsd
        await sleep(500)
      }
    } finally {
      process.kill(redis.pid, 'SIGCONT')
    }
    assert.equal(upstream.count(CHAT_PATH), 1 + FROZEN_CALLS)

    // No call after the outage: what was counted meanwhile is sent because Redis is back.
    let usage = await today(two, TOKEN_A)
    const deadline = Date.now() + 8_000
    while (!(usage.shared && usage.calls >= 1 + FROZEN_CALLS) && Date.now() < deadline) {
      await sleep(200)
      usage = await today(two, TOKEN_A)
    }
    assert.equal(usage.shared, true, 'read from Redis again')
    assert.equal(usage.calls, 1 + FROZEN_CALLS, 'the calls made while Redis was frozen are in Redis, each once')
    assert.equal(usage.nanoUsd, spent, 'their cost too, to the nano-dollar')
    assert.equal(await redisTotal('pipeline-a', usage.day), spent)
  },
)

test('20 concurrent calls of one caller through two replicas add up exactly', { skip }, async (t) => {
  const { upstream, one, two, redisTotal } = await setUp(t, 100)
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => generate(i % 2 ? two : one, TOKEN_A)))
  assert.deepEqual(
    answers.map((a) => a.status),
    Array(20).fill(200),
  )
  assert.equal(upstream.count(CHAT_PATH), 20)
  const sum = answers.reduce((n, answer) => n + answer.nanoUsd, 0)
  assert.ok(sum > 0)
  for (const base of [one, two]) {
    const usage = await today(base, TOKEN_A)
    assert.equal(usage.shared, true)
    assert.equal(usage.calls, 20, `20 calls, as ${base} reads them`)
    assert.equal(usage.nanoUsd, sum, 'the sum of the 20 headers, to the nano-dollar')
    assert.equal(await redisTotal('pipeline-a', usage.day), sum)
  }
})
