/**
 * Hostile bodies up to a route's limit: each is refused with a short 400 that names the field,
 * soon, while the process keeps answering others; nothing reaches the stand-in OpenAI.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { serveWithUpstream, type Served } from './support/app.ts'

const CHAT = '/v1/tasks/text-generation'
const EMBEDDINGS = '/v1/tasks/text-embeddings'
// Under a loaded machine a bounded refusal takes a second at worst; the unbounded one took ten.
const ANSWER_WITHIN_MS = 5_000

interface ErrorAnswer {
  status: number
  text: string
  error: {
    code: string
    message: string
    details: Array<{ field: string; path: string; message: string; keyword?: string }>
    'omitted-details'?: number
  }
}

async function post(served: Served, path: string, body: string): Promise<ErrorAnswer> {
  const res = await fetch(served.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(60_000),
  })
  const text = await res.text()
  return { status: res.status, text, ...(JSON.parse(text) as { error: ErrorAnswer['error'] }) }
}

/** `[1,1,...]` with `count` entries, written as text: building it as an array would cost more. */
function ones(count: number): string {
  return `[${'1,'.repeat(count - 1)}1]`
}

/** `{"a":{"a":...{}}}`, `levels` objects deep. */
function nested(levels: number): string {
  return '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1)
}

describe('a body with millions of problems', () => {
  test('is refused with its first problem, and the process answers others meanwhile', async (t) => {
    const served = await serveWithUpstream(t)
    // 2 MB of numbers where image strings go: unbounded, 124 MB of error body after 11 s.
    const hostile = post(served, CHAT, `{"model":"gpt-4o-mini","prompt":"hi","images":${ones(1_000_000)}}`)
    const started = Date.now()
    const health = await fetch(`${served.base}/healthz`, { signal: AbortSignal.timeout(60_000) })
    assert.equal(health.status, 200)
    assert.ok(Date.now() - started < ANSWER_WITHIN_MS, `/healthz answered in ${Date.now() - started} ms`)
    const answer = await hostile
    assert.ok(Date.now() - started < ANSWER_WITHIN_MS, `refused in ${Date.now() - started} ms`)
    assert.equal(answer.status, 400)
    assert.equal(answer.error.code, 'ERR_VALIDATION')
    assert.deepEqual(
      answer.error.details.map((d) => [d.path, d.keyword]),
      [['/images', 'maxItems']],
    )
    assert.match(answer.error.message, /images must NOT have more than 500 items/)
    assert.match(answer.error.message, /other problems were not looked for/)
    assert.ok(answer.text.length < 2_000, `error body of ${answer.text.length} bytes`)
    assert.equal(served.upstream.requests.length, 0)
  })

  test('of unknown keys is refused by the first unknown key', async (t) => {
    const served = await serveWithUpstream(t)
    // 90,000 unknown keys in an embeddings body under its 1 MiB limit: unbounded, a 14 MB answer.
    const keys = Array.from({ length: 90_000 }, (_, i) => `"k${i}":1`).join(',')
    const answer = await post(served, EMBEDDINGS, `{${keys},"model":"text-embedding-3-small","text":"hi"}`)
    assert.equal(answer.status, 400)
    assert.deepEqual(
      answer.error.details.map((d) => [d.field, d.message]),
      [['k0', 'is not a known field']],
    )
    assert.ok(answer.text.length < 2_000, `error body of ${answer.text.length} bytes`)
    assert.equal(served.upstream.requests.length, 0)
  })
})

describe('a body with many problems', () => {
  test('lists the first 20 and counts the others', async (t) => {
    const served = await serveWithUpstream(t)
    // Within every bound: each of the 300 problems is looked for.
    const answer = await post(served, CHAT, `{"model":7,"prompt":"hi","images":${ones(300)}}`)
    assert.equal(answer.status, 400)
    const { details, message } = answer.error
    assert.equal(details.length, 20)
    assert.deepEqual(details[0], { field: 'model', path: '/model', message: 'must be string', keyword: 'type' })
    assert.deepEqual(
      details.slice(1).map((d) => d.path),
      Array.from({ length: 19 }, (_, i) => `/images/${i}`),
    )
    assert.equal(answer.error['omitted-details'], 281)
    assert.match(message, /images\.18 must be string; and 281 more$/)
  })

  test('in a batch bounds each item error alone', async (t) => {
    const served = await serveWithUpstream(t)
    const item = `{"model":"gpt-4o-mini","prompt":"hi","images":${ones(100_000)}}`
    const res = await fetch(`${served.base}${CHAT}/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"inputs":[${item},{"model":"gpt-4o-mini","prompt":"hi","images":${ones(30)}},${item}]}`,
    })
    const text = await res.text()
    assert.equal(res.status, 200)
    assert.ok(text.length < 8_000, `batch answer of ${text.length} bytes`)
    const { outputs } = JSON.parse(text) as { outputs: Array<{ error: ErrorAnswer['error'] }> }
    assert.deepEqual(
      outputs.map((o) => [o.error.code, o.error.details.length, o.error['omitted-details']]),
      [
        ['ERR_VALIDATION', 1, undefined],
        ['ERR_VALIDATION', 20, 10],
        ['ERR_VALIDATION', 1, undefined],
      ],
    )
    assert.equal(served.upstream.requests.length, 0)
  })
})

describe('nesting', () => {
  const tool = (parameters: string): string =>
    `{"model":"gpt-4o-mini","prompt":"hi","tools":[{"function":{"name":"f","parameters":${parameters}}}]}`

  test('5,000 levels deep in tool parameters is a 400 naming the field', async (t) => {
    const served = await serveWithUpstream(t)
    const answer = await post(served, CHAT, tool(nested(5_000)))
    assert.equal(answer.status, 400)
    assert.deepEqual(
      answer.error.details.map((d) => [d.field, d.message]),
      [['tools.0.function.parameters.a', 'nests arrays and objects more than 64 levels deep']],
    )
    assert.equal(served.upstream.requests.length, 0)
  })

  test('5,000 levels deep in a JSON schema given as text is a 400 naming the field', async (t) => {
    const served = await serveWithUpstream(t)
    const body = {
      model: 'gpt-4o-mini',
      prompt: 'hi',
      'response-format': { type: 'json_schema', 'json-schema': nested(5_000) },
    }
    const answer = await post(served, CHAT, JSON.stringify(body))
    assert.equal(answer.status, 400)
    assert.deepEqual(
      answer.error.details.map((d) => [d.field, d.message]),
      [['response-format.json-schema', 'nests arrays and objects more than 64 levels deep']],
    )
    assert.equal(served.upstream.requests.length, 0)
  })

  test('up to 64 levels in all reaches OpenAI, one more does not', async (t) => {
    const served = await serveWithUpstream(t)
    // The body, tools, the tool and its function are four levels: parameters may nest 60 more.
    const deepest = await fetch(served.base + CHAT, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: tool(nested(60)),
    })
    assert.equal(deepest.status, 200, await deepest.text())
    const sent = served.upstream.requests[0]!.json as { tools: Array<{ function: { parameters: unknown } }> }
    assert.equal(JSON.stringify(sent.tools[0]!.function.parameters), nested(60))
    const deeper = await post(served, CHAT, tool(nested(61)))
    assert.equal(deeper.status, 400)
    assert.equal(served.upstream.requests.length, 1)
  })
})
