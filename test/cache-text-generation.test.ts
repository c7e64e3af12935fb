// Text generation's cache, over real sockets against the stand-in OpenAI, which records every call:
// only a request with `Cache-Control: max-age` reads or stores, per caller, keyed on the whole
// chat request; cut and refused answers are never stored; a cached answer replays as a stream.
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

/** A stream's events, by name, with their data parsed. */
async function streamed(
  served: Served,
  input: object,
  headers: Record<string, string> = {},
): Promise<{ cacheStatus: string | null; events: Array<{ event: string; data: any }> }> {
  const res = await fetch(served.base + SINGLE, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify(input),
  })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const events = (await res.text())
    .split('\n\n')
    .filter((block) => block.startsWith('event: '))
    .map((block) => {
      const [name, data] = block.split('\n')
      return { event: name!.slice('event: '.length), data: JSON.parse(data!.slice('data: '.length)) }
    })
  return { cacheStatus: res.headers.get('cache-status'), events }
}

test('a cached answer is replayed as a stream of the same events, and a whole stream is kept', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: 'gpt-4o-mini', prompt: 'Name a colour', n: 2 }
  const stored = await generate(served, input, ASKED)
  assert.equal(stored.cacheStatus, 'openai-tasks; fwd=miss; stored')
  const calls = chatCalls(served)

  const replay = await streamed(served, input, ASKED)
  assert.match(replay.cacheStatus ?? '', /^openai-tasks; hit; ttl=\d+$/)
  assert.equal(chatCalls(served), calls, 'the replay never reached OpenAI')
  const deltas = replay.events.filter(({ event }) => event === 'delta')
  assert.deepEqual(
    deltas.map(({ data }) => data),
    stored.body.texts.map((text: string, index: number) => ({ index, text })),
  )
  assert.deepEqual(
    replay.events.slice(-2).map(({ event }) => event),
    ['output', 'done'],
  )
  const output = replay.events.at(-2)!.data
  assert.equal(output.usage['cost-usd'], 0, 'a replay costs nothing')
  assert.deepEqual(output.texts, stored.body.texts)

  // Without max-age a stream goes to OpenAI, as a JSON request does.
  assert.equal((await streamed(served, input)).cacheStatus, 'openai-tasks; fwd=bypass')
  assert.equal(chatCalls(served), calls + 1)

  // A stream of another request is kept once whole, for the JSON route as for streams.
  const other = { model: 'gpt-4o-mini', prompt: 'Name a fruit' }
  const first = await streamed(served, other, ASKED)
  assert.equal(first.cacheStatus, 'openai-tasks; fwd=miss', 'stored or not is known only at its end')
  const json = await generate(served, other, ASKED)
  assert.match(json.cacheStatus ?? '', /; hit;/)
  assert.deepEqual(json.body.texts, first.events.at(-2)!.data.texts)
  assert.equal(chatCalls(served), calls + 2)
})

test('a cached answer with tool calls replays them; a stream cut short is never kept', async (t) => {
  const served = await serveWithUpstream(t)
  const input = {
    model: 'gpt-4o-mini',
    prompt: 'What is the weather in Lyon?',
    tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: {} } } }],
    'tool-choice': 'required',
  }
  const stored = await generate(served, input, ASKED)
  assert.ok(stored.body['tool-calls']?.length, JSON.stringify(stored.body))
  const replay = await streamed(served, input, ASKED)
  assert.match(replay.cacheStatus ?? '', /; hit;/)
  const fragments = replay.events.find(({ event, data }) => event === 'delta' && data['tool-calls'])!.data['tool-calls']
  assert.deepEqual(
    fragments.map(({ index: _index, ...call }: any) => call),
    stored.body['tool-calls'],
  )
  assert.deepEqual(replay.events.at(-2)!.data['tool-calls'], stored.body['tool-calls'])

  const cut = { model: 'gpt-4o-mini', prompt: 'A stream OpenAI drops' }
  served.upstream.enqueue({ kind: 'truncated-stream', path: CHAT, afterChunks: 2 })
  const dropped = await streamed(served, cut, ASKED)
  assert.equal(dropped.events.at(-1)!.event, 'error')
  const again = await streamed(served, cut, ASKED)
  assert.equal(again.cacheStatus, 'openai-tasks; fwd=miss', 'the cut stream was not kept')
  assert.equal(again.events.at(-1)!.event, 'done')
})

test('the batch route neither reads nor stores', async (t) => {
  const served = await serveWithUpstream(t)
  const input = { model: 'gpt-4o-mini', prompt: 'Name a colour' }
  const stored = await generate(served, input, ASKED)
  assert.equal(stored.cacheStatus, 'openai-tasks; fwd=miss; stored')
  const calls = chatCalls(served)
  const batch = await fetch(`${served.base}${SINGLE}/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...ASKED },
    body: JSON.stringify({ inputs: [input, input] }),
  })
  assert.equal(batch.status, 200)
  assert.equal(batch.headers.get('cache-status'), null, 'the batch route is not cached')
  assert.equal(chatCalls(served), calls + 2, 'both batch items went to OpenAI')
})
