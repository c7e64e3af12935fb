/**
 * Several deployments behind one service, over real sockets with two or three stand-ins:
 * weights, cool-downs from rate-limit headers, failover before the first byte, Azure's wire
 * format, whose key goes where, and the deployment each answer names.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { describe, test, type TestContext } from 'node:test'
import { build, capturedLogLines } from './support/app.ts'
import { startServerProcess } from './support/server-process.ts'
import { startFakeOpenAI, type FakeOpenAI, type FakeOpenAIOptions } from './support/fake-openai/index.ts'

const CHAT = '/v1/tasks/text-generation'
const dir = mkdtempSync(join(tmpdir(), 'openai-tasks-deployments-'))
let files = 0

async function standIn(t: TestContext, options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const fake = await startFakeOpenAI(options)
  t.after(async () => {
    await fake.close()
    assert.deepEqual(fake.violations, [], `what reached ${fake.url} satisfies its contract`)
  })
  return fake
}

/** The service with a configuration file, listening on loopback; `env` also feeds its `${VARIABLE}`s. */
async function serve(t: TestContext, yaml: string, env: Record<string, string> = {}): Promise<string> {
  const file = join(dir, `config-${++files}.yaml`)
  writeFileSync(file, yaml)
  const app = await build(t, { CONFIG_FILE: file, OPENAI_API_KEY: '', LOG_SUMMARY_INTERVAL_MS: '0', ...env })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

async function chat(
  base: string,
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<{ status: number; deployment: string | null; json: Record<string, any>; headers: Headers }> {
  const res = await fetch(base + CHAT, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hi', ...body }),
  })
  const json = (await res.json()) as Record<string, any>
  return { status: res.status, deployment: res.headers.get('x-openai-tasks-deployment'), json, headers: res.headers }
}

const KEYS = { KEY_A: 'sk-key-a-0123456789', KEY_B: 'sk-key-b-0123456789', KEY_AZ: 'azure-key-0123456789' }

function twoDeployments(a: FakeOpenAI, b: FakeOpenAI, extraA = '', extraB = ''): string {
  return `
deployments:
  - name: a
    base-url: ${a.url}
    api-key: \${KEY_A}
${extraA}
  - name: b
    base-url: ${b.url}
    api-key: \${KEY_B}
${extraB}
`
}

describe('balancing', () => {
  test('weights share 1,000 calls within 10 %', async (t) => {
    const [a, b] = [await standIn(t, { record: false }), await standIn(t, { record: false })]
    const base = await serve(t, twoDeployments(a, b, '    weight: 3', '    weight: 1'), KEYS)
    const served: Record<string, number> = {}
    for (let round = 0; round < 50; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => chat(base)))
      for (const { status, deployment } of answers) {
        assert.equal(status, 200)
        served[deployment!] = (served[deployment!] ?? 0) + 1
      }
    }
    assert.equal(a.count('/chat/completions') + b.count('/chat/completions'), 1000)
    assert.equal(served.a, a.count('/chat/completions'), 'each answer names the deployment that served it')
    assert.ok(Math.abs(a.count('/chat/completions') - 750) <= 75, `a served ${a.count('/chat/completions')}`)
    assert.ok(Math.abs(b.count('/chat/completions') - 250) <= 25, `b served ${b.count('/chat/completions')}`)
  })

  test('a lower priority number is used alone while it can serve', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b, '    priority: 1', '    priority: 2'), KEYS)
    for (let i = 0; i < 20; i++) assert.equal((await chat(base)).deployment, 'a')
    assert.equal(b.requests.length, 0)
  })
  test('a batch that both deployments served names each once in its header', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b), KEYS)
    const inputs = Array.from({ length: 4 }, (_, i) => ({ model: 'gpt-4o-mini', prompt: `item ${i}` }))
    const res = await fetch(`${base}${CHAT}/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs }),
    })
    assert.equal(res.status, 200, await res.clone().text())
    assert.equal(a.requests.length + b.requests.length, 4)
    assert.ok(a.requests.length > 0 && b.requests.length > 0, 'equal weights share the items')
    const named = res.headers.get('x-openai-tasks-deployment')!.split(', ')
    assert.deepEqual(named.toSorted(), ['a', 'b'])
  })
})

describe('rate limits', () => {
  test('a 429 with Retry-After: 3 moves every call off its deployment for 3 s, then back', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b), KEYS)
    const linesBefore = capturedLogLines.length
    a.enqueue({ status: 429, headers: { 'retry-after': '3' } })
    const first = await chat(base)
    assert.equal(first.status, 200, 'failed over at once')
    const limitedAt = a.requests[0]!.receivedAt
    // Until the cool-down ends, every call goes to b.
    while (Date.now() - limitedAt < 2_500) {
      const { status, deployment } = await chat(base)
      assert.equal(status, 200)
      assert.equal(deployment, 'b')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.equal(a.requests.length, 1)
    await new Promise((resolve) => setTimeout(resolve, 3_100 - (Date.now() - limitedAt)))
    const after = await Promise.all(Array.from({ length: 10 }, () => chat(base)))
    assert.ok(
      after.some(({ deployment }) => deployment === 'a'),
      'a takes calls again once its cool-down is over',
    )
    const warnings = capturedLogLines
      .slice(linesBefore)
      .filter((line) => line.includes('"deployment":"a"') && line.includes('"why":"cool-down"'))
    assert.equal(warnings.length, 1, 'one warning for the cool-down, not one per call')
  })

  test('x-ratelimit-remaining-requests: 0 on a success cools the deployment until its reset', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b, '    priority: 1', '    priority: 2'), KEYS)
    a.setRateLimit({ remainingRequests: 0, resetRequests: 1_500, limitRequests: 100 })
    assert.equal((await chat(base)).deployment, 'a')
    a.setRateLimit(undefined)
    for (let i = 0; i < 5; i++) assert.equal((await chat(base)).deployment, 'b')
    await new Promise((resolve) => setTimeout(resolve, 1_600))
    assert.equal((await chat(base)).deployment, 'a', 'back after the reset')
  })

  test('every deployment rate limited past the wait allowed: a 429 with the earliest Retry-After', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b), { ...KEYS, UPSTREAM_RETRY_MAX_DELAY_MS: '1000' })
    a.rateLimitFor(20_000)
    b.rateLimitFor(8_000)
    const started = Date.now()
    const answer = await chat(base)
    assert.equal(answer.status, 429)
    assert.equal(answer.json.error.code, 'ERR_UPSTREAM_RATE_LIMITED')
    assert.ok(Date.now() - started < 2_000, 'not waited for')
    assert.equal(answer.headers.get('retry-after'), '8')
    assert.equal(a.requests.length + b.requests.length, 2, 'each tried once')
  })
})

describe('failover', () => {
  test('5xx and refused connections go to another deployment without the backoff', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b, '    priority: 1', '    priority: 2'), {
      ...KEYS,
      UPSTREAM_RETRY_BASE_DELAY_MS: '5000',
    })
    a.enqueue({ status: 503 })
    const started = Date.now()
    const answer = await chat(base)
    assert.equal(answer.status, 200)
    assert.equal(answer.deployment, 'b')
    assert.ok(Date.now() - started < 2_000, 'sent on at once, not after a 5 s backoff')
  })

  test('a deployment stopped mid-run costs no caller a failure', async (t) => {
    const [a, b] = [await standIn(t, { record: false }), await standIn(t, { record: false })]
    const base = await serve(t, twoDeployments(a, b), KEYS)
    const statuses: number[] = []
    const run = (async () => {
      for (let round = 0; round < 30; round++) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => chat(base)))
        statuses.push(...answers.map((x) => x.status))
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, 150))
    await a.stop()
    await run
    assert.equal(statuses.length, 300)
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every call answered 200',
    )
    assert.ok(b.count('/chat/completions') > 150, 'b took the calls a could not')
  })

  test('every deployment down: a clear error within a bounded time', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b), KEYS)
    await Promise.all([a.stop(), b.stop()])
    const started = Date.now()
    const answer = await chat(base)
    assert.equal(answer.status, 502)
    assert.equal(answer.json.error.code, 'ERR_UPSTREAM_UNREACHABLE')
    assert.ok(['a', 'b'].includes(answer.deployment!), 'the error names the deployment it came from')
    assert.ok(Date.now() - started < 5_000, `answered in ${Date.now() - started} ms`)
  })

  test('400, 401, 403 and 404 are the caller’s answer, never sent elsewhere', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b, '    priority: 1', '    priority: 2'), KEYS)
    for (const status of [400, 401, 403, 404]) {
      a.enqueue({ status })
      const answer = await chat(base)
      assert.equal(answer.status, status)
      assert.equal(answer.deployment, 'a')
    }
    assert.equal(b.requests.length, 0)
  })

  test('consecutive failures open a circuit: one warning, then one probe call', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b, '    priority: 1', '    priority: 2'), KEYS)
    const linesBefore = capturedLogLines.length
    a.enqueue({ status: 500, times: 5 })
    for (let i = 0; i < 5; i++) assert.equal((await chat(base)).deployment, 'b')
    assert.equal(a.requests.length, 5)
    for (let i = 0; i < 10; i++) assert.equal((await chat(base)).deployment, 'b', 'the open circuit keeps calls off a')
    assert.equal(a.requests.length, 5)
    const opened = capturedLogLines
      .slice(linesBefore)
      .filter((line) => line.includes('"deployment":"a"') && line.includes('"why":"circuit-open"'))
    assert.equal(opened.length, 1)
    // Once its 5 s are over, one probe goes through; its success closes the circuit.
    await new Promise((resolve) => setTimeout(resolve, 5_100 - (Date.now() - a.requests[4]!.receivedAt)))
    assert.equal((await chat(base)).deployment, 'a')
    assert.equal((await chat(base)).deployment, 'a')
    const back = capturedLogLines.slice(linesBefore).filter((line) => line.includes('deployment takes calls again'))
    assert.equal(back.length, 1)
  })

  test('a stream fails over before its first byte, never after', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b, '    priority: 1', '    priority: 2'), KEYS)
    const stream = async (): Promise<{ deployment: string | null; text: string }> => {
      const res = await fetch(base + CHAT, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Tell a story' }),
      })
      return { deployment: res.headers.get('x-openai-tasks-deployment'), text: await res.text() }
    }
    a.enqueue({ status: 500 })
    const before = await stream()
    assert.equal(before.deployment, 'b')
    assert.match(before.text, /event: done/)
    a.enqueue({ kind: 'truncated-stream', afterChunks: 2 })
    const bRequests = b.requests.length
    const after = await stream()
    assert.equal(after.deployment, 'a')
    assert.match(after.text, /event: error/, 'cut short after bytes went out: an error event, not a second answer')
    assert.equal(b.requests.length, bRequests, 'b was not asked again')
  })
})

describe('Azure OpenAI', () => {
  test('gets its key as api-key, the mapped model and the /openai/v1 path', async (t) => {
    const azure = await standIn(t, { flavour: 'azure', apiKey: KEYS.KEY_AZ })
    const base = await serve(
      t,
      `
deployments:
  - name: azure-east
    type: azure
    base-url: ${azure.url}
    api-key: \${KEY_AZ}
    model-map: { gpt-4o-mini: prod-4o-mini }
`,
      KEYS,
    )
    const answer = await chat(base)
    assert.equal(answer.status, 200, JSON.stringify(answer.json))
    assert.equal(answer.deployment, 'azure-east')
    const [sent] = azure.requests
    assert.equal(sent!.path, '/openai/v1/chat/completions')
    assert.equal(sent!.headers['api-key'], KEYS.KEY_AZ)
    assert.equal(sent!.headers.authorization, undefined)
    assert.equal((sent!.json as { model: string }).model, 'prod-4o-mini')
  })

  test('its 429 cools it down, read from its own headers', async (t) => {
    const azure = await standIn(t, { flavour: 'azure', apiKey: KEYS.KEY_AZ })
    const openai = await standIn(t)
    const base = await serve(
      t,
      `
deployments:
  - name: azure-east
    type: azure
    base-url: ${azure.url}
    api-key: \${KEY_AZ}
  - name: openai-b
    base-url: ${openai.url}
    api-key: \${KEY_B}
    priority: 2
`,
      KEYS,
    )
    azure.rateLimitFor(2_000)
    assert.equal((await chat(base)).deployment, 'openai-b')
    assert.equal((await chat(base)).deployment, 'openai-b')
    assert.equal(azure.requests.length, 1, 'not asked again while it cools down')
  })
})

describe('whose key', () => {
  const CALLER_KEY = 'sk-caller-own-0123456789'
  const TOKEN = 'service-token-for-deployments'

  test("a caller's own key reaches only deployments marked caller-keys", async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(
      t,
      `
deployments:
  - name: a
    base-url: ${a.url}
    api-key: \${KEY_A}
    caller-keys: true
  - name: b
    base-url: ${b.url}
    api-key: \${KEY_B}
`,
      { ...KEYS, SERVICE_TOKENS: TOKEN, ALLOW_CALLER_API_KEYS: 'true' },
    )
    const own = { authorization: `Bearer ${TOKEN}`, 'x-openai-api-key': CALLER_KEY }
    for (let i = 0; i < 10; i++) assert.equal((await chat(base, {}, own)).deployment, 'a')
    for (let i = 0; i < 10; i++) await chat(base, {}, { authorization: `Bearer ${TOKEN}` })
    const keysAt = (fake: FakeOpenAI): Set<string | undefined> =>
      new Set(fake.requests.map((r) => r.headers.authorization as string | undefined))
    assert.ok(keysAt(a).has(`Bearer ${CALLER_KEY}`))
    assert.ok(!keysAt(b).has(`Bearer ${CALLER_KEY}`), 'b never saw the caller key')
    assert.deepEqual(keysAt(b), new Set([`Bearer ${KEYS.KEY_B}`]), 'b only ever got its own key')
    assert.ok(!keysAt(a).has(`Bearer ${KEYS.KEY_B}`), "a never got b's key")
  })

  test('without a deployment for callers’ keys, a caller spending its own gets a 400, nothing sent', async (t) => {
    const azure = await standIn(t, { flavour: 'azure', apiKey: KEYS.KEY_AZ })
    const base = await serve(
      t,
      `
deployments:
  - name: azure-east
    type: azure
    base-url: ${azure.url}
    api-key: \${KEY_AZ}
`,
      { ...KEYS, SERVICE_TOKENS: TOKEN, ALLOW_CALLER_API_KEYS: 'true' },
    )
    const answer = await chat(base, {}, { authorization: `Bearer ${TOKEN}`, 'x-openai-api-key': CALLER_KEY })
    assert.equal(answer.status, 400)
    assert.equal(answer.json.error.code, 'ERR_MODEL_NOT_SERVED')
    assert.equal(azure.requests.length, 0)
  })

  test('a model no deployment serves is a 400 naming it, before any call', async (t) => {
    const [a, b] = [await standIn(t), await standIn(t)]
    const base = await serve(t, twoDeployments(a, b, '    models: ["gpt-4o*"]', '    models: ["gpt-5*"]'), KEYS)
    const answer = await chat(base, { model: 'o3' })
    assert.equal(answer.status, 400)
    assert.equal(answer.json.error.code, 'ERR_MODEL_NOT_SERVED')
    assert.deepEqual(
      answer.json.error.details.map((d: { field: string }) => d.field),
      ['model'],
    )
    assert.match(answer.json.error.message, /"o3"/)
    assert.equal(a.requests.length + b.requests.length, 0)
    assert.equal((await chat(base, { model: 'gpt-5-mini' })).deployment, 'b')
    assert.equal((await chat(base, { model: 'gpt-4o' })).deployment, 'a')
  })
})

describe('reloading the file', () => {
  test('SIGHUP swaps deployments and keys under load, losing no call; a bad file changes nothing', async (t) => {
    const old = await standIn(t, { apiKey: KEYS.KEY_A, record: false, chunkDelayMs: 5 })
    const rotated = await standIn(t, { apiKey: KEYS.KEY_B, record: false })
    const file = join(dir, `config-${++files}.yaml`)
    const deployment = (fake: FakeOpenAI, key: string): string =>
      `deployments:\n  - name: main\n    base-url: ${fake.url}\n    api-key: \${${key}}\n`
    writeFileSync(file, deployment(old, 'KEY_A'))
    const server = await startServerProcess(t, { CONFIG_FILE: file, ...KEYS, LOG_LEVEL: 'info' })
    const statuses: number[] = []
    const running = { on: true }
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running.on) {
          const res = await fetch(server.base + CHAT, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
            body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'Tell a story' }),
          })
          const text = await res.text()
          statuses.push(res.status === 200 && text.includes('event: done') ? 200 : res.status)
        }
      }),
    )
    await new Promise((resolve) => setTimeout(resolve, 500))
    writeFileSync(file, deployment(rotated, 'KEY_B'))
    server.child.kill('SIGHUP')
    await new Promise((resolve) => setTimeout(resolve, 800))
    const oldCalls = old.count('/chat/completions')
    writeFileSync(file, 'deployments:\n  - name: main\n    wieght: 2\n')
    server.child.kill('SIGHUP')
    await new Promise((resolve) => setTimeout(resolve, 500))
    running.on = false
    await load
    assert.ok(statuses.length > 20, `${statuses.length} calls made`)
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every call answered, streams complete',
    )
    assert.equal(old.count('/chat/completions'), oldCalls, 'after the reload no call went to the old deployment')
    assert.ok(rotated.count('/chat/completions') > 0, 'the new key is in use')
    assert.match(server.log(), /SIGHUP: deployments reloaded/)
    assert.match(server.log(), /SIGHUP: configuration refused, the running one stays/)
    assert.match(server.log(), /deployments\[0\]\.wieght \(line 3\): is not a known field/)
  })
})
