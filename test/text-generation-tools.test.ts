import { describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { buildWithUpstream } from './support/app.ts'
import { postTask, refusedDetails, type TaskCall } from './support/task-call.ts'
import { weatherFunction as weather } from './support/fixtures.ts'

/**
 * Tool round trips through `chat-history`: the calls an answer asked for go back as an assistant
 * turn's `tool-calls`, each answered by a `tool` turn. What reaches the stand-in OpenAI is checked
 * exactly, and against OpenAI's contract (assistant `tool_calls`, tool `tool_call_id`).
 */

const URL = '/v1/tasks/text-generation'

const call = (id: string, city = 'Paris') => ({
  id,
  type: 'function',
  function: { name: 'get_weather', arguments: `{"city":"${city}"}` },
})
const question = { role: 'user', content: 'Weather in Paris and Oslo?' }
const asked = { role: 'assistant', content: null, 'tool-calls': [call('call_1'), call('call_2', 'Oslo')] }
const answers = [
  { role: 'tool', 'tool-call-id': 'call_1', content: '{"temperature_c":18}' },
  { role: 'tool', 'tool-call-id': 'call_2', content: '{"temperature_c":9}' },
]

const post = (t: TestContext, payload: object): Promise<TaskCall> => postTask(t, 'text-generation', payload)

async function sentMessages(t: TestContext, payload: object): Promise<unknown[]> {
  const { status, body, sent } = await post(t, payload)
  assert.equal(status, 200, JSON.stringify(body))
  return sent.messages
}

async function refused(t: TestContext, payload: object): Promise<Array<[string, string]>> {
  return refusedDetails(await post(t, payload))
}

describe('round trips', () => {
  test('calls and their results go out as assistant tool_calls and tool messages; an empty prompt is not sent', async (t) => {
    const messages = await sentMessages(t, {
      model: 'gpt-4.1-mini',
      prompt: '',
      'chat-history': [question, asked, ...answers],
      tools: [{ function: weather }],
    })
    assert.deepEqual(messages, [
      { role: 'user', content: 'Weather in Paris and Oslo?' },
      { role: 'assistant', content: null, tool_calls: [call('call_1'), call('call_2', 'Oslo')] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature_c":18}' },
      { role: 'tool', tool_call_id: 'call_2', content: '{"temperature_c":9}' },
    ])
  })

  test('a prompt after the tool results is the next user turn; calls without type or content, text parts', async (t) => {
    const messages = await sentMessages(t, {
      model: 'o4-mini',
      prompt: 'Answer in one sentence.',
      'chat-history': [
        question,
        { role: 'assistant', 'tool-calls': [{ id: 'call_1', function: call('call_1').function }] },
        {
          role: 'tool',
          'tool-call-id': 'call_1',
          content: [
            { type: 'text', text: '18 °C' },
            { type: 'text', text: 'cloudy' },
          ],
        },
      ],
      tools: [{ function: weather }],
    })
    assert.deepEqual(messages, [
      { role: 'user', content: 'Weather in Paris and Oslo?' },
      { role: 'assistant', content: null, tool_calls: [call('call_1')] },
      { role: 'tool', tool_call_id: 'call_1', content: '18 °C\ncloudy' },
      { role: 'user', content: [{ type: 'text', text: 'Answer in one sentence.' }] },
    ])
  })

  test('an assistant turn may carry text with its calls', async (t) => {
    const messages = await sentMessages(t, {
      model: 'gpt-4o',
      prompt: '',
      'chat-history': [
        { role: 'assistant', content: 'Let me check.', 'tool-calls': [call('call_9')] },
        { ...answers[0], 'tool-call-id': 'call_9' },
      ],
    })
    assert.deepEqual(messages.slice(0, 1), [
      { role: 'assistant', content: 'Let me check.', tool_calls: [call('call_9')] },
    ])
    assert.equal(messages.length, 2)
  })

  test("an answer's tool-calls, sent back with their results, reach OpenAI with the same ids", async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    const input = { model: 'gpt-4.1-mini', prompt: 'Weather in Paris?', tools: [{ function: weather }] }
    const first = await app.inject({ method: 'POST', url: URL, payload: { ...input, 'tool-choice': 'required' } })
    const calls = first.json()['tool-calls']
    assert.equal(calls.length, 1)
    assert.match(calls[0].id, /^call_/)

    const second = await app.inject({
      method: 'POST',
      url: URL,
      payload: {
        ...input,
        prompt: '',
        'chat-history': [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', 'tool-calls': calls },
          { role: 'tool', 'tool-call-id': calls[0].id, content: '18 °C' },
        ],
      },
    })
    assert.equal(second.statusCode, 200, second.body)
    const messages = upstream.requests[1]!.json.messages
    assert.deepEqual(messages.at(-2), { role: 'assistant', content: null, tool_calls: calls })
    assert.deepEqual(messages.at(-1), { role: 'tool', tool_call_id: calls[0].id, content: '18 °C' })
    assert.deepEqual(second.json().texts, ['echo: Weather in Paris?'])
  })
})

describe('turn shapes', () => {
  test('a tool turn needs its tool-call-id; other roles cannot carry one, nor tool-calls', async (t) => {
    const problems = await refused(t, {
      model: 'gpt-4o',
      prompt: 'x',
      'chat-history': [
        { role: 'user', content: 'Hi', 'tool-call-id': 'call_1', 'tool-calls': [call('call_1')] },
        { role: 'tool', content: 'result' },
      ],
    })
    assert.deepEqual(problems.sort(), [
      ['/chat-history/0/tool-call-id', 'is not supported with these settings'],
      ['/chat-history/0/tool-calls', 'is not supported with these settings'],
      ['/chat-history/1/tool-call-id', 'is required'],
    ])
  })

  test('only an assistant turn with tool-calls may go without content; null content elsewhere is a 400', async (t) => {
    const problems = await refused(t, {
      model: 'gpt-4o',
      prompt: 'x',
      'chat-history': [{ role: 'assistant' }, { role: 'user', content: null }, { role: 'assistant', content: null }],
    })
    assert.deepEqual(problems.sort(), [
      ['/chat-history/0/content', 'is required'],
      ['/chat-history/1/content', 'must not be null'],
      ['/chat-history/2/content', 'must not be null'],
    ])
  })

  test('a tool call needs an id, a name and arguments', async (t) => {
    const problems = await refused(t, {
      model: 'gpt-4o',
      prompt: 'x',
      'chat-history': [{ role: 'assistant', 'tool-calls': [{ function: { name: 'bad name' } }] }],
    })
    assert.deepEqual(problems.map(([path]) => path).sort(), [
      '/chat-history/0/tool-calls/0/function/arguments',
      '/chat-history/0/tool-calls/0/function/name',
      '/chat-history/0/tool-calls/0/id',
    ])
  })
})

describe('calls and answers must match', () => {
  test('a tool turn answering no call of the assistant turn before it is a 400', async (t) => {
    const problems = await refused(t, {
      model: 'gpt-4o',
      prompt: '',
      'chat-history': [question, asked, answers[0], { ...answers[1], 'tool-call-id': 'call_7' }],
    })
    assert.deepEqual(problems, [
      ['/chat-history/3/tool-call-id', 'must answer one of the unanswered tool-calls of chat-history 1'],
      ['/chat-history/1/tool-calls/1/id', 'has no tool turn answering it'],
    ])
  })

  test('a tool turn without a calling assistant turn right before it is a 400', async (t) => {
    const problems = await refused(t, {
      model: 'gpt-4o',
      prompt: '',
      'chat-history': [asked, ...answers, { role: 'user', content: 'again' }, answers[0]],
    })
    assert.deepEqual(problems, [
      ['/chat-history/4/tool-call-id', 'must answer a call of an assistant turn right before it'],
    ])
  })

  test('calls left unanswered, at the end of the history or before another turn, are a 400', async (t) => {
    const atEnd = await refused(t, { model: 'gpt-4o', prompt: 'x', 'chat-history': [question, asked, answers[0]] })
    assert.deepEqual(atEnd, [['/chat-history/1/tool-calls/1/id', 'has no tool turn answering it']])
    const beforeUser = await refused(t, { model: 'gpt-4o', prompt: 'x', 'chat-history': [asked, question] })
    assert.deepEqual(beforeUser, [
      ['/chat-history/0/tool-calls/0/id', 'has no tool turn answering it'],
      ['/chat-history/0/tool-calls/1/id', 'has no tool turn answering it'],
    ])
  })
})
