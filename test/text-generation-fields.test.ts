import { describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { buildWithUpstream } from './support/app.ts'
import { postTask, refusedDetails, type TaskCall } from './support/task-call.ts'

/**
 * The fields added for current models (reasoning effort, verbosity, stop, seed, parallel tool
 * calls) and the per-family checks: what each model family refuses is a 400 naming the field,
 * before any call to OpenAI; what it takes goes out exactly as given.
 */

const URL = '/v1/tasks/text-generation'

const user = (text: string) => ({ role: 'user', content: [{ type: 'text', text }] })
const ping = { function: { name: 'ping' } }

const post = (t: TestContext, payload: object): Promise<TaskCall> => postTask(t, 'text-generation', payload)

/** Posts, expects a 200, and returns the JSON that reached OpenAI. */
async function sent(t: TestContext, payload: object): Promise<any> {
  const { status, body, sent } = await post(t, payload)
  assert.equal(status, 200, JSON.stringify(body))
  return sent
}

/** Posts, expects a 400 ERR_VALIDATION with no call to OpenAI; returns [path, message] pairs. */
async function refused(t: TestContext, payload: object): Promise<Array<[string, string]>> {
  return refusedDetails(await post(t, payload))
}

const pathsOf = (problems: Array<[string, string]>): string[] => problems.map(([path]) => path).sort()

describe('new fields go out as given', () => {
  test('gpt-5.4 with reasoning-effort and verbosity', async (t) => {
    const body = await sent(t, {
      model: 'gpt-5.4',
      prompt: 'Why is the sky blue?',
      'reasoning-effort': 'low',
      verbosity: 'low',
    })
    assert.deepEqual(body, {
      model: 'gpt-5.4',
      messages: [user('Why is the sky blue?')],
      reasoning_effort: 'low',
      verbosity: 'low',
    })
  })

  // xhigh and max are in OpenAI's contract too: the stand-in checks every request against it.
  for (const effort of ['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']) {
    test(`reasoning-effort ${effort} is sent to a reasoning model`, async (t) => {
      assert.equal((await sent(t, { model: 'o3', prompt: 'x', 'reasoning-effort': effort })).reasoning_effort, effort)
    })
  }

  test('an effort outside the list is a 400', async (t) => {
    assert.deepEqual(pathsOf(await refused(t, { model: 'o3', prompt: 'x', 'reasoning-effort': 'extreme' })), [
      '/reasoning-effort',
    ])
  })

  test('stop as a string and as a list, seed, parallel-tool-calls', async (t) => {
    assert.equal((await sent(t, { model: 'gpt-4.1', prompt: 'x', stop: 'END' })).stop, 'END')
    const body = await sent(t, {
      model: 'gpt-4.1',
      prompt: 'x',
      stop: ['\n\n', 'END'],
      seed: 42,
      tools: [ping],
      'parallel-tool-calls': false,
    })
    assert.deepEqual(body, {
      model: 'gpt-4.1',
      messages: [user('x')],
      stop: ['\n\n', 'END'],
      seed: 42,
      parallel_tool_calls: false,
      tools: [{ type: 'function', function: { name: 'ping' } }],
    })
  })

  test('stop of more than 4 sequences, or empty ones, a fractional or unsafe seed are 400s', async (t) => {
    const problems = await refused(t, { model: 'gpt-4.1', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'], seed: 1.5 })
    assert.deepEqual([...new Set(pathsOf(problems))], ['/seed', '/stop'])
    assert.deepEqual([...new Set(pathsOf(await refused(t, { model: 'gpt-4.1', prompt: 'x', stop: '' })))], ['/stop'])
    assert.deepEqual(pathsOf(await refused(t, { model: 'gpt-4.1', prompt: 'x', seed: 2 ** 53 })), ['/seed'])
  })

  test('parallel-tool-calls without tools is a 400 naming tools', async (t) => {
    const problems = await refused(t, { model: 'gpt-4.1', prompt: 'x', 'parallel-tool-calls': true })
    assert.deepEqual(problems, [['/tools', 'is required when parallel-tool-calls is given']])
  })
})

describe('reasoning models', () => {
  for (const model of ['o1', 'o3-mini', 'gpt-5', 'gpt-5.4', 'ft:o4-mini-2025-04-16:acme:support:AbC123']) {
    test(`${model}: sampling settings, penalties and stop are refused by name`, async (t) => {
      const problems = await refused(t, {
        model,
        prompt: 'x',
        temperature: 1,
        'top-p': 0.5,
        'presence-penalty': 0,
        'frequency-penalty': 0.5,
        stop: 'END',
        'max-tokens': 100,
      })
      assert.deepEqual(pathsOf(problems), [
        '/frequency-penalty',
        '/presence-penalty',
        '/stop',
        '/temperature',
        '/top-p',
      ])
      for (const [, message] of problems) {
        assert.match(message, new RegExp(`not taken by ${model.replace(/[.]/g, '\\.')}, a reasoning model`))
      }
    })
  }

  test('gpt-5.1 and later take temperature and top-p with reasoning-effort none', async (t) => {
    const body = await sent(t, {
      model: 'gpt-5.4-mini',
      prompt: 'x',
      'reasoning-effort': 'none',
      temperature: 0.2,
      'top-p': 0.9,
    })
    assert.deepEqual(body, {
      model: 'gpt-5.4-mini',
      messages: [user('x')],
      reasoning_effort: 'none',
      temperature: 0.2,
      top_p: 0.9,
    })
  })

  test('gpt-5.1 and later refuse them with another effort or none given, gpt-5 even with none', async (t) => {
    const low = await refused(t, { model: 'gpt-5.2', prompt: 'x', 'reasoning-effort': 'low', temperature: 0.2 })
    assert.deepEqual(low, [
      ['/temperature', 'is not taken by gpt-5.2, a reasoning model, unless reasoning-effort is none'],
    ])
    assert.deepEqual(pathsOf(await refused(t, { model: 'gpt-5.1', prompt: 'x', 'top-p': 0.5 })), ['/top-p'])
    assert.deepEqual(
      pathsOf(await refused(t, { model: 'gpt-5', prompt: 'x', 'reasoning-effort': 'none', temperature: 0.2 })),
      ['/temperature'],
    )
  })
})

describe('reasoning-effort and verbosity by family', () => {
  for (const model of ['gpt-4o', 'gpt-4.1-mini', 'gpt-5-chat-latest', 'gpt-3.5-turbo', 'chatgpt-4o-latest']) {
    test(`${model} does not reason: reasoning-effort is a 400`, async (t) => {
      const problems = await refused(t, { model, prompt: 'x', 'reasoning-effort': 'low' })
      assert.deepEqual(problems, [
        ['/reasoning-effort', `is for reasoning models (o-series, gpt-5); ${model} does not reason`],
      ])
    })
  }

  for (const model of ['gpt-4.1', 'o3', 'o4-mini', 'gpt-4o-mini']) {
    test(`${model} is not a gpt-5 model: verbosity is a 400`, async (t) => {
      assert.deepEqual(await refused(t, { model, prompt: 'x', verbosity: 'high' }), [
        ['/verbosity', `is for the gpt-5 family; ${model} does not take it`],
      ])
    })
  }

  test('the gpt-5 family takes verbosity, -chat variants included', async (t) => {
    for (const model of ['gpt-5-chat-latest', 'gpt-5-nano', 'gpt-5.5']) {
      assert.equal((await sent(t, { model, prompt: 'x', verbosity: 'high' })).verbosity, 'high')
    }
  })

  test("an OpenAI-compatible server's own models get both as given", async (t) => {
    const body = await sent(t, {
      model: 'gpt-oss-20b',
      prompt: 'x',
      'reasoning-effort': 'high',
      verbosity: 'low',
      temperature: 0.6,
    })
    assert.deepEqual(body, {
      model: 'gpt-oss-20b',
      messages: [user('x')],
      reasoning_effort: 'high',
      verbosity: 'low',
      temperature: 0.6,
    })
  })
})

describe('web search models', () => {
  test('refuse sampling settings, penalties and more than one choice', async (t) => {
    const problems = await refused(t, {
      model: 'gpt-4o-search-preview',
      prompt: 'News today?',
      temperature: 0.5,
      'top-p': 1,
      'presence-penalty': 0,
      'frequency-penalty': 0,
      n: 2,
    })
    assert.deepEqual(pathsOf(problems), ['/frequency-penalty', '/n', '/presence-penalty', '/temperature', '/top-p'])
    assert.deepEqual(
      problems.find(([path]) => path === '/n'),
      ['/n', 'must be 1 with gpt-4o-search-preview, a web search model'],
    )
  })

  test('take one choice and the rest', async (t) => {
    const body = await sent(t, { model: 'gpt-4o-mini-search-preview', prompt: 'News today?', n: 1, 'max-tokens': 50 })
    assert.deepEqual(body, {
      model: 'gpt-4o-mini-search-preview',
      messages: [user('News today?')],
      n: 1,
      max_tokens: 50,
    })
  })
})

describe('instruction turns', () => {
  test('a developer turn is sent as developer, to chat and reasoning models alike', async (t) => {
    const history = [
      { role: 'developer', content: 'Answer in French.' },
      { role: 'system', content: 'Be terse.' },
    ]
    const chat = await sent(t, { model: 'gpt-4o', prompt: 'Hi', 'chat-history': history })
    assert.deepEqual(chat.messages, [
      { role: 'developer', content: 'Answer in French.' },
      { role: 'system', content: 'Be terse.' },
      user('Hi'),
    ])
    const reasoning = await sent(t, { model: 'o3', prompt: 'Hi', 'chat-history': history })
    assert.deepEqual(reasoning.messages, [
      { role: 'developer', content: 'Answer in French.' },
      { role: 'developer', content: 'Be terse.' },
      user('Hi'),
    ])
  })

  for (const model of ['o1-mini', 'o1-preview-2024-09-12']) {
    test(`${model} takes no instructions: system-message and system or developer turns are 400s`, async (t) => {
      assert.deepEqual(await refused(t, { model, prompt: 'x', 'system-message': 'Be brief.' }), [
        ['/system-message', `is not taken: ${model} takes no system or developer instructions; put them in the prompt`],
      ])
      const problems = await refused(t, {
        model,
        prompt: 'x',
        'chat-history': [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
          { role: 'developer', content: 'In French.' },
        ],
      })
      assert.deepEqual(pathsOf(problems), ['/chat-history/0/role', '/chat-history/2/role'])
      assert.match(problems[1]![1], /^cannot be developer: .* put them in a user turn$/)
    })
  }

  test('o1-mini with user and assistant turns only goes out without any instruction turn', async (t) => {
    const body = await sent(t, {
      model: 'o1-mini',
      prompt: 'And then?',
      'system-message': 'Unused when there is a history.',
      'chat-history': [
        { role: 'user', content: 'Tell me a story.' },
        { role: 'assistant', content: 'Once upon a time.' },
      ],
    })
    assert.deepEqual(body.messages, [
      { role: 'user', content: 'Tell me a story.' },
      { role: 'assistant', content: 'Once upon a time.' },
      user('And then?'),
    ])
  })
})

test('the same checks guard the stream and the batch route', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const input = { model: 'o3', prompt: 'x', temperature: 0.3 }
  const streamed = await app.inject({
    method: 'POST',
    url: URL,
    payload: input,
    headers: { accept: 'text/event-stream' },
  })
  assert.equal(streamed.statusCode, 400)
  assert.equal(streamed.json().error.details[0].path, '/temperature')
  const batch = await app.inject({
    method: 'POST',
    url: `${URL}/batch`,
    payload: { inputs: [input, { model: 'o3', prompt: 'y' }] },
  })
  const [first, second] = batch.json().outputs
  assert.equal(first.error.status, 400)
  assert.equal(first.error.details[0].path, '/temperature')
  assert.deepEqual(second.texts, ['echo: y'])
  assert.equal(upstream.requests.length, 1, 'only the valid item reached OpenAI')
})
