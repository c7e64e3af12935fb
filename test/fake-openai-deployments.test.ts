// The stand-in as the deployment tests use it: Azure's flavour, rate-limit headers and 429s, several at once, restarts.
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { AzureOpenAI } from 'openai'
import {
  goDuration,
  startFakeOpenAI,
  validateOpenAIComponent,
  validateOpenAIResponse,
} from './support/fake-openai/index.ts'
import type { FakeOpenAI } from './support/fake-openai/index.ts'

const AZURE_KEY = 'azure-key-0123456789'
const BEARER = { authorization: 'Bearer sk-test-123' }
const AZURE_DENIED = {
  error: {
    code: '401',
    message:
      'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an ' +
      'active subscription and use a correct regional API endpoint for your resource.',
  },
}
const RATE_LIMIT_HEADERS = [
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
]

const chatBody = (model = 'gpt-4o-mini'): object => ({ model, messages: [{ role: 'user', content: 'hello there' }] })

function post(url: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

/** The `x-ratelimit-*` headers of an answer. */
function rateLimitHeadersOf(res: Response): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of RATE_LIMIT_HEADERS) {
    const value = res.headers.get(name)
    if (value !== null) out[name] = value
  }
  return out
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

let openai: FakeOpenAI
let azure: FakeOpenAI

before(async () => {
  openai = await startFakeOpenAI()
  azure = await startFakeOpenAI({ flavour: 'azure', apiKey: AZURE_KEY })
})
after(async () => {
  await openai.close()
  await azure.close()
})
beforeEach(() => {
  for (const fake of [openai, azure]) {
    fake.reset()
    fake.setRateLimit(undefined)
    fake.rateLimitShare(undefined)
  }
})

describe('the Azure flavour', () => {
  test('api-key on /openai/v1: a deployment name as the model, answers within the contract', async () => {
    assert.equal(azure.url, `${azure.origin}/openai/v1`)
    assert.equal(azure.flavour, 'azure')
    const res = await post(`${azure.url}/chat/completions`, chatBody('prod-4o-mini'), { 'api-key': AZURE_KEY })
    assert.equal(res.status, 200)
    const body = (await res.json()) as any
    assert.equal(validateOpenAIResponse('/chat/completions', body), null)
    assert.equal(body.model, 'prod-4o-mini')
    assert.equal(body.choices[0].message.content, 'echo: hello there')
    assert.match(res.headers.get('apim-request-id') ?? '', /^[0-9a-f-]{36}$/)
    assert.equal(res.headers.get('openai-version'), null, "OpenAI's own headers are not Azure's")

    const emb = await post(`${azure.url}/embeddings`, { model: 'prod-embed', input: 'x' }, { 'api-key': AZURE_KEY })
    assert.equal(emb.status, 200)
    assert.equal(((await emb.json()) as any).data.length, 1)

    assert.deepEqual(azure.violations, [])
    assert.deepEqual(
      azure.requests.map((r) => [r.path, r.headers['api-key'], r.headers.authorization]),
      [
        ['/openai/v1/chat/completions', AZURE_KEY, undefined],
        ['/openai/v1/embeddings', AZURE_KEY, undefined],
      ],
    )
  })

  test("Authorization, no api-key or a wrong one: Azure's 401, each recorded as a violation", async () => {
    const refused: Array<[Record<string, string>, RegExp]> = [
      [{ authorization: `Bearer ${AZURE_KEY}` }, /Authorization/],
      [{ authorization: `Bearer ${AZURE_KEY}`, 'api-key': AZURE_KEY }, /Authorization/],
      [{}, /missing api-key/],
      [{ 'api-key': 'not-the-key' }, /does not match/],
    ]
    for (const [headers, why] of refused) {
      const res = await post(`${azure.url}/chat/completions`, chatBody('prod-4o-mini'), headers)
      assert.equal(res.status, 401, JSON.stringify(headers))
      assert.deepEqual(await res.json(), AZURE_DENIED)
      const violation = azure.violations.at(-1)!
      assert.equal(violation.path, '/openai/v1/chat/completions')
      assert.match((violation.errors[0] as any).message, why)
    }
    assert.equal(azure.violations.length, refused.length)
  })

  test("OpenAI's paths are not Azure's: /v1/chat/completions is Azure's 404", async () => {
    const res = await post(`${azure.origin}/v1/chat/completions`, chatBody(), { 'api-key': AZURE_KEY })
    assert.equal(res.status, 404)
    assert.deepEqual(await res.json(), { error: { code: '404', message: 'Resource not found' } })
    assert.equal(azure.count('/chat/completions'), 0)
    assert.equal(azure.count(), 1)
  })

  test('a path naming its deployment: the name recorded, api-version required, model optional', async () => {
    const path = `${azure.origin}/openai/deployments/prod-4o-mini/chat/completions`
    const { messages } = chatBody() as { messages: unknown }
    const res = await post(`${path}?api-version=2024-10-21`, { messages }, { 'api-key': AZURE_KEY })
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as any).model, 'prod-4o-mini')
    assert.equal(azure.lastRequest()!.deployment, 'prod-4o-mini')
    assert.deepEqual(azure.lastRequest()!.json, { messages }, 'recorded as sent')
    assert.equal(azure.violations.length, 0)

    const bare = await post(path, { messages }, { 'api-key': AZURE_KEY })
    assert.equal(bare.status, 404)
    assert.deepEqual(await bare.json(), { error: { code: '404', message: 'Resource not found' } })
    assert.match((azure.violations[0]!.errors[0] as any).message, /api-version/)
  })

  test("the official SDK's AzureOpenAI client: api-key, the deployment path, api-version", async () => {
    const client = new AzureOpenAI({
      endpoint: azure.origin,
      apiKey: AZURE_KEY,
      apiVersion: '2024-10-21',
      maxRetries: 0,
    })
    const chat = await client.chat.completions.create({
      model: 'prod-4o-mini',
      messages: [{ role: 'user', content: 'sdk hi' }],
    })
    assert.equal(chat.choices[0]!.message.content, 'echo: sdk hi')
    const rec = azure.lastRequest()!
    assert.equal(rec.path, '/openai/deployments/prod-4o-mini/chat/completions?api-version=2024-10-21')
    assert.equal(rec.deployment, 'prod-4o-mini')
    assert.equal(rec.headers.authorization, undefined)
    assert.deepEqual(azure.violations, [])
  })

  test("models: a deployment not served is Azure's DeploymentNotFound; OpenAI's is model_not_found", async () => {
    const picky = await startFakeOpenAI({ flavour: 'azure', models: ['prod-4o-mini'] })
    const plain = await startFakeOpenAI({ models: ['gpt-4o-mini'] })
    try {
      const served = await post(`${picky.url}/chat/completions`, chatBody('prod-4o-mini'), { 'api-key': 'k' })
      assert.equal(served.status, 200)
      const res = await post(`${picky.url}/chat/completions`, chatBody('gpt-4o-mini'), { 'api-key': 'k' })
      assert.equal(res.status, 404)
      assert.equal(((await res.json()) as any).error.code, 'DeploymentNotFound')
      const byPath = await post(
        `${picky.origin}/openai/deployments/other/chat/completions?api-version=2024-10-21`,
        chatBody('prod-4o-mini'),
        { 'api-key': 'k' },
      )
      assert.equal(byPath.status, 404, "the path's deployment is the one that counts")

      assert.equal((await post(`${plain.url}/chat/completions`, chatBody(), BEARER)).status, 200)
      const unknown = await post(`${plain.url}/chat/completions`, chatBody('gpt-9'), BEARER)
      assert.equal(unknown.status, 404)
      const error = (await unknown.json()) as any
      assert.equal(validateOpenAIComponent('ErrorResponse', error), null)
      assert.equal(error.error.code, 'model_not_found')
      assert.match(error.error.message, /`gpt-9` does not exist/)
      assert.deepEqual([...picky.violations, ...plain.violations], [], 'an unserved model is an answer, not a breach')
    } finally {
      await picky.close()
      await plain.close()
    }
  })
})

describe('rate-limit headers', () => {
  test('setRateLimit: on every success and only then, off by default, undefined clears', async () => {
    const before = await post(`${openai.url}/chat/completions`, chatBody(), BEARER)
    assert.deepEqual(rateLimitHeadersOf(before), {}, 'none unless scripted')

    openai.setRateLimit({
      limitRequests: 500,
      remainingRequests: 499,
      resetRequests: '120ms',
      limitTokens: 30000,
      remainingTokens: 29000,
      resetTokens: 360_000,
    })
    const expected = {
      'x-ratelimit-limit-requests': '500',
      'x-ratelimit-remaining-requests': '499',
      'x-ratelimit-reset-requests': '120ms',
      'x-ratelimit-limit-tokens': '30000',
      'x-ratelimit-remaining-tokens': '29000',
      'x-ratelimit-reset-tokens': '6m0s',
    }
    assert.deepEqual(rateLimitHeadersOf(await post(`${openai.url}/chat/completions`, chatBody(), BEARER)), expected)
    const stream = await post(`${openai.url}/chat/completions`, { ...chatBody(), stream: true }, BEARER)
    assert.deepEqual(rateLimitHeadersOf(stream), expected, 'a stream too')
    await stream.text()
    const embeddings = await post(`${openai.url}/embeddings`, { model: 'm', input: 'x' }, BEARER)
    assert.deepEqual(rateLimitHeadersOf(embeddings), expected)
    assert.deepEqual(openai.lastRequest()!.responseHeaders!['x-ratelimit-reset-tokens'], '6m0s', 'recorded as sent')

    const refused = await post(`${openai.url}/chat/completions`, { model: 'm' }, BEARER)
    assert.equal(refused.status, 400)
    assert.deepEqual(rateLimitHeadersOf(refused), {}, 'an error carries none')

    openai.setRateLimit({ remainingRequests: 0 })
    assert.deepEqual(rateLimitHeadersOf(await post(`${openai.url}/chat/completions`, chatBody(), BEARER)), {
      'x-ratelimit-remaining-requests': '0',
    })
    openai.setRateLimit(undefined)
    assert.deepEqual(rateLimitHeadersOf(await post(`${openai.url}/chat/completions`, chatBody(), BEARER)), {})
  })

  test('the rateLimit option: from the first answer, on Azure too', async () => {
    const fake = await startFakeOpenAI({ flavour: 'azure', rateLimit: { remainingRequests: 9, remainingTokens: 900 } })
    try {
      const res = await post(`${fake.url}/chat/completions`, chatBody('prod'), { 'api-key': 'k' })
      assert.deepEqual(rateLimitHeadersOf(res), {
        'x-ratelimit-remaining-requests': '9',
        'x-ratelimit-remaining-tokens': '900',
      })
    } finally {
      await fake.close()
    }
  })

  test('resets given in milliseconds are written as Go durations', () => {
    const cases: Array<[number, string]> = [
      [0, '0s'],
      [20, '20ms'],
      [999, '999ms'],
      [1000, '1s'],
      [1500, '1.5s'],
      [17_142, '17.142s'],
      [60_000, '1m0s'],
      [360_000, '6m0s'],
      [179_560, '2m59.56s'],
      [3_600_000, '1h0m0s'],
      [3_723_500, '1h2m3.5s'],
    ]
    assert.deepEqual(
      cases.map(([ms]) => goDuration(ms)),
      cases.map(([, text]) => text),
    )
  })
})

describe('rate-limited calls', () => {
  test("a share of { of: 3 }: the third, sixth, ninth call get a 429 with Retry-After and OpenAI's body", async () => {
    openai.rateLimitShare({ of: 3 })
    assert.deepEqual(await statuses(openai, 9), [200, 200, 429, 200, 200, 429, 200, 200, 429])
    const limited = openai.requests.filter((r) => r.responseStatus === 429)
    assert.deepEqual(
      limited.map((r) => r.responseHeaders!['retry-after']),
      ['1', '1', '1'],
    )
    const error = JSON.parse(limited[0]!.responseBody!.toString())
    assert.equal(validateOpenAIComponent('ErrorResponse', error), null)
    assert.equal(error.error.code, 'rate_limit_exceeded')
    assert.equal(error.error.type, 'requests')
    assert.match(error.error.message, /^Rate limit reached for gpt-4o-mini .* Please try again in 1s\./)
    assert.equal(openai.count('/chat/completions'), 9)
  })

  test('2 of 5 calls to one path, with its Retry-After and headers; undefined stops it', async () => {
    openai.rateLimitShare({ limited: 2, of: 5, path: '/embeddings', retryAfterSeconds: 3, headers: { 'x-extra': 'y' } })
    assert.deepEqual(await statuses(openai, 3), [200, 200, 200], 'other paths neither count nor get 429s')
    const embed = { model: 'm', input: 'x' }
    assert.deepEqual(
      await statuses(openai, 10, '/embeddings', embed),
      [200, 200, 429, 200, 429, 200, 200, 429, 200, 429],
    )
    const limited = openai.requests.find((r) => r.responseStatus === 429)!
    assert.equal(limited.responseHeaders!['retry-after'], '3')
    assert.equal(limited.responseHeaders!['x-extra'], 'y')
    openai.rateLimitShare(undefined)
    assert.deepEqual(await statuses(openai, 5, '/embeddings', embed), [200, 200, 200, 200, 200])
    assert.throws(() => openai.rateLimitShare({ limited: 4, of: 3 }), /limited <= of/)
  })

  test('the rateLimitedShare option counts from the first call; reset() counts anew', async () => {
    const fake = await startFakeOpenAI({ rateLimitedShare: { of: 2 } })
    try {
      assert.deepEqual(await statuses(fake, 3), [200, 429, 200])
      fake.reset()
      assert.deepEqual(await statuses(fake, 2), [200, 429], 'the share stays, its count starts over')
    } finally {
      await fake.close()
    }
  })

  test('rateLimitFor: every call a 429 until the period ends, Retry-After the time left', async () => {
    openai.rateLimitFor(400, { 'x-ratelimit-reset-requests': '400ms' })
    const first = await post(`${openai.url}/chat/completions`, chatBody(), BEARER)
    assert.equal(first.status, 429)
    assert.equal(first.headers.get('retry-after'), '1')
    assert.equal(first.headers.get('x-ratelimit-reset-requests'), '400ms')
    assert.equal(((await first.json()) as any).error.code, 'rate_limit_exceeded')
    assert.equal((await post(`${openai.url}/embeddings`, { model: 'm', input: 'x' }, BEARER)).status, 429)
    await sleep(450)
    assert.deepEqual(await statuses(openai, 2), [200, 200])

    openai.rateLimitFor(2500)
    const long = await post(`${openai.url}/chat/completions`, chatBody(), BEARER)
    assert.equal(long.headers.get('retry-after'), '3', 'seconds left, rounded up')
    openai.rateLimitFor(0)
    assert.deepEqual(await statuses(openai, 1), [200], '0 ends it')
  })

  test('a 429 carries the scripted headers, with the requests used up', async () => {
    openai.setRateLimit({ limitRequests: 60, remainingRequests: 12, resetRequests: '1s' })
    openai.rateLimitFor(1000)
    const res = await post(`${openai.url}/chat/completions`, chatBody(), BEARER)
    assert.equal(res.status, 429)
    assert.deepEqual(rateLimitHeadersOf(res), {
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1s',
    })
    assert.match(((await res.json()) as any).error.message, /Limit 60, Used 60/)
  })

  test("Azure's 429: retry-after, retry-after-ms, what is left, and its message", async () => {
    azure.rateLimitFor(3000)
    const res = await post(`${azure.url}/chat/completions`, chatBody('prod-4o-mini'), { 'api-key': AZURE_KEY })
    assert.equal(res.status, 429)
    assert.equal(res.headers.get('retry-after'), '3')
    const ms = Number(res.headers.get('retry-after-ms'))
    assert.ok(ms > 2500 && ms <= 3000, `retry-after-ms ${ms}`)
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '0')
    assert.equal(res.headers.get('x-ratelimit-remaining-tokens'), '0')
    const body = (await res.json()) as any
    assert.deepEqual(Object.keys(body.error), ['code', 'message'])
    assert.equal(body.error.code, '429')
    assert.match(
      body.error.message,
      /^Requests to the ChatCompletions_Create Operation under Azure OpenAI API version v1 /,
    )
    assert.match(body.error.message, /have exceeded call rate limit .* Please retry after 3 seconds\./)

    azure.rateLimitFor(0)
    azure.rateLimitShare({ of: 1, retryAfterSeconds: 2 })
    const byPath = await post(
      `${azure.origin}/openai/deployments/prod-embed/embeddings?api-version=2024-10-21`,
      { input: 'x' },
      { 'api-key': AZURE_KEY },
    )
    assert.equal(byPath.status, 429)
    assert.equal(byPath.headers.get('retry-after-ms'), '2000')
    assert.match(
      ((await byPath.json()) as any).error.message,
      /^Requests to the Embeddings_Create Operation under Azure OpenAI API version 2024-10-21 .* retry after 2 seconds/,
    )
    assert.deepEqual(azure.violations, [])
  })
})

describe('several stand-ins', () => {
  test('each records and counts its own requests; record: false still counts', async () => {
    const a = await startFakeOpenAI()
    const b = await startFakeOpenAI({ record: false })
    const c = await startFakeOpenAI({ flavour: 'azure' })
    try {
      assert.equal(new Set([a.port, b.port, c.port]).size, 3)
      await statuses(a, 3)
      await statuses(b, 5)
      await statuses(b, 2, '/embeddings', { model: 'm', input: 'x' })
      for (let i = 0; i < 2; i++) await post(`${c.url}/chat/completions`, chatBody('prod'), { 'api-key': 'k' })
      assert.deepEqual([a.requests.length, b.requests.length, c.requests.length], [3, 0, 2])
      assert.deepEqual([a.count(), b.count(), c.count()], [3, 7, 2])
      assert.equal(b.count('/chat/completions'), 5)
      assert.equal(b.count('/v1/embeddings'), 2)
      assert.equal(c.count('/openai/v1/chat/completions'), 2)
      assert.equal(c.count('/chat/completions'), 2)
      assert.equal(a.count('/embeddings'), 0)
      assert.ok(c.requests.every((r) => r.headers['api-key'] === 'k'))
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
