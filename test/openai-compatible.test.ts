import { describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { serveWithUpstream } from './support/app.ts'
import { openAICompatibleChat, type CompatibleChatOptions, type FakeOpenAI } from './support/fake-openai/index.ts'

/**
 * Answers of OpenAI-compatible servers (vLLM, Ollama, LM Studio), which depart from OpenAI's in
 * small ways: streams without `[DONE]`, choices without `index`, tool calls without `type`, null
 * contents, no usage. Each is read as OpenAI's own answer would be, on the JSON route and in SSE.
 */

const URL = '/v1/tasks/text-generation'
const SIMPLE = { model: 'llama3.1', prompt: 'Say hi' }
const FORCED_TOOL = {
  model: 'qwen2.5',
  prompt: 'Weather in Paris?',
  tools: [
    {
      function: {
        name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string', const: 'Paris' } } },
      },
    },
  ],
  'tool-choice': 'required',
}

interface SseEvent {
  event: string
  data: any
}

async function ask(
  t: TestContext,
  input: object,
  options: CompatibleChatOptions,
  stream: boolean,
): Promise<{ status: number; json?: any; events?: SseEvent[]; upstream: FakeOpenAI }> {
  const { upstream, base } = await serveWithUpstream(t)
  upstream.enqueue({ kind: 'custom', path: '/chat/completions', handler: openAICompatibleChat(options) })
  const res = await fetch(base + URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' },
    body: JSON.stringify(input),
  })
  const text = await res.text()
  if (!stream) return { status: res.status, json: JSON.parse(text), upstream }
  const events = text
    .split('\n\n')
    .filter((block) => block.startsWith('event: '))
    .map((block) => {
      const [event, data] = block.split('\n')
      return { event: event!.slice('event: '.length), data: JSON.parse(data!.slice('data: '.length)) }
    })
  return { status: res.status, events, upstream }
}

const names = (events: SseEvent[]): string => events.map((e) => e.event).join(',')
const outputOf = (events: SseEvent[]): any => events.find((e) => e.event === 'output')?.data

describe('a stream without [DONE]', () => {
  test('is complete once its choice finished: output and done', async (t) => {
    const { events, upstream } = await ask(t, SIMPLE, { noDone: true }, true)
    assert.ok(!upstream.requests[0]!.responseBody!.toString().includes('[DONE]'), 'the stand-in sent no [DONE]')
    assert.match(names(events!), /^(delta,)+output,done$/)
    assert.deepEqual(outputOf(events!).texts, ['echo: Say hi'])
  })

  test('is complete once every choice of n finished', async (t) => {
    const { events } = await ask(t, { ...SIMPLE, n: 2 }, { noDone: true }, true)
    assert.match(names(events!), /^(delta,)+output,done$/)
    assert.deepEqual(outputOf(events!).texts, ['echo: Say hi', 'echo: Say hi (#2)'])
  })

  test('cut short before a choice finished is still an error', async (t) => {
    // Choice 0 finished, choice 1 never came: n = 2 was asked for.
    const { events, upstream } = await ask(t, { ...SIMPLE, n: 2 }, { noDone: true, events: 5 }, true)
    const sent = upstream.requests[0]!.responseBody!.toString()
    assert.match(sent, /"finish_reason":"stop"/, 'choice 0 finished')
    assert.doesNotMatch(sent, /"index":1/, 'choice 1 never started')
    assert.equal(events!.at(-1)!.event, 'error', names(events!))
    assert.equal(events!.at(-1)!.data.error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
    assert.ok(!events!.some((e) => e.event === 'output'))
  })
})

describe('choices without index', () => {
  test('are choice 0 in the stream: the text is kept', async (t) => {
    const { events, upstream } = await ask(t, SIMPLE, { noChoiceIndex: true }, true)
    assert.doesNotMatch(upstream.requests[0]!.responseBody!.toString(), /"index"/, 'the stand-in sent no index')
    const deltas = events!.filter((e) => e.event === 'delta')
    assert.ok(deltas.length >= 2)
    assert.ok(deltas.every((e) => e.data.index === 0))
    assert.equal(deltas.map((e) => e.data.text).join(''), 'echo: Say hi')
    assert.deepEqual(outputOf(events!).texts, ['echo: Say hi'])
  })
})

describe('tool calls without type', () => {
  for (const stream of [false, true]) {
    test(`are function calls on the ${stream ? 'SSE' : 'JSON'} route`, async (t) => {
      const { status, json, events, upstream } = await ask(t, FORCED_TOOL, { noToolType: true }, stream)
      assert.equal(status, 200)
      assert.doesNotMatch(
        upstream.requests[0]!.responseBody!.toString(),
        /"type":"function"/,
        'the stand-in sent no type',
      )
      const output = stream ? outputOf(events!) : json
      assert.deepEqual(output.texts, [''])
      assert.equal(output['tool-calls'].length, 1)
      const [toolCall] = output['tool-calls']
      assert.match(toolCall.id, /^call_/)
      assert.deepEqual(toolCall, {
        id: toolCall.id,
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
      })
    })
  }
})

describe('null contents and no usage', () => {
  for (const stream of [false, true]) {
    test(`text answers on the ${stream ? 'SSE' : 'JSON'} route`, async (t) => {
      const { status, json, events, upstream } = await ask(t, SIMPLE, { nullContent: true, noUsage: true }, stream)
      assert.equal(status, 200)
      const answered = upstream.requests[0]!.responseBody!.toString()
      assert.doesNotMatch(answered, /"usage"/)
      if (stream) assert.match(answered, /"content":null/)
      const output = stream ? outputOf(events!) : json
      assert.deepEqual(output, { texts: ['echo: Say hi'] })
    })

    test(`tool-call answers on the ${stream ? 'SSE' : 'JSON'} route`, async (t) => {
      const { json, events, upstream } = await ask(
        t,
        FORCED_TOOL,
        { nullContent: true, noUsage: true, noDone: true },
        stream,
      )
      assert.match(upstream.requests[0]!.responseBody!.toString(), /"content":null/)
      const output = stream ? outputOf(events!) : json
      assert.deepEqual(Object.keys(output).sort(), ['texts', 'tool-calls'])
      assert.deepEqual(output.texts, [''])
    })
  }
})
