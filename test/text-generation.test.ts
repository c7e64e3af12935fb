import { describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import YAML from 'yaml'
import type { LightMyRequestResponse } from 'fastify'
import { buildWithUpstream, TEST_API_KEY } from './support/app.ts'
import { withoutCost } from './support/cost.ts'
import { fakeImageBytes, type FakeOpenAI } from './support/fake-openai/index.ts'
import { weatherFunction as weather } from './support/fixtures.ts'

const URL = '/v1/tasks/text-generation'
const HELPFUL = { role: 'system', content: 'You are a helpful assistant.' }

const png = await fakeImageBytes('png')
const jpeg = await fakeImageBytes('jpeg')
const webp = await fakeImageBytes('webp')
const b64 = (bytes: Buffer): string => bytes.toString('base64')

interface Call {
  res: LightMyRequestResponse
  body: any
  upstream: FakeOpenAI
  /** The JSON body that reached the stand-in OpenAI (undefined when nothing was sent). */
  sent: any
}

async function call(t: TestContext, payload: object, setup?: (upstream: FakeOpenAI) => void): Promise<Call> {
  const { app, upstream } = await buildWithUpstream(t)
  setup?.(upstream)
  const res = await app.inject({ method: 'POST', url: URL, payload })
  return { res, body: res.json(), upstream, sent: upstream.requests[0]?.json }
}

/** Posts, expects a 200, and returns what reached OpenAI. */
async function sent(t: TestContext, payload: object): Promise<any> {
  const { res, sent } = await call(t, payload)
  assert.equal(res.statusCode, 200, res.body)
  return sent
}

/** Posts, expects a 400 validation error with no upstream call, and returns the error's paths. */
async function rejected(t: TestContext, payload: object): Promise<string[]> {
  const { res, body, upstream } = await call(t, payload)
  assert.equal(res.statusCode, 400, res.body)
  assert.equal(body.error.code, 'ERR_VALIDATION')
  assert.equal(upstream.requests.length, 0, 'nothing reaches OpenAI')
  return body.error.details.map((d: { path: string }) => d.path)
}

const user = (text: string, ...images: string[]) => ({
  role: 'user',
  content: [{ type: 'text', text }, ...images.map((url) => ({ type: 'image_url', image_url: { url } }))],
})

/** A chat completion with exactly these choices and usage, for enqueueing. */
function completion(messages: object[], usage?: object): object {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: messages.map((message, index) => ({
      index,
      message: { role: 'assistant', content: null, refusal: null, ...message },
      logprobs: null,
      finish_reason: 'stop',
    })),
    ...(usage && { usage }),
  }
}

describe('only what the caller gave', () => {
  test('a bare prompt is one user turn: no system message, no sampling values', async (t) => {
    const { res, body, upstream, sent } = await call(t, { model: 'gpt-4o-mini', prompt: 'Say hi' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(sent, { model: 'gpt-4o-mini', messages: [user('Say hi')] })
    assert.equal(upstream.requests.length, 1)
    assert.equal(upstream.requests[0]!.path, '/v1/chat/completions')
    assert.equal(body.texts.length, 1)
    assert.deepEqual(body.texts, ['echo: Say hi'])
  })

  test('sends the server key and the request id', async (t) => {
    const { res, upstream } = await call(t, { model: 'gpt-4o-mini', prompt: 'Say hi' })
    const { headers } = upstream.requests[0]!
    assert.equal(headers.authorization, `Bearer ${TEST_API_KEY}`)
    assert.match(String(headers['content-type']), /^application\/json/)
    assert.ok(res.headers['x-request-id'])
    assert.equal(headers['x-client-request-id'], res.headers['x-request-id'])
  })

  test('the usage mirrors the upstream answer', async (t) => {
    const { body, upstream } = await call(t, { model: 'gpt-4o-mini', prompt: 'Say hi' })
    const answer = JSON.parse(upstream.requests[0]!.responseBody!.toString())
    assert.deepEqual(withoutCost(body.usage), {
      'total-tokens': answer.usage.total_tokens,
      'prompt-tokens': answer.usage.prompt_tokens,
      'completion-tokens': answer.usage.completion_tokens,
      'prompt-token-details': { 'audio-tokens': 0, 'cached-tokens': 0 },
      'completion-token-details': {
        'accepted-prediction-tokens': 0,
        'audio-tokens': 0,
        'reasoning-tokens': 0,
        'rejected-prediction-tokens': 0,
      },
    })
  })
})

describe('system message and chat history', () => {
  test('a system-message is sent as the first turn', async (t) => {
    const body = await sent(t, { model: 'gpt-4o-mini', prompt: 'Hi', 'system-message': 'Answer like a pirate.' })
    assert.deepEqual(body.messages, [{ role: 'system', content: 'Answer like a pirate.' }, user('Hi')])
  })

  test('chat-history turns come first, in order, and replace system-message', async (t) => {
    const body = await sent(t, {
      model: 'gpt-4o-mini',
      prompt: 'And in German?',
      'system-message': 'Ignored when there is a history.',
      'chat-history': [
        { role: 'system', content: 'Be terse.' },
        { role: 'user', content: 'Say hello in French.' },
        { role: 'assistant', content: 'Bonjour.' },
      ],
    })
    assert.deepEqual(body.messages, [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: 'Say hello in French.' },
      { role: 'assistant', content: 'Bonjour.' },
      user('And in German?'),
    ])
  })

  test('a history without a system turn sends no system message at all', async (t) => {
    const body = await sent(t, {
      model: 'gpt-4o-mini',
      prompt: 'Go on',
      'chat-history': [{ role: 'user', content: 'Tell me a story.' }],
    })
    assert.deepEqual(body.messages, [{ role: 'user', content: 'Tell me a story.' }, user('Go on')])
  })

  test('part lists: user turns keep their parts, other roles get the joined text', async (t) => {
    const body = await sent(t, {
      model: 'gpt-4o-mini',
      prompt: 'Which one is bigger?',
      'chat-history': [
        {
          role: 'system',
          content: [
            { type: 'text', text: 'Be terse.' },
            { type: 'text', text: 'Be kind.' },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Look at these.' },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
            { type: 'image_url', image_url: { url: b64(png) } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'A cat' },
            { type: 'image_url', image_url: { url: 'https://example.com/ignored.png' } },
            { type: 'text', text: 'and a square.' },
          ],
        },
      ],
    })
    assert.deepEqual(body.messages, [
      { role: 'system', content: 'Be terse.\nBe kind.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look at these.' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${b64(png)}` } },
        ],
      },
      { role: 'assistant', content: 'A cat\nand a square.' },
      user('Which one is bigger?'),
    ])
  })

  test('an empty chat-history behaves as absent', async (t) => {
    const body = await sent(t, {
      model: 'gpt-4o-mini',
      prompt: 'Hi',
      'system-message': 'Be brief.',
      'chat-history': [],
    })
    assert.deepEqual(body.messages, [{ role: 'system', content: 'Be brief.' }, user('Hi')])
  })

  test('a bad image in a history turn is a 400 naming it', async (t) => {
    const paths = await rejected(t, {
      model: 'gpt-4o-mini',
      prompt: 'Hi',
      'chat-history': [
        { role: 'user', content: 'first' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'x' },
            { type: 'image_url', image_url: { url: 'bm90IGFuIGltYWdl' } },
          ],
        },
      ],
    })
    assert.deepEqual(paths, ['/chat-history/1/content/1/image_url/url'])
  })

  test('an unknown role is a 400', async (t) => {
    const paths = await rejected(t, {
      model: 'gpt-4o-mini',
      prompt: 'Hi',
      'chat-history': [{ role: 'function', content: 'x' }],
    })
    assert.ok(paths.includes('/chat-history/0/role'), String(paths))
  })
})

describe('images', () => {
  const withImages = async (t: TestContext, images: string[]): Promise<unknown> =>
    (await sent(t, { model: 'gpt-4o-mini', prompt: 'Describe', images })).messages.at(-1)

  test('a data URI passes through', async (t) => {
    const uri = `data:image/png;base64,${b64(png)}`
    assert.deepEqual(await withImages(t, [uri]), user('Describe', uri))
  })

  test('bare base64 becomes a data URI of the detected type', async (t) => {
    assert.deepEqual(
      await withImages(t, [b64(png), b64(jpeg), b64(webp)]),
      user(
        'Describe',
        `data:image/png;base64,${b64(png)}`,
        `data:image/jpeg;base64,${b64(jpeg)}`,
        `data:image/webp;base64,${b64(webp)}`,
      ),
    )
  })

  test('a data URI gets the type its bytes have, not the one it claims', async (t) => {
    assert.deepEqual(
      await withImages(t, [`data:image/png;base64,${b64(jpeg)}`]),
      user('Describe', `data:image/jpeg;base64,${b64(jpeg)}`),
    )
  })

  test('white space inside base64 is dropped', async (t) => {
    const wrapped = b64(png).replace(/.{40}/g, '$&\n')
    assert.deepEqual(await withImages(t, [wrapped]), user('Describe', `data:image/png;base64,${b64(png)}`))
  })

  test('URL-safe or unpadded base64 reaches OpenAI as standard padded base64', async (t) => {
    // Trailing bytes chosen so the standard alphabet needs '+' and '/' and the length needs padding.
    const bytes = Buffer.concat([png, Buffer.from([0xfb, 0xff, 0xbf, 0xfe, 0xff])])
    const urlSafe = bytes.toString('base64url')
    assert.match(urlSafe, /[-_]/)
    assert.match(b64(bytes), /[+/].*=$/)
    assert.deepEqual(await withImages(t, [urlSafe]), user('Describe', `data:image/png;base64,${b64(bytes)}`))
  })

  test('http(s) URLs pass through unchanged', async (t) => {
    const urls = ['https://example.com/a.png?size=large', 'http://example.com/b.jpg']
    assert.deepEqual(await withImages(t, urls), user('Describe', ...urls))
  })

  test('base64 that is not an image is a 400 naming the entry', async (t) => {
    const text = Buffer.from('just some text, not an image').toString('base64')
    assert.deepEqual(await rejected(t, { model: 'gpt-4o-mini', prompt: 'x', images: [text] }), ['/images/0'])
  })

  test('garbage is a 400 naming the entry', async (t) => {
    const paths = await rejected(t, { model: 'gpt-4o-mini', prompt: 'x', images: [b64(png), 'not base64 at all!'] })
    assert.deepEqual(paths, ['/images/1'])
  })

  test('a data URI without ;base64 is a 400', async (t) => {
    assert.deepEqual(await rejected(t, { model: 'gpt-4o-mini', prompt: 'x', images: ['data:image/png,abc'] }), [
      '/images/0',
    ])
  })
})

describe('sampling and limits', () => {
  test('set values go out in snake_case', async (t) => {
    const body = await sent(t, {
      model: 'gpt-4o',
      prompt: 'Hi',
      temperature: 0.2,
      n: 2,
      'top-p': 0.5,
      'presence-penalty': 1.5,
      'frequency-penalty': -0.5,
      'max-tokens': 300,
    })
    assert.deepEqual(body, {
      model: 'gpt-4o',
      messages: [user('Hi')],
      temperature: 0.2,
      n: 2,
      top_p: 0.5,
      presence_penalty: 1.5,
      frequency_penalty: -0.5,
      max_tokens: 300,
    })
  })

  test('out-of-range values are refused', async (t) => {
    const paths = await rejected(t, { model: 'gpt-4o', prompt: 'Hi', temperature: 2.5, n: 129, 'max-tokens': 0 })
    assert.deepEqual(paths.sort(), ['/max-tokens', '/n', '/temperature'])
  })

  for (const model of [
    'o1',
    'o3-mini',
    'o4-mini',
    'gpt-5',
    'gpt-5-mini-2025-08-07',
    'ft:o4-mini-2025-04-16:acme::abc123',
  ]) {
    test(`${model}: developer role, max_completion_tokens`, async (t) => {
      const body = await sent(t, { model, prompt: 'Think', 'system-message': 'Be brief.', 'max-tokens': 500 })
      assert.deepEqual(body, {
        model,
        messages: [{ role: 'developer', content: 'Be brief.' }, user('Think')],
        max_completion_tokens: 500,
      })
    })
  }

  for (const model of [
    'gpt-4o',
    'gpt-5-chat-latest',
    'gpt-4.1',
    'omni-moderation-latest',
    'ft:gpt-4.1-mini-2025-04-14:acme::x1',
  ]) {
    test(`${model} is not a reasoning model: system role and max_tokens`, async (t) => {
      const body = await sent(t, { model, prompt: 'Hi', 'system-message': 'Be brief.', 'max-tokens': 5 })
      assert.equal(body.messages[0].role, 'system')
      assert.equal(body.max_tokens, 5)
      assert.equal('max_completion_tokens' in body, false)
    })
  }

  test('o-series: system turns of the history become developer turns', async (t) => {
    const body = await sent(t, {
      model: 'o1',
      prompt: 'Next',
      'chat-history': [
        { role: 'system', content: 'Be terse.' },
        { role: 'assistant', content: 'OK.' },
      ],
    })
    assert.deepEqual(body.messages, [
      { role: 'developer', content: 'Be terse.' },
      { role: 'assistant', content: 'OK.' },
      user('Next'),
    ])
  })

  test('models that merely contain an o are not reasoning models', async (t) => {
    const body = await sent(t, {
      model: 'gpt-4o',
      prompt: 'Hi',
      'system-message': 'Be brief.',
      'max-tokens': 20,
      temperature: 0.7,
    })
    assert.equal(body.max_tokens, 20)
    assert.equal(body.messages[0].role, 'system')
    assert.equal(body.temperature, 0.7)
  })
})

for (const key of ['response-format', 'response-type']) {
  describe(key, () => {
    const schema = {
      type: 'object',
      properties: { answer: { type: 'string' } },
      required: ['answer'],
      additionalProperties: false,
    }
    const formatSent = async (t: TestContext, format: object): Promise<unknown> =>
      (await sent(t, { model: 'gpt-4o-mini', prompt: 'Hi', [key]: format })).response_format

    test('text and json_object', async (t) => {
      assert.deepEqual(await formatSent(t, { type: 'text' }), { type: 'text' })
      assert.deepEqual(await formatSent(t, { type: 'json_object' }), { type: 'json_object' })
    })

    test('json_schema with a bare schema gets wrapped as "response"', async (t) => {
      const { res, body, sent } = await call(t, {
        model: 'gpt-4o-mini',
        prompt: 'Hi',
        [key]: { type: 'json_schema', 'json-schema': JSON.stringify(schema) },
      })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(sent.response_format, { type: 'json_schema', json_schema: { name: 'response', schema } })
      assert.equal(typeof JSON.parse(body.texts[0]).answer, 'string')
    })

    test('json_schema with name and strict', async (t) => {
      const format = { type: 'json_schema', 'json-schema': JSON.stringify(schema), name: 'answer_v1', strict: true }
      assert.deepEqual(await formatSent(t, format), {
        type: 'json_schema',
        json_schema: { name: 'answer_v1', schema, strict: true },
      })
    })

    test("json_schema with OpenAI's wrapper passes as-is", async (t) => {
      const wrapper = { name: 'answer', description: 'One answer', schema, strict: true }
      assert.deepEqual(await formatSent(t, { type: 'json_schema', 'json-schema': JSON.stringify(wrapper) }), {
        type: 'json_schema',
        json_schema: wrapper,
      })
    })

    test('invalid JSON in json-schema is a 400', async (t) => {
      const paths = await rejected(t, {
        model: 'gpt-4o-mini',
        prompt: 'Hi',
        [key]: { type: 'json_schema', 'json-schema': '{"type":' },
      })
      assert.deepEqual(paths, [`/${key}/json-schema`])
    })

    test('json-schema that is not an object is a 400', async (t) => {
      const paths = await rejected(t, {
        model: 'gpt-4o-mini',
        prompt: 'Hi',
        [key]: { type: 'json_schema', 'json-schema': '[1]' },
      })
      assert.deepEqual(paths, [`/${key}/json-schema`])
    })

    test('json_schema without json-schema is a 400', async (t) => {
      const paths = await rejected(t, { model: 'gpt-4o-mini', prompt: 'Hi', [key]: { type: 'json_schema' } })
      assert.deepEqual(paths, [`/${key}/json-schema`])
    })

    test('an unknown type is a 400', async (t) => {
      const paths = await rejected(t, { model: 'gpt-4o-mini', prompt: 'Hi', [key]: { type: 'yaml' } })
      assert.deepEqual(paths, [`/${key}/type`])
    })
  })
}

test('response-format and response-type together are a 400 naming the second', async (t) => {
  const { res, body, upstream } = await call(t, {
    model: 'gpt-4o-mini',
    prompt: 'Hi',
    'response-format': { type: 'text' },
    'response-type': { type: 'text' },
  })
  assert.equal(res.statusCode, 400)
  assert.deepEqual(
    body.error.details.map((d: { path: string; message: string }) => [d.path, d.message]),
    [['/response-type', 'cannot be combined with response-format; give one']],
  )
  assert.equal(upstream.requests.length, 0)
})

test('the OpenAPI document states that response-format and response-type are alternatives', async () => {
  const doc = YAML.parse(await readFile(new globalThis.URL('../openapi/openapi.yaml', import.meta.url), 'utf8'))
  // The route's body is its task's input component.
  const body = (task: string) => {
    const { $ref } = doc.paths[`/v1/tasks/${task}`].post.requestBody.content['application/json'].schema
    return doc.components.schemas[$ref.split('/').at(-1)]
  }
  assert.deepEqual(body('text-generation').not, { required: ['response-format', 'response-type'] })
  for (const field of ['response-format', 'response-type']) {
    assert.match(body('text-generation').properties[field].description, /give one of them, not both/)
    // text-to-speech takes both when they name the same format, which `not` cannot say.
    assert.match(
      body('text-to-speech').properties[field].description,
      /alternatives: give one \(both only when they\s+name the same format/,
    )
  }
})

describe('prediction and tools', () => {
  test('prediction becomes a content prediction', async (t) => {
    const body = await sent(t, { model: 'gpt-4o', prompt: 'Fix the typo', prediction: { content: 'const x = 1' } })
    assert.deepEqual(body.prediction, { type: 'content', content: 'const x = 1' })
  })

  test('tools become function tools, with only the fields given', async (t) => {
    const body = await sent(t, {
      model: 'gpt-4o-mini',
      prompt: 'Weather in Paris?',
      tools: [{ type: 'function', function: weather }, { function: { name: 'ping' } }],
    })
    assert.deepEqual(body.tools, [
      { type: 'function', function: weather },
      { type: 'function', function: { name: 'ping' } },
    ])
    assert.equal('tool_choice' in body, false)
  })

  for (const choice of ['none', 'auto', 'required']) {
    test(`tool-choice "${choice}" passes through`, async (t) => {
      const body = await sent(t, {
        model: 'gpt-4o-mini',
        prompt: 'x',
        tools: [{ function: weather }],
        'tool-choice': choice,
      })
      assert.equal(body.tool_choice, choice)
    })
  }

  test('tool-choice naming a function, with or without type', async (t) => {
    const forced = { type: 'function', function: { name: 'get_weather' } }
    for (const choice of [forced, { function: { name: 'get_weather' } }]) {
      const body = await sent(t, {
        model: 'gpt-4o-mini',
        prompt: 'x',
        tools: [{ function: weather }],
        'tool-choice': choice,
      })
      assert.deepEqual(body.tool_choice, forced)
    }
  })

  test('invalid function names are a 400 naming the path', async (t) => {
    const paths = await rejected(t, {
      model: 'gpt-4o-mini',
      prompt: 'x',
      tools: [{ function: weather }, { function: { name: 'get weather' } }],
      'tool-choice': { function: { name: 'x'.repeat(65) } },
    })
    assert.ok(paths.includes('/tools/1/function/name'), String(paths))
    assert.ok(paths.includes('/tool-choice/function/name'), String(paths))
  })

  test('more than 128 tools is a 400', async (t) => {
    const tools = Array.from({ length: 129 }, (_, i) => ({ function: { name: `f${i}` } }))
    assert.deepEqual(await rejected(t, { model: 'gpt-4o-mini', prompt: 'x', tools }), ['/tools'])
  })
})

describe('outputs', () => {
  test('one text per choice', async (t) => {
    const { body, sent } = await call(t, { model: 'gpt-4o-mini', prompt: 'hi', n: 3 })
    assert.equal(sent.n, 3)
    assert.deepEqual(body.texts, ['echo: hi', 'echo: hi (#2)', 'echo: hi (#3)'])
    assert.equal('tool-calls' in body, false)
  })

  test('tool calls come back with their id and an empty text', async (t) => {
    const { res, body, upstream } = await call(t, {
      model: 'gpt-4o-mini',
      prompt: 'Weather in Paris?',
      tools: [
        { function: { name: 'ping' } },
        {
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string', const: 'Paris' } } },
          },
        },
      ],
      'tool-choice': { function: { name: 'get_weather' } },
    })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(body.texts, [''])
    const [answered] = JSON.parse(upstream.requests[0]!.responseBody!.toString()).choices[0].message.tool_calls
    assert.match(answered.id, /^call_/)
    assert.deepEqual(body['tool-calls'], [
      { id: answered.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
    ])
  })

  test('tool calls of every choice are collected', async (t) => {
    const { body, upstream } = await call(t, {
      model: 'gpt-4o-mini',
      prompt: 'x',
      n: 2,
      tools: [{ function: { name: 'ping' } }],
      'tool-choice': 'required',
    })
    assert.deepEqual(body.texts, ['', ''])
    const ids = JSON.parse(upstream.requests[0]!.responseBody!.toString()).choices.map(
      (c: any) => c.message.tool_calls[0].id,
    )
    assert.equal(new Set(ids).size, 2, 'two distinct calls')
    assert.deepEqual(
      body['tool-calls'],
      ids.map((id: string) => ({ id, type: 'function', function: { name: 'ping', arguments: '{}' } })),
    )
  })

  test('usage with every detail is mapped exactly', async (t) => {
    const usage = {
      prompt_tokens: 120,
      completion_tokens: 45,
      total_tokens: 165,
      prompt_tokens_details: { cached_tokens: 64, audio_tokens: 3 },
      completion_tokens_details: {
        reasoning_tokens: 20,
        audio_tokens: 1,
        accepted_prediction_tokens: 7,
        rejected_prediction_tokens: 2,
      },
    }
    const { body } = await call(t, { model: 'gpt-4o-mini', prompt: 'x' }, (upstream) =>
      upstream.enqueue({ status: 200, body: completion([{ content: 'Hello' }], usage) }),
    )
    assert.deepEqual(
      { ...body, usage: withoutCost(body.usage) },
      {
        texts: ['Hello'],
        usage: {
          'total-tokens': 165,
          'prompt-tokens': 120,
          'completion-tokens': 45,
          'prompt-token-details': { 'audio-tokens': 3, 'cached-tokens': 64 },
          'completion-token-details': {
            'accepted-prediction-tokens': 7,
            'audio-tokens': 1,
            'reasoning-tokens': 20,
            'rejected-prediction-tokens': 2,
          },
        },
      },
    )
  })

  test('usage without details, partial details, and no usage at all', async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    const post = async (): Promise<any> =>
      (await app.inject({ method: 'POST', url: URL, payload: { model: 'gpt-4o-mini', prompt: 'x' } })).json()

    upstream.enqueue({
      status: 200,
      body: completion([{ content: 'a' }], { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 }),
    })
    assert.deepEqual(withoutCost((await post()).usage), {
      'total-tokens': 6,
      'prompt-tokens': 5,
      'completion-tokens': 1,
    })

    upstream.enqueue({
      status: 200,
      body: completion([{ content: 'a' }], {
        prompt_tokens: 5,
        completion_tokens: 1,
        total_tokens: 6,
        prompt_tokens_details: { cached_tokens: 2 },
        completion_tokens_details: { reasoning_tokens: 1 },
      }),
    })
    assert.deepEqual(withoutCost((await post()).usage), {
      'total-tokens': 6,
      'prompt-tokens': 5,
      'completion-tokens': 1,
      'prompt-token-details': { 'audio-tokens': 0, 'cached-tokens': 2 },
      'completion-token-details': {
        'accepted-prediction-tokens': 0,
        'audio-tokens': 0,
        'reasoning-tokens': 1,
        'rejected-prediction-tokens': 0,
      },
    })

    upstream.enqueue({ status: 200, body: completion([{ content: 'a' }]) })
    assert.deepEqual(await post(), { texts: ['a'] })
  })

  test('a completion without choices is a 502', async (t) => {
    const { res } = await call(t, { model: 'gpt-4o-mini', prompt: 'x' }, (upstream) =>
      upstream.enqueue({ status: 200, body: { id: 'chatcmpl-x', object: 'chat.completion' } }),
    )
    assert.equal(res.statusCode, 502)
    assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
  })
})

test('the "Explain this topic to me in another language" recipe', async (t) => {
  const prompt = 'Talk about this topic in French  in a concise and beginner-friendly way:\nTell me about small LLMs'
  const { res, body, sent } = await call(t, {
    model: 'gpt-4o-mini',
    n: 1,
    prompt,
    'response-format': { type: 'text' },
    'system-message': 'You are a helpful assistant.',
    temperature: 1,
    'top-p': 1,
  })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(sent, {
    model: 'gpt-4o-mini',
    messages: [HELPFUL, user(prompt)],
    n: 1,
    temperature: 1,
    top_p: 1,
    response_format: { type: 'text' },
  })
  assert.deepEqual(body.texts, [`echo: ${prompt}`])
})

describe('validation', () => {
  test('newer model IDs are accepted', async (t) => {
    assert.equal((await sent(t, { model: 'gpt-4.1', prompt: 'Hi' })).model, 'gpt-4.1')
  })

  test('task TASK_TEXT_GENERATION is accepted and not forwarded', async (t) => {
    const body = await sent(t, { task: 'TASK_TEXT_GENERATION', model: 'gpt-4o-mini', prompt: 'Hi' })
    assert.deepEqual(body, { model: 'gpt-4o-mini', messages: [user('Hi')] })
  })

  test('another task is a 400 naming /task', async (t) => {
    assert.deepEqual(await rejected(t, { task: 'TASK_TEXT_EMBEDDINGS', model: 'gpt-4o-mini', prompt: 'Hi' }), ['/task'])
  })

  test('an unknown field is a 400', async (t) => {
    const { res, body } = await call(t, { model: 'gpt-4o-mini', prompt: 'Hi', max_tokens: 5 })
    assert.equal(res.statusCode, 400)
    assert.deepEqual(
      body.error.details.map((d: any) => [d.path, d.message]),
      [['/max_tokens', 'is not a known field']],
    )
    assert.equal(body.error['request-id'], res.headers['x-request-id'])
  })

  test('every bad field is listed, not just the first', async (t) => {
    const paths = await rejected(t, {
      model: '',
      temperature: 3,
      n: 0,
      'top-p': 1.5,
      'presence-penalty': -2.5,
      'frequency-penalty': 2.5,
      images: [''],
      prediction: {},
      extra: true,
    })
    assert.deepEqual(paths.sort(), [
      '/extra',
      '/frequency-penalty',
      '/images/0',
      '/model',
      '/n',
      '/prediction/content',
      '/presence-penalty',
      '/prompt',
      '/temperature',
      '/top-p',
    ])
  })
})

test('tool-choice without tools is refused before OpenAI is called', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    payload: { model: 'gpt-4o-mini', prompt: 'hi', 'tool-choice': 'auto' },
  })
  assert.equal(res.statusCode, 400)
  assert.equal(res.json().error.details[0].path, '/tools')
  assert.equal(upstream.requests.length, 0)
})

test('a refusal is the choice text, in the JSON answer as in the stream', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({
    status: 200,
    body: {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
    },
  })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    payload: { model: 'gpt-4o-mini', prompt: 'x' },
  })
  assert.deepEqual(res.json().texts, ['I cannot help with that.'])
})
