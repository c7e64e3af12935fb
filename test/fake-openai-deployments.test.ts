// The stand-in as the deployment tests use it: Azure's flavour, several at once, stop and restart.
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { AzureOpenAI } from 'openai'
import { startFakeOpenAI, validateOpenAIComponent, validateOpenAIResponse } from './support/fake-openai/index.ts'
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
