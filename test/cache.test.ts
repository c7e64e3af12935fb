// The embeddings cache over real sockets, against the stand-in OpenAI, which records every call
// it gets: what reaches OpenAI is the proof of a hit or a miss, `Cache-Status` says so too.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { serveWithUpstream, type Served } from './support/app.ts'
import { openAIError, startFakeOpenAI } from './support/fake-openai/index.ts'
import { SpanKind } from './support/otlp-receiver.ts'
import { startTracedService } from './support/traced-service.ts'
import { metricSample } from './support/metric-sample.ts'

const SINGLE = '/v1/tasks/text-embeddings'
const BATCH = '/v1/tasks/text-embeddings/batch'
const SMALL = 'text-embedding-3-small'
const DAY_S = 24 * 60 * 60

interface Answer {
  status: number
  cacheStatus: string | null
  body: any
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  return { status: res.status, cacheStatus: res.headers.get('cache-status'), body: await res.json() }
}

const embed = (served: Served, input: object, headers?: Record<string, string>) =>
  post(served.base, SINGLE, input, headers)
const embedBatch = (served: Served, inputs: object[], headers?: Record<string, string>) =>
  post(served.base, BATCH, { inputs }, headers)

/** The embeddings calls that reached the stand-in since `from`, as the bodies it got. */
function callsSince(served: Served, from: number): any[] {
  return served.upstream.requests.slice(from).map((request) => request.json)
}

/** One sample of the service's /metrics, 0 when absent. */
async function sample(served: Served, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricSample(await (await fetch(`${served.base}/metrics`)).text(), name, labels)
}

/** The `ttl` a hit's Cache-Status gives. */
function ttlOf(cacheStatus: string | null): number {
  const match = /^openai-tasks; hit; ttl=(\d+)(?:;|$)/.exec(cacheStatus ?? '')
  assert.ok(match, `a hit with a ttl: ${cacheStatus}`)
  return Number(match[1])
}

test('the second identical call reaches OpenAI 0 times and answers the same vector, at no token cost', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: SMALL, text: 'The quick brown fox', dimensions: 256 }
  const first = await embed(served, input)
  assert.equal(first.status, 200)
  assert.equal(first.cacheStatus, 'openai-tasks; fwd=miss; stored')
  assert.equal(served.upstream.requests.length, 1)
  const tokens = await sample(served, 'openai_tasks_tokens_total', { task: 'text-embeddings', kind: 'prompt' })
  assert.ok(tokens > 0)

  const second = await embed(served, input)
  assert.equal(second.status, 200)
  assert.equal(served.upstream.requests.length, 1, 'no second call to OpenAI')
  assert.deepEqual(second.body, first.body)
  assert.equal(second.body.embedding.length, 256)
  const ttl = ttlOf(second.cacheStatus)
  assert.ok(ttl <= DAY_S && ttl >= DAY_S - 60, `about CACHE_TTL_MS's 24 h left: ${ttl}`)

  assert.equal(
    await sample(served, 'openai_tasks_tokens_total', { task: 'text-embeddings', kind: 'prompt' }),
    tokens,
    'a hit counts no tokens',
  )
  const requests = (result: string) =>
    sample(served, 'openai_tasks_cache_requests_total', { task: 'text-embeddings', result })
  assert.equal(await requests('miss'), 1)
  assert.equal(await requests('hit'), 1)
  assert.equal(await sample(served, 'openai_tasks_cache_items_total', { result: 'hit' }), 1)
  assert.equal(await sample(served, 'openai_tasks_cache_items_total', { result: 'miss' }), 1)
  assert.ok((await sample(served, 'openai_tasks_cache_bytes')) > 256 * 5, 'the vector is held in memory')

  // The other tasks are cached only when asked (max-age): without it, each call goes to OpenAI.
  for (let i = 0; i < 2; i++) {
    const res = await post(served.base, '/v1/tasks/text-to-image', { prompt: 'a red circle', size: '256x256' })
    assert.equal(res.status, 200)
    assert.equal(res.cacheStatus, 'openai-tasks; fwd=bypass')
  }
  assert.equal(served.upstream.requests.length, 3)
})

test('a batch of 10 items, 4 seen before, sends exactly the 6 others in one call and answers in order', async (t) => {
  const served = await serveWithUpstream(t)
  const texts = Array.from({ length: 10 }, (_, i) => `document number ${i}`)
  const inputs = texts.map((text) => ({ model: SMALL, text, dimensions: 64 }))
  const seen = [1, 3, 6, 8]
  // Seen before: two through the single route, two in a batch of their own.
  for (const i of seen.slice(0, 2)) assert.equal((await embed(served, inputs[i]!)).status, 200)
  assert.equal(
    (
      await embedBatch(
        served,
        seen.slice(2).map((i) => inputs[i]!),
      )
    ).status,
    200,
  )
  const before = served.upstream.requests.length

  const batch = await embedBatch(served, inputs)
  assert.equal(batch.status, 200)
  const calls = callsSince(served, before)
  assert.equal(calls.length, 1, 'one call for the items not seen')
  assert.deepEqual(
    calls[0].input,
    [0, 2, 4, 5, 7, 9].map((i) => texts[i]),
  )
  assert.equal(batch.cacheStatus, 'openai-tasks; fwd=partial; stored; detail="4 of 10 items"')

  // In order: each output is the vector that text has on its own.
  const one = await startFakeOpenAI()
  t.after(() => one.close())
  const alone = await serveWithUpstream(t, { OPENAI_BASE_URL: one.url })
  const expected = await embedBatch(alone, inputs)
  assert.deepEqual(batch.body.outputs, expected.body.outputs)

  const again = await embedBatch(served, inputs)
  assert.equal(served.upstream.requests.length, before + 1, 'all ten from the cache now')
  assert.deepEqual(again.body.outputs, batch.body.outputs)
  assert.match(again.cacheStatus!, /^openai-tasks; hit; ttl=\d+; detail="10 of 10 items"$/)
  assert.equal(await sample(served, 'openai_tasks_cache_requests_total', { result: 'partial' }), 1)
})

test('another service token misses what one token cached', async (t) => {
  const served = await serveWithUpstream(t, { SERVICE_TOKENS: 'svc-token-a-123,svc-token-b-456' })
  const input = { model: SMALL, text: 'shared text', dimensions: 64 }
  const as = (token: string) => ({ authorization: `Bearer ${token}` })
  assert.equal((await embed(served, input, as('svc-token-a-123'))).cacheStatus, 'openai-tasks; fwd=miss; stored')
  assert.match((await embed(served, input, as('svc-token-a-123'))).cacheStatus!, /; hit;/)
  assert.equal(served.upstream.requests.length, 1)
  const other = await embed(served, input, as('svc-token-b-456'))
  assert.equal(other.status, 200)
  assert.equal(other.cacheStatus, 'openai-tasks; fwd=miss; stored')
  assert.equal(served.upstream.requests.length, 2, 'the second token has a cache of its own')
})

test("callers' own OpenAI keys are two scopes, with or without service tokens", async (t) => {
  const input = { model: SMALL, text: 'paid by the caller', dimensions: 64 }
  const keyA = 'sk-caller-a-0123456789'
  const keyB = 'sk-caller-b-0123456789'
  // No server key: each caller sends its own as the bearer token.
  const open = await serveWithUpstream(t, { OPENAI_API_KEY: '' })
  await embed(open, input, { authorization: `Bearer ${keyA}` })
  assert.match((await embed(open, input, { authorization: `Bearer ${keyA}` })).cacheStatus!, /; hit;/)
  const other = await embed(open, input, { authorization: `Bearer ${keyB}` })
  assert.equal(other.cacheStatus, 'openai-tasks; fwd=miss; stored')
  assert.equal(open.upstream.requests.length, 2)
  assert.equal(open.upstream.requests[1]!.headers.authorization, `Bearer ${keyB}`)

  // One service token, the server's key and two callers' own keys: three scopes.
  const tokens = await serveWithUpstream(t, { SERVICE_TOKENS: 'svc-token-a-123', ALLOW_CALLER_API_KEYS: 'true' })
  const token = { authorization: 'Bearer svc-token-a-123' }
  for (const headers of [token, { ...token, 'x-openai-api-key': keyA }, { ...token, 'x-openai-api-key': keyB }]) {
    assert.equal((await embed(tokens, input, headers)).cacheStatus, 'openai-tasks; fwd=miss; stored')
  }
  assert.equal(tokens.upstream.requests.length, 3)
  assert.match((await embed(tokens, input, { ...token, 'x-openai-api-key': keyA })).cacheStatus!, /; hit;/)
  assert.equal(tokens.upstream.requests.length, 3)
})

test('every field of the OpenAI request is in the key; a field that does not reach OpenAI is not', async (t) => {
  const served = await serveWithUpstream(t)
  const base = { model: SMALL, text: 'a sentence to embed', dimensions: 256 }
  assert.equal((await embed(served, base)).status, 200)
  const variants: Array<[field: string, input: object]> = [
    ['model', { ...base, model: 'text-embedding-3-large' }],
    ['dimensions', { ...base, dimensions: 512 }],
    ['dimensions left out', { model: SMALL, text: base.text }],
    ['text', { ...base, text: 'a sentence to embed.' }],
    ['text, one space more', { ...base, text: 'a sentence to embed ' }],
    ['text, another case', { ...base, text: 'A sentence to embed' }],
  ]
  for (const [field, input] of variants) {
    const before = served.upstream.requests.length
    const res = await embed(served, input)
    assert.equal(res.status, 200, field)
    assert.equal(res.cacheStatus, 'openai-tasks; fwd=miss; stored', `${field} changes the key`)
    assert.equal(served.upstream.requests.length, before + 1, `${field}: OpenAI is asked`)
  }
  const before = served.upstream.requests.length
  for (const input of [
    base,
    { task: 'TASK_TEXT_EMBEDDINGS', ...base },
    { dimensions: 256, text: base.text, model: SMALL },
  ]) {
    assert.match((await embed(served, input)).cacheStatus!, /; hit;/, JSON.stringify(input))
  }
  assert.equal(served.upstream.requests.length, before, 'the same OpenAI request, in any field order: hits')
})

test('Cache-Control: no-cache fetches afresh and stores, no-store neither reads nor stores', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: SMALL, text: 'controlled by the caller', dimensions: 64 }
  await embed(served, input)
  const refreshed = await embed(served, input, { 'cache-control': 'no-cache' })
  assert.equal(refreshed.cacheStatus, 'openai-tasks; fwd=request; stored')
  assert.equal(served.upstream.requests.length, 2, 'no-cache went to OpenAI though cached')

  const notRead = await embed(served, input, { 'cache-control': 'no-store' })
  assert.equal(notRead.cacheStatus, 'openai-tasks; fwd=bypass')
  assert.equal(served.upstream.requests.length, 3, 'no-store went to OpenAI though cached')

  const fresh = { ...input, text: 'never stored' }
  assert.equal(
    (await embed(served, fresh, { 'cache-control': 'private, No-Store' })).cacheStatus,
    'openai-tasks; fwd=bypass',
  )
  const after = await embed(served, fresh)
  assert.equal(after.cacheStatus, 'openai-tasks; fwd=miss; stored', 'what no-store fetched was not stored')
  assert.equal(served.upstream.requests.length, 5)

  const batch = await embedBatch(served, [input, fresh], { 'cache-control': 'no-cache' })
  assert.equal(batch.cacheStatus, 'openai-tasks; fwd=request; stored; detail="0 of 2 items"')
  assert.deepEqual(callsSince(served, 5)[0].input, [input.text, fresh.text])
})

test('Cache-Control: max-age takes only entries young enough, and shortens what it stores', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: SMALL, text: 'how old may it be', dimensions: 64 }
  await embed(served, input)
  const young = await embed(served, input, { 'cache-control': 'max-age=60' })
  assert.ok(ttlOf(young.cacheStatus) <= 60, 'freshness left for this caller: at most its max-age')
  assert.equal(served.upstream.requests.length, 1)

  await sleep(1_100)
  const stale = await embed(served, input, { 'cache-control': 'max-age=1' })
  assert.equal(stale.cacheStatus, 'openai-tasks; fwd=stale; stored', 'older than a second: fetched again')
  assert.equal(served.upstream.requests.length, 2)

  // What max-age=1 stored lives a second, not CACHE_TTL_MS.
  const short = await embed(served, input)
  assert.ok(ttlOf(short.cacheStatus) <= 1)
  await sleep(1_100)
  assert.equal((await embed(served, input)).cacheStatus, 'openai-tasks; fwd=miss; stored', 'expired')
  assert.equal(served.upstream.requests.length, 3)

  assert.equal(
    (await embed(served, { ...input, text: 'max-age=0' }, { 'cache-control': 'max-age=0' })).cacheStatus,
    'openai-tasks; fwd=miss',
  )
  assert.equal(
    (await embed(served, { ...input, text: 'max-age=0' })).cacheStatus,
    'openai-tasks; fwd=miss; stored',
    'max-age=0 stored nothing',
  )
})

test('errors are not stored: a failed call, then the same call reaches OpenAI and succeeds', async (t) => {
  const served = await serveWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  const input = { model: SMALL, text: 'fails once', dimensions: 64 }
  served.upstream.enqueue({ status: 500, body: openAIError(500, 'The server had an error') })
  const failed = await embed(served, input)
  assert.equal(failed.status, 502)
  assert.equal(failed.cacheStatus, 'openai-tasks; fwd=miss', 'an error answer says it was not stored')
  const ok = await embed(served, input)
  assert.equal(ok.status, 200)
  assert.equal(ok.cacheStatus, 'openai-tasks; fwd=miss; stored')
  assert.equal(served.upstream.requests.length, 2)
})

test('a batch item whose embedding OpenAI left out is not stored; the others are', async (t) => {
  const served = await serveWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  let dropLast = true
  served.upstream.setHandler('/v1/embeddings', (_req, res, recorded) => {
    const body = JSON.parse(recorded.raw.toString())
    const texts: string[] = body.input
    const kept = dropLast ? texts.slice(0, -1) : texts
    const data = kept.map((_text, index) => ({ object: 'embedding', index, embedding: [index, 0.5] }))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ object: 'list', data, model: body.model, usage: { prompt_tokens: 3, total_tokens: 3 } }))
  })
  const inputs = ['one', 'two', 'three'].map((text) => ({ model: SMALL, text }))
  const first = await embedBatch(served, inputs)
  assert.equal(first.body.outputs[2].error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
  dropLast = false
  const second = await embedBatch(served, inputs)
  assert.deepEqual(callsSince(served, 1)[0].input, ['three'], 'only the item that failed goes again')
  assert.equal(second.cacheStatus, 'openai-tasks; fwd=partial; stored; detail="2 of 3 items"')
  assert.deepEqual(second.body.outputs.slice(0, 2), first.body.outputs.slice(0, 2))
})

test('memory stays bounded: no entry over CACHE_MAX_ENTRY_BYTES, and CACHE_MAX_BYTES evicts', async (t) => {
  // 64 floats as JSON are about 1.3 kB, 3,072 about 60 kB.
  const served = await serveWithUpstream(t, { CACHE_MAX_ENTRY_BYTES: '10000', CACHE_MAX_BYTES: '8000' })
  const large = { model: 'text-embedding-3-large', text: 'a long vector' }
  assert.equal((await embed(served, large)).cacheStatus, 'openai-tasks; fwd=miss', 'too large to store')
  assert.equal((await embed(served, large)).cacheStatus, 'openai-tasks; fwd=miss')
  assert.equal(served.upstream.requests.length, 2)
  assert.equal(await sample(served, 'openai_tasks_cache_stores_total', { result: 'too-large' }), 2)

  const texts = Array.from({ length: 8 }, (_, i) => `small vector ${i}`)
  for (const text of texts) await embed(served, { model: SMALL, text, dimensions: 64 })
  assert.ok((await sample(served, 'openai_tasks_cache_bytes')) <= 8000, 'within CACHE_MAX_BYTES')
  assert.ok((await sample(served, 'openai_tasks_cache_evictions_total')) >= 3, 'the oldest made room')
  const before = served.upstream.requests.length
  assert.match((await embed(served, { model: SMALL, text: texts[7]!, dimensions: 64 })).cacheStatus!, /; hit;/)
  const oldest = await embed(served, { model: SMALL, text: texts[0]!, dimensions: 64 })
  assert.equal(oldest.cacheStatus, 'openai-tasks; fwd=miss; stored', 'the least recently used was evicted')
  assert.equal(served.upstream.requests.length, before + 1)
})

test('CACHE=off: every call goes to OpenAI and says fwd=bypass', async (t) => {
  const served = await serveWithUpstream(t, { CACHE: 'off' })
  const input = { model: SMALL, text: 'no cache at all', dimensions: 64 }
  for (let i = 0; i < 2; i++) assert.equal((await embed(served, input)).cacheStatus, 'openai-tasks; fwd=bypass')
  assert.equal((await embedBatch(served, [input])).cacheStatus, 'openai-tasks; fwd=bypass')
  assert.equal(served.upstream.requests.length, 3)
  assert.equal(await sample(served, 'openai_tasks_cache_requests_total', { result: 'bypass' }), 3)
})

test('the request span says hit or miss', async (t) => {
  const { upstream, receiver, server } = await startTracedService(t, { MAX_EVENT_LOOP_DELAY_MS: '0' })
  const input = { model: SMALL, text: 'traced', dimensions: 64 }
  await post(server.base, SINGLE, input)
  await post(server.base, SINGLE, input)
  await post(server.base, BATCH, { inputs: [input, { ...input, text: 'traced too' }] })
  const spans = await receiver.waitForSpans((s) => s.kind === SpanKind.SERVER, 3)
  const requests = spans.sort((a, b) => (a.startNs < b.startNs ? -1 : 1))
  assert.deepEqual(
    requests.map((s) => [s.attributes['openai_tasks.cache'], s.attributes['openai_tasks.cache.hits']]),
    [
      ['miss', undefined],
      ['hit', undefined],
      ['partial', 1],
    ],
  )
  assert.equal(upstream.requests.length, 2)
})
