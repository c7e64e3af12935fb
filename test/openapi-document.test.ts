import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { build, serveWithUpstream } from './support/app.ts'
import { weatherFunction as weather } from './support/fixtures.ts'
import { wavHeader } from './support/wav.ts'

/**
 * What the served OpenAPI document promises, checked against the service configured several ways
 * and against the events its streams really carry: security as enforced, the server, the stream
 * events' schemas.
 */

type Operation = { security?: unknown; responses: Record<string, { content?: Record<string, unknown> }> }
type Document = { paths: Record<string, Record<string, Operation>>; servers: Array<{ url: string }> } & Record<
  string,
  unknown
>

async function documentOf(t: TestContext, env: Record<string, string>): Promise<Document> {
  const app = await build(t, env)
  return (await app.inject('/openapi.json')).json()
}

/** Each operation's security, by `METHOD path`. */
function securityByOperation(doc: Document): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation.security]),
    ),
  )
}

const OPEN_ROUTES = ['GET /healthz', 'GET /readyz', 'GET /metrics']

test('each operation declares the security the service enforces, as configured', async (t) => {
  const cases: Array<{ env: Record<string, string>; tasks: unknown; catalogue: unknown; metrics: unknown }> = [
    // The server holds a key and no service tokens: everything open, a caller's key is not used.
    { env: {}, tasks: [], catalogue: [], metrics: [] },
    { env: { OPENAI_API_KEY: '' }, tasks: [{ openaiKey: [] }, { openaiApiKey: [] }], catalogue: [], metrics: [] },
    {
      env: { SERVICE_TOKENS: 'tok-a', ALLOW_CALLER_API_KEYS: 'true', METRICS_TOKEN: 'scrape' },
      tasks: [{ serviceToken: [] }, { serviceToken: [], openaiApiKey: [] }],
      catalogue: [{ serviceToken: [] }],
      metrics: [{ metricsToken: [] }],
    },
  ]
  for (const { env, tasks, catalogue, metrics } of cases) {
    const doc = await documentOf(t, env)
    const security = securityByOperation(doc)
    for (const [operation, declared] of Object.entries(security)) {
      const expected = operation === 'GET /metrics' ? metrics : OPEN_ROUTES.includes(operation) ? [] : tasks
      assert.deepEqual(
        declared,
        operation === 'GET /v1/tasks' || operation === 'GET /v1/usage' ? catalogue : expected,
        `${operation} with ${JSON.stringify(env)}`,
      )
    }
    const named = new Set(
      [tasks, catalogue, metrics].flat().flatMap((requirement) => Object.keys(requirement as object)),
    )
    const schemes = (doc.components as { securitySchemes: Record<string, unknown> }).securitySchemes
    assert.deepEqual(Object.keys(schemes).sort(), [...named].sort(), 'the schemes named, and only those')
  }
})

test('what the document declares is what a caller meets: 401 where security is required', async (t) => {
  const { base } = await serveWithUpstream(t, { SERVICE_TOKENS: 'tok-a' })
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Document
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const status = (
        await fetch(base + path, {
          method,
          headers: { 'content-type': 'application/json' },
          body: method === 'post' ? '{}' : null,
        })
      ).status
      const secured = Array.isArray(operation.security) && operation.security.length > 0
      assert.equal(
        status === 401,
        secured,
        `${method} ${path}: ${status}, security ${JSON.stringify(operation.security)}`,
      )
    }
  }
})

test('servers: PUBLIC_URL when set, else the origin the document was asked at', async (t) => {
  const behindIngress = await build(t, { PUBLIC_URL: 'https://tasks.example.org/' })
  const fixed = (await behindIngress.inject({ url: '/openapi.json', headers: { host: 'pod-7:8080' } })).json()
  assert.deepEqual(fixed.servers, [{ url: 'https://tasks.example.org' }])
  const { base } = await serveWithUpstream(t)
  const asked = (await (await fetch(`${base}/openapi.json`)).json()) as Document
  assert.deepEqual(asked.servers, [{ url: base }])
  const swaggerUi = (await (await fetch(`${base}/docs/json`)).json()) as Document
  assert.deepEqual(swaggerUi.servers, [{ url: base }], "Swagger UI's copy tries calls out on this server too")
})

/** The schema of one stream's events, compiled from the document's own components. */
function eventCheck(doc: Document, name: string): (event: unknown) => string | undefined {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  ajv.addFormat('binary', true)
  ajv.addSchema({ ...doc, $id: 'https://openai-tasks.test/openapi.json' })
  const validate = ajv.compile({ $ref: `https://openai-tasks.test/openapi.json#/components/schemas/${name}` })
  return (event) => (validate(event) ? undefined : ajv.errorsText(validate.errors))
}

/** The events of an SSE body, their data parsed. */
async function eventsOf(res: Response): Promise<Array<{ event: string; data: unknown }>> {
  assert.equal(res.status, 200)
  const text = await res.text()
  return text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const lines = block.split('\n')
      const event = lines.find((line) => line.startsWith('event: '))?.slice('event: '.length) ?? 'message'
      const data = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice('data: '.length))
      return { event, data: JSON.parse(data.join('\n')) }
    })
}

function post(base: string, task: string, body: object, accept = 'text/event-stream'): Promise<Response> {
  return fetch(`${base}/v1/tasks/${task}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept },
    body: JSON.stringify(body),
  })
}

const AUDIO = `data:audio/wav;base64,${Buffer.concat([wavHeader(8000, 8000), Buffer.alloc(8000)]).toString('base64')}`

test("every event of the service's streams matches the document's schema of that stream", async (t) => {
  const { base, upstream } = await serveWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Document
  const chat = eventCheck(doc, 'TextGenerationEvent')
  const transcript = eventCheck(doc, 'SpeechRecognitionEvent')

  upstream.enqueue({ kind: 'truncated-stream', path: '/v1/chat/completions', afterChunks: 2 })
  const streams = [
    { check: chat, res: await post(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'cut short' }) },
    { check: chat, res: await post(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'Hi', n: 2 }) },
    {
      check: chat,
      res: await post(base, 'text-generation', {
        model: 'gpt-4o-mini',
        prompt: 'Weather in Paris?',
        tools: [{ function: weather }],
        'tool-choice': 'required',
      }),
    },
    {
      check: transcript,
      res: await post(base, 'speech-recognition', {
        model: 'gpt-4o-transcribe-diarize',
        audio: AUDIO,
        'response-format': 'diarized_json',
      }),
    },
    {
      check: transcript,
      res: await post(base, 'speech-recognition', { model: 'gpt-4o-mini-transcribe', audio: AUDIO }),
    },
  ]
  const seen = new Set<string>()
  for (const { check, res } of streams) {
    for (const event of await eventsOf(res)) {
      seen.add(event.event)
      assert.equal(check(event), undefined, `${JSON.stringify(event).slice(0, 300)}`)
    }
  }
  assert.deepEqual([...seen].sort(), ['delta', 'done', 'error', 'output', 'segment'], 'every kind of event was checked')
  const broken = eventCheck(doc, 'TextGenerationEvent')({ event: 'delta', data: { text: 'no index' } })
  assert.match(String(broken), /index/, 'an event the schema does not allow is caught')
})

test('each stream answer is declared with its media type, as binary or as events', async (t) => {
  const doc = await documentOf(t, {})
  const content = (task: string) => doc.paths[`/v1/tasks/${task}`]!.post!.responses['200']!.content!
  const imageTypes = Object.keys(content('text-to-image'))
  assert.deepEqual(imageTypes, ['application/json', 'image/webp', 'image/png', 'image/jpeg'])
  for (const type of imageTypes.slice(1)) {
    assert.deepEqual(content('text-to-image')[type], {
      schema: {
        type: 'string',
        format: 'binary',
        contentMediaType: type,
        description: (content('text-to-image')[type] as { schema: { description: string } }).schema.description,
      },
    })
  }
  assert.deepEqual(Object.keys(content('text-to-speech')).slice(1), [
    'audio/mpeg',
    'audio/ogg',
    'audio/aac',
    'audio/flac',
    'audio/wav',
    'audio/pcm',
  ])
  const sse = content('text-generation')['text/event-stream'] as { schema: Record<string, unknown> }
  assert.equal(sse.schema.contentMediaType, 'text/event-stream')
  assert.deepEqual(sse.schema.contentSchema, {
    type: 'array',
    items: { $ref: '#/components/schemas/TextGenerationEvent' },
  })
})
