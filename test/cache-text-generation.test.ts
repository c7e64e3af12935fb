// Text generation's cache, over real sockets against the stand-in OpenAI, which records every call:
// only a request with `Cache-Control: max-age` reads or stores, per caller, keyed on the whole
// chat request; cut, refused and streamed answers are never stored nor replayed.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { serveWithUpstream, type Served } from './support/app.ts'
import { metricSample } from './support/metric-sample.ts'

const SINGLE = '/v1/tasks/text-generation'
const CHAT = '/v1/chat/completions'
const ASKED = { 'cache-control': 'max-age=600' }

interface Answer {
  status: number
  cacheStatus: string | null
  cost: string | null
  body: any
}

async function generate(served: Served, input: object, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(served.base + SINGLE, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  })
  return {
    status: res.status,
    cacheStatus: res.headers.get('cache-status'),
    cost: res.headers.get('x-openai-tasks-cost-usd'),
    body: await res.json(),
  }
}

const chatCalls = (served: Served) => served.upstream.count(CHAT)

test('without max-age nothing is read or stored: each call reaches OpenAI and says fwd=bypass', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: 'gpt-4o-mini', prompt: 'Name a colour' }
  for (const headers of [{}, {}, { 'cache-control': 'no-cache' }] as Array<Record<string, string>>) {
    const answer = await generate(served, input, headers)
    assert.equal(answer.status, 200)
    assert.equal(answer.cacheStatus, 'openai-tasks; fwd=bypass')
  }
  assert.equal(chatCalls(served), 3)
  const answer = await generate(served, input, ASKED)
  assert.equal(answer.cacheStatus, 'openai-tasks; fwd=miss; stored', 'what the calls without max-age got was not kept')
  assert.equal(chatCalls(served), 4)
})

test('with max-age the same request is answered from the cache, at no cost, with the same texts and tool calls', async (t) => {
  const served = await serveWithUpstream(t)
  const inputs = [
    { model: 'gpt-4o-mini', prompt: 'Name a colour', temperature: 0.2 },
    {
      model: 'gpt-4o-mini',
      prompt: 'What is the weather in Lyon?',
      tools: [
        {
          type: 'function',
          function: {
            name: 'weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
    },
  ]
  for (const input of inputs) {
    const calls = chatCalls(served)
    const first = await generate(served, input, ASKED)
    assert.equal(first.status, 200, JSON.stringify(first.body))
    assert.equal(first.cacheStatus, 'openai-tasks; fwd=miss; stored')
    assert.ok(Number(first.cost) > 0, `the first call was paid for: ${first.cost}`)
    const second = await generate(served, input, { 'cache-control': 'max-age=60' })
    assert.equal(chatCalls(served), calls + 1, 'the second call never reached OpenAI')
    assert.match(second.cacheStatus ?? '', /^openai-tasks; hit; ttl=\d+$/)
    assert.equal(second.cost, '0', 'a hit costs nothing')
    assert.equal(second.body.usage['cost-usd'], 0)
    const { 'cost-usd': _paid, ...firstUsage } = first.body.usage
    const { 'cost-usd': _free, ...secondUsage } = second.body.usage
    assert.deepEqual({ ...second.body, usage: secondUsage }, { ...first.body, usage: firstUsage })
  }
  const metrics = await (await fetch(`${served.base}/metrics`)).text()
  assert.equal(
    metricSample(metrics, 'openai_tasks_cache_requests_total', { task: 'text-generation', result: 'hit' }),
    2,
  )
})

test('every field of the chat request is in the key, and another caller never sees the entry', async (t) => {
  const served = await serveWithUpstream(t, { SERVICE_TOKENS: 'token-of-pipeline-a-0001,token-of-pipeline-b-0002' })
  const as = (token: string) => ({ ...ASKED, authorization: `Bearer ${token}` })
  const base = { model: 'gpt-4o-mini', prompt: 'Name a colour' }
  const first = await generate(served, base, as('token-of-pipeline-a-0001'))
  assert.equal(first.cacheStatus, 'openai-tasks; fwd=miss; stored')
  const variants: object[] = [
    { ...base, model: 'gpt-4o' },
    { ...base, prompt: 'Name a colour.' },
    { ...base, 'system-message': 'Answer in French' },
    { ...base, temperature: 0.9 },
    { ...base, 'top-p': 0.5 },
    { ...base, seed: 7 },
    { ...base, n: 2 },
    { ...base, 'max-tokens': 500 },
    { ...base, 'presence-penalty': 0.5 },
    { ...base, 'frequency-penalty': 0.5 },
    { ...base, 'response-format': { type: 'json_object' } },
    { ...base, model: 'o3-mini', 'reasoning-effort': 'low' },
    { ...base, 'chat-history': [{ role: 'user', content: [{ type: 'text', text: 'Earlier' }] }] },
    {
      ...base,
      tools: [{ type: 'function', function: { name: 'paint', parameters: { type: 'object', properties: {} } } }],
    },
  ]
  for (const variant of variants) {
    const calls = chatCalls(served)
    const answer = await generate(served, variant, as('token-of-pipeline-a-0001'))
    assert.equal(answer.status, 200, `${JSON.stringify(variant)}: ${JSON.stringify(answer.body)}`)
    assert.equal(answer.cacheStatus, 'openai-tasks; fwd=miss; stored', `a miss for ${JSON.stringify(variant)}`)
    assert.equal(chatCalls(served), calls + 1)
  }
  const other = await generate(served, base, as('token-of-pipeline-b-0002'))
  assert.equal(other.cacheStatus, 'openai-tasks; fwd=miss; stored', "another caller's identical request misses")
  const again = await generate(served, base, as('token-of-pipeline-a-0001'))
  assert.match(again.cacheStatus ?? '', /^openai-tasks; hit/, 'the first caller still hits')
})

test('an answer cut at max-tokens, a refusal or an error is not stored', async (t) => {
  const served = await serveWithUpstream(t)
  const cut = { model: 'gpt-4o-mini', prompt: 'Tell a long story about the sea and its waves', 'max-tokens': 1 }
  for (let i = 0; i < 2; i++) {
    const answer = await generate(served, cut, ASKED)
    assert.equal(answer.status, 200)
    assert.equal(answer.cacheStatus, 'openai-tasks; fwd=miss', 'looked up, not stored')
  }
  assert.equal(chatCalls(served), 2)

  const refused = { model: 'gpt-4o-mini', prompt: 'Something the model refuses' }
  served.upstream.enqueue({
    kind: 'custom',
    path: CHAT,
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          id: 'chatcmpl-refused',
          object: 'chat.completion',
          created: 1,
          model: 'gpt-4o-mini',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: null, refusal: "I can't help with that." },
              finish_reason: 'stop',
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 },
        }),
      )
    },
  })
  const refusal = await generate(served, refused, ASKED)
  assert.deepEqual(refusal.body.texts, ["I can't help with that."])
  assert.equal(refusal.cacheStatus, 'openai-tasks; fwd=miss')
  const afterRefusal = await generate(served, refused, ASKED)
  assert.equal(afterRefusal.cacheStatus, 'openai-tasks; fwd=miss; stored', 'the refusal was not kept')
  assert.notDeepEqual(afterRefusal.body.texts, refusal.body.texts)

  const failing = { model: 'gpt-4o-mini', prompt: 'An OpenAI incident' }
  served.upstream.enqueue({ status: 400, path: CHAT })
  const failed = await generate(served, failing, ASKED)
  assert.equal(failed.status, 400)
  assert.equal(failed.body.error.code, 'ERR_UPSTREAM_BAD_REQUEST')
  const recovered = await generate(served, failing, ASKED)
  assert.equal(recovered.status, 200)
  assert.equal(recovered.cacheStatus, 'openai-tasks; fwd=miss; stored')
})

test('streams and the batch route neither read nor store', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: 'gpt-4o-mini', prompt: 'Name a colour' }
  const stored = await generate(served, input, ASKED)
  assert.equal(stored.cacheStatus, 'openai-tasks; fwd=miss; stored')
  const calls = chatCalls(served)

  const stream = await fetch(served.base + SINGLE, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...ASKED },
    body: JSON.stringify(input),
  })
  assert.equal(stream.status, 200)
  assert.match(await stream.text(), /event: output/)
  assert.equal(stream.headers.get('cache-status'), null, 'a stream is not cached')

  const batch = await fetch(`${served.base}${SINGLE}/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...ASKED },
    body: JSON.stringify({ inputs: [input, input] }),
  })
  assert.equal(batch.status, 200)
  assert.equal(batch.headers.get('cache-status'), null, 'the batch route is not cached')
  assert.equal(chatCalls(served), calls + 3, 'the stream and both batch items went to OpenAI')
})
