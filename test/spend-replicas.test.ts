// Budgets held across replicas: two service processes count spend in one real redis-server, and a
// frozen Redis neither stalls nor fails a budgeted caller's calls.
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { TEST_API_KEY } from './support/app.ts'
import { startFakeOpenAI, type FakeOpenAI } from './support/fake-openai/index.ts'
import { needs } from './support/needs.ts'
import { redisServerAvailable, startRedis, type RedisServer } from './support/redis-server.ts'
import { startServerProcess } from './support/server-process.ts'
import { within } from './support/within.ts'

const skip = needs('redis-server', redisServerAvailable(), 'apt-get install redis-server')
const TOKEN_A = 'token-of-pipeline-a-0123'
const TOKEN_B = 'token-of-pipeline-b-4567'
// Dear prices, so that a few calls reach the budget: about a dollar-cent a call.
const FILE = `
callers:
  - { name: pipeline-a, token: ${TOKEN_A}, budget: { usd-per-day: 0.05 } }
  - { name: pipeline-b, token: ${TOKEN_B} }
prices:
  gpt-4o-mini: { input-per-1m-tokens: 500, output-per-1m-tokens: 500 }
`

async function setUp(t: TestContext, env: Record<string, string> = {}) {
  const redis: RedisServer = await startRedis()
  t.after(() => redis.stop())
  const upstream: FakeOpenAI = await startFakeOpenAI()
  t.after(() => upstream.close())
  const dir = mkdtempSync(join(tmpdir(), 'spend-replicas-'))
  writeFileSync(join(dir, 'config.yaml'), FILE)
  const processEnv = {
    CONFIG_FILE: join(dir, 'config.yaml'),
    OPENAI_BASE_URL: upstream.url,
    OPENAI_API_KEY: TEST_API_KEY,
    REDIS_URL: redis.url,
    MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  }
  const [a, b] = await Promise.all([startServerProcess(t, processEnv), startServerProcess(t, processEnv)])
  return { redis, upstream, replicas: [a.base, b.base] as const }
}

async function generate(base: string, token: string) {
  const res = await fetch(`${base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Count the waves' }),
  })
  const body: any = await res.json()
  return { status: res.status, body, cost: Number(res.headers.get('x-openai-tasks-cost-usd') ?? 0), res }
}

async function today(base: string, token: string): Promise<any> {
  const res = await fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${token}` } })
  const usage: any = await res.json()
  return { shared: usage.shared, ...usage.callers[0].today }
}

test(
  'a budget spent through one replica is refused by the other; the total stays within a call',
  { skip },
  async (t) => {
    const { upstream, replicas } = await setUp(t)
    const [one, two] = replicas
    let spent = 0
    let calls = 0
    for (;;) {
      const answer = await generate(one, TOKEN_A)
      if (answer.status === 429) {
        assert.equal(answer.body.error.code, 'ERR_BUDGET_EXCEEDED')
        break
      }
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.ok(answer.cost > 0)
      spent += answer.cost
      assert.ok(++calls < 50, 'the budget is reached')
    }
    const each = spent / calls
    assert.ok(spent >= 0.05 && spent < 0.05 + each + 1e-9, `spent ${spent} for a budget of 0.05, ${each} a call`)

    const received = upstream.requests.length
    const refused = await generate(two, TOKEN_A)
    assert.equal(refused.status, 429, 'the other replica refuses too: the spend is shared')
    assert.ok(Number(refused.res.headers.get('retry-after')) > 0)
    assert.equal(upstream.requests.length, received, 'nothing reached OpenAI for the refused calls')

    const usage = await today(two, TOKEN_A)
    assert.equal(usage.shared, true)
    assert.equal(usage.calls, calls)
    assert.ok(Math.abs(usage['cost-usd'] - spent) < 1e-9, `${usage['cost-usd']} vs ${spent}`)

    for (const base of replicas) assert.equal((await generate(base, TOKEN_B)).status, 200, 'pipeline-b goes on')
  },
)

test('concurrent calls through two replicas add up exactly', { skip }, async (t) => {
  const { replicas } = await setUp(t)
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => generate(replicas[i % 2]!, TOKEN_B)))
  assert.deepEqual(
    answers.map((a) => a.status),
    Array(20).fill(200),
  )
  const usage = await today(replicas[0], TOKEN_B)
  assert.equal(usage.calls, 20)
  const sum = answers.reduce((n, a) => n + a.cost, 0)
  assert.ok(Math.abs(usage['cost-usd'] - sum) < 1e-9, `${usage['cost-usd']} vs ${sum}`)
})

test(
  'a frozen Redis neither stalls nor fails a budgeted caller; its spend reaches Redis after',
  { skip },
  async (t) => {
    const { redis, replicas } = await setUp(t, { REDIS_COMMAND_TIMEOUT_MS: '200' })
    const [one] = replicas
    assert.equal((await generate(one, TOKEN_A)).status, 200)
    process.kill(redis.pid, 'SIGSTOP')
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await within(3000, 'a call while Redis is frozen', generate(one, TOKEN_A))
        assert.equal(answer.status, 200)
      }
    } finally {
      process.kill(redis.pid, 'SIGCONT')
    }
    // Counted in the process meanwhile; sent with the next record that reaches Redis, once.
    let usage = await today(one, TOKEN_A)
    for (let i = 0; i < 50 && !usage.shared; i++) {
      await sleep(100)
      usage = await today(one, TOKEN_A)
    }
    assert.equal((await generate(one, TOKEN_B)).status, 200)
    await sleep(300)
    usage = await today(one, TOKEN_A)
    assert.equal(usage.shared, true, 'read from Redis again')
    assert.equal(usage.calls, 4, 'the three calls made while Redis was frozen are in Redis, each once')
  },
)
