/**
 * Property-based fuzzing of the five task routes with fast-check: wrong types, huge strings, deep
 * nesting, prototype-pollution keys, invalid UTF-8, bad base64 and data URIs, random Accept and
 * Content-Type headers, and valid-ish bodies built from schemas/tasks.yaml so that many requests
 * reach the stand-in OpenAI. Whatever comes in, the service answers 2xx or 4xx (never 5xx: the
 * stand-in validates every request against OpenAI's contract, so a 502 would be a mapping bug),
 * every error has the one error shape, Object.prototype stays clean, and nothing reaches OpenAI
 * that the mapping is not meant to send.
 *
 * Reproduce a run with FUZZ_SEED=<seed> (printed as a diagnostic); FUZZ_RUNS scales the runs.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test, type TestContext } from 'node:test'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import YAML from 'yaml'
import type { TaskName } from '../src/generated/task-types.ts'
import { buildWithUpstream, capturedLogLines, TEST_API_KEY } from './support/app.ts'
import { fakeImageBytes, type FakeOpenAI, type RecordedRequest } from './support/fake-openai/index.ts'
import { BUILT_IN_VOICES } from './support/fixtures.ts'
import { findGc, settledHeap } from './support/heap.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20_250_611)
const RUNS = Number(process.env.FUZZ_RUNS ?? 600)
// Whatever the body, its answer comes within this: an unbounded check took 11 s for 2 MB.
const ANSWER_WITHIN_MS = 10_000

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Body = Record<string, unknown>

// -------------------------------------------------------------------------------------------------
// What may reach OpenAI
// -------------------------------------------------------------------------------------------------

/** The JSON keys the mapping can produce for each operation. */
const UPSTREAM_KEYS: Record<string, ReadonlySet<string>> = {
  '/v1/chat/completions': new Set([
    'model',
    'messages',
    'temperature',
    'top_p',
    'n',
    'max_tokens',
    'max_completion_tokens',
    'presence_penalty',
    'frequency_penalty',
    'response_format',
    'prediction',
    'tools',
    'tool_choice',
    'stream',
    'stream_options',
    'reasoning_effort',
    'verbosity',
    'stop',
    'seed',
    'parallel_tool_calls',
  ]),
  '/v1/embeddings': new Set(['model', 'input', 'encoding_format', 'dimensions']),
  '/v1/audio/speech': new Set(['model', 'input', 'voice', 'instructions', 'response_format', 'speed']),
  '/v1/images/generations': new Set([
    'model',
    'prompt',
    'n',
    'quality',
    'size',
    'style',
    'response_format',
    'background',
    'output_format',
    'output_compression',
    'moderation',
  ]),
}
const TRANSCRIPTION_FIELDS: ReadonlySet<string> = new Set([
  'file',
  'model',
  'prompt',
  'language',
  'temperature',
  'response_format',
  'timestamp_granularities[]',
  'include[]',
  'languages[]',
  'keywords[]',
  'known_speaker_names[]',
  'known_speaker_references[]',
  'chunking_strategy',
  'chunking_strategy[type]',
  'chunking_strategy[prefix_padding_ms]',
  'chunking_strategy[silence_duration_ms]',
  'chunking_strategy[threshold]',
  // Sent only for Accept: text/event-stream.
  'stream',
])

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function assertKeys(value: unknown, allowed: Iterable<string>, where: string): void {
  assert.ok(isPlainObject(value), `${where} is an object`)
  const allow = new Set(allowed)
  const extra = Object.keys(value).filter((k) => !allow.has(k))
  assert.deepEqual(extra, [], `${where} holds only ${[...allow].join(', ')}`)
}

/** Every field of a request that reached the stand-in is one the mapping is meant to send. */
function assertOnlyMappedFields(rec: RecordedRequest): void {
  const path = rec.path.split('?')[0]!
  if (path === '/v1/audio/transcriptions') {
    assert.ok(rec.form, 'a transcription is a multipart form')
    const names = rec.form.entries.map(([name]) => name)
    assert.deepEqual(
      names.filter((n) => !TRANSCRIPTION_FIELDS.has(n)),
      [],
      `form fields ${names.join(', ')}`,
    )
    return
  }
  const allowed = UPSTREAM_KEYS[path]
  assert.ok(allowed, `unexpected upstream path ${path}`)
  const body = rec.json as Record<string, unknown>
  assertKeys(body, allowed, path)
  if (path !== '/v1/chat/completions') return
  const messages = body.messages as unknown[]
  assert.ok(Array.isArray(messages) && messages.length > 0, 'messages is a non-empty array')
  messages.forEach((message, i) => {
    const { role, content } = message as { role: unknown; content: unknown }
    const keys =
      role === 'assistant'
        ? ['role', 'content', 'tool_calls']
        : role === 'tool'
          ? ['role', 'content', 'tool_call_id']
          : ['role', 'content']
    assertKeys(message, keys, `messages[${i}]`)
    assert.ok(
      ['system', 'developer', 'user', 'assistant', 'tool'].includes(String(role)),
      `messages[${i}].role ${String(role)}`,
    )
    const toolCalls = (message as { tool_calls?: unknown[] }).tool_calls
    toolCalls?.forEach((call, j) => {
      assertKeys(call, ['id', 'type', 'function'], `messages[${i}].tool_calls[${j}]`)
      assertKeys(
        (call as { function: unknown }).function,
        ['name', 'arguments'],
        `messages[${i}].tool_calls[${j}].function`,
      )
    })
    if (typeof content === 'string' || (content === null && toolCalls)) return
    assert.ok(Array.isArray(content), `messages[${i}].content is text or parts`)
    content.forEach((part: unknown, j: number) => {
      const where = `messages[${i}].content[${j}]`
      assertKeys(part, ['type', 'text', 'image_url'], where)
      const p = part as { type: unknown; image_url?: unknown }
      assert.ok(p.type === 'text' || p.type === 'image_url', `${where}.type`)
      if (p.image_url !== undefined) assertKeys(p.image_url, ['url', 'detail'], `${where}.image_url`)
    })
  })
  if (body.tools !== undefined) {
    ;(body.tools as unknown[]).forEach((tool, i) => {
      assertKeys(tool, ['type', 'function'], `tools[${i}]`)
      assertKeys(
        (tool as { function: unknown }).function,
        ['name', 'description', 'parameters', 'strict'],
        `tools[${i}].function`,
      )
    })
  }
  if (isPlainObject(body.tool_choice)) {
    assertKeys(body.tool_choice, ['type', 'function'], 'tool_choice')
    assertKeys(body.tool_choice.function, ['name'], 'tool_choice.function')
  }
  if (body.prediction !== undefined) assertKeys(body.prediction, ['type', 'content'], 'prediction')
  if (body.stream_options !== undefined) assertKeys(body.stream_options, ['include_usage'], 'stream_options')
  if (body.response_format !== undefined) {
    assertKeys(body.response_format, ['type', 'json_schema'], 'response_format')
    const schema = (body.response_format as { json_schema?: unknown }).json_schema
    if (schema !== undefined) {
      assertKeys(schema, ['name', 'schema', 'strict', 'description'], 'response_format.json_schema')
    }
  }
}

// -------------------------------------------------------------------------------------------------
// Checks on every answer
// -------------------------------------------------------------------------------------------------

const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype]
const PROTOTYPE_KEYS = PROTOTYPES.map((p) => Object.getOwnPropertyNames(p).sort().join(','))

function assertNotPolluted(): void {
  PROTOTYPES.forEach((p, i) =>
    assert.equal(Object.getOwnPropertyNames(p).sort().join(','), PROTOTYPE_KEYS[i], 'prototype untouched'),
  )
  const probe = {} as Record<string, unknown>
  assert.equal(probe.polluted, undefined, 'Object.prototype.polluted is not set')
  assert.equal(probe.isAdmin, undefined, 'Object.prototype.isAdmin is not set')
}

function assertErrorShape(status: number, headers: Record<string, unknown>, text: string): void {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    assert.fail(`a ${status} answer whose body is not JSON: ${text.slice(0, 200)}`)
  }
  assertKeys(body, ['error'], 'error body')
  const error = (body as { error: Record<string, unknown> }).error
  assert.ok(isPlainObject(error), 'error is an object')
  assert.equal(typeof error.code, 'string', 'error.code')
  assert.equal(typeof error.message, 'string', 'error.message')
  assert.ok(Array.isArray(error.details), 'error.details')
  assert.equal(typeof error['request-id'], 'string', 'error.request-id')
  assert.equal(error['request-id'], headers['x-request-id'])
}

interface FuzzRequest {
  payload: string | Buffer
  contentType: string | undefined
  accept: string | undefined
}

interface Tally {
  skipped: Map<string, number>
  runs: number
  reachedUpstream: number
  statuses: Map<number, number>
}

/** Inputs the properties skip (fc.pre): those beyond what the stand-in OpenAI can simulate. */
const SKIPS: Array<{ reason: string; matches: (route: string, body: unknown, req: FuzzRequest) => boolean }> = [
  {
    reason:
      'stand-in limit, not a src bug: fake-openai allocates `dimensions` floats per embedding (a 500 for huge values, gigabytes for large ones)',
    matches: (route, body) =>
      route === 'text-embeddings' &&
      isPlainObject(body) &&
      typeof body.dimensions === 'number' &&
      body.dimensions > 100_000,
  },
]

/** The body as Fastify's JSON parser reads it (a leading BOM is dropped), or undefined. */
function parsed(payload: string | Buffer): unknown {
  try {
    return JSON.parse(payload.toString().replace(/^\ufeff/, ''))
  } catch {
    return undefined
  }
}

async function check(
  app: FastifyInstance,
  upstream: FakeOpenAI,
  route: string,
  req: FuzzRequest,
  tally: Tally,
): Promise<void> {
  const body = parsed(req.payload)
  const [task, batch] = route.split('/')
  const items = batch && isPlainObject(body) && Array.isArray(body.inputs) ? body.inputs : [body]
  const skip = SKIPS.find((s) => items.some((item) => s.matches(task!, item, req)))
  if (skip) {
    tally.skipped.set(skip.reason, (tally.skipped.get(skip.reason) ?? 0) + 1)
    fc.pre(false)
  }
  const violationsBefore = upstream.violations.length
  upstream.requests.length = 0 // only this run's requests; the stand-in otherwise keeps them all
  const headers: Record<string, string> = {}
  if (req.contentType !== undefined) headers['content-type'] = req.contentType
  if (req.accept !== undefined) headers.accept = req.accept
  const started = performance.now()
  const res = await app.inject({ method: 'POST', url: `/v1/tasks/${route}`, payload: req.payload, headers })
  const elapsed = performance.now() - started
  const status = res.statusCode
  tally.runs++
  tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1)
  if (upstream.requests.length) tally.reachedUpstream++

  assert.ok(
    (status >= 200 && status < 300) || (status >= 400 && status < 500),
    `status ${status}: ${res.body.slice(0, 500)}`,
  )
  assert.ok(elapsed < ANSWER_WITHIN_MS, `answered in ${Math.round(elapsed)} ms`)
  assert.ok(!res.body.includes(TEST_API_KEY), 'the server key is not in the answer')
  assert.ok(!JSON.stringify(res.headers).includes(TEST_API_KEY), 'the server key is not in a header')
  if (status >= 400) assertErrorShape(status, res.headers, res.body)
  else if (String(res.headers['content-type']).startsWith('text/event-stream')) {
    const events = [...res.body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])
    assert.equal(events.at(-1), 'done', `an SSE answer ends with done: ${res.body.slice(-300)}`)
  }
  assert.deepEqual(
    upstream.violations.slice(violationsBefore),
    [],
    "what reached the stand-in satisfies OpenAI's contract",
  )
  for (const rec of upstream.requests) assertOnlyMappedFields(rec)
  assertNotPolluted()
}

// -------------------------------------------------------------------------------------------------
// Building blocks
// -------------------------------------------------------------------------------------------------

interface TaskSchema {
  properties: Record<string, unknown>
  required?: string[]
}
const TASK_SCHEMAS = YAML.parse(readFileSync(new URL('../schemas/tasks.yaml', import.meta.url), 'utf8')) as Record<
  string,
  { input: TaskSchema }
>
const fieldsOf = (task: string): string[] => Object.keys(TASK_SCHEMAS[task]!.input.properties)

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
})

/** Up to ~200 KB of one repeated character (cheap to build, expensive to mishandle). */
const hugeString = fc
  .tuple(
    fc.integer({ min: 1_000, max: 200_000 }),
    fc.constantFrom('a', ' ', 'é', '😀', '"', '\\', '\n', '\u0000', '\u2028', '\ud800'),
  )
  .map(([n, c]) => c.repeat(Math.max(1, Math.floor(n / c.length))))

const oddString = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'null',
  'true',
  '0',
  '-1',
  '1e309',
  '<script>',
  // eslint-disable-next-line no-template-curly-in-string -- a template placeholder as text
  '${x}',
  '%s%n',
  '../../etc/passwd',
  '\r\n\r\nX: y',
)

const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 2, arbitrary: oddString },
  { weight: 1, arbitrary: hugeString },
)
const nonEmptyText = text.filter((s) => s.length > 0)

/** A JSON value up to 500 levels deep, as objects or arrays. */
const deepValue: fc.Arbitrary<Json> = fc
  .tuple(
    fc.integer({ min: 1, max: 500 }),
    fc.constantFrom('object', 'array', 'mixed'),
    fc.constantFrom<Json>(1, 'x', null, {}, []),
  )
  .map(([depth, shape, leaf]) => {
    let value: Json = leaf
    for (let i = 0; i < depth; i++) {
      const asArray = shape === 'array' || (shape === 'mixed' && i % 2 === 0)
      value = asArray ? [value] : { type: 'object', properties: { k: value } }
    }
    return value
  })

/** Any JSON value, extreme numbers and odd strings included. */
const anyJson: fc.Arbitrary<Json> = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -5000, max: 5000 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(0, -0, 0.5, -1, 1e-300, 2 ** 53, Number.MAX_VALUE),
    text,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('json'), { maxKeys: 4 }),
  ),
})).json

const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: anyJson },
  { weight: 1, arbitrary: deepValue },
  { weight: 1, arbitrary: hugeString },
)

// -------------------------------------------------------------------------------------------------
// Media: audio and images as data URIs and base64, good and bad
// -------------------------------------------------------------------------------------------------

const WAV = Buffer.from('UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=', 'base64')
const [PNG, JPEG, WEBP] = await Promise.all([fakeImageBytes('png'), fakeImageBytes('jpeg'), fakeImageBytes('webp')])

/** Ways to write good bytes that the service must accept. */
function goodEncodings(bytes: Buffer, mimes: string[]): fc.Arbitrary<string> {
  const b64 = bytes.toString('base64')
  return fc.oneof(
    fc.constant(b64),
    fc.constantFrom(...mimes, 'application/octet-stream', '').map((mime) => `data:${mime};base64,${b64}`),
    fc.constant(`DATA:${mimes[0]!.toUpperCase()};BASE64,${b64}`),
    fc.constant(`data:${mimes[0]};charset=utf-8;base64,${b64}`),
    fc.constant(b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')),
    fc.integer({ min: 1, max: 9 }).map((every) => b64.replace(new RegExp(`(.{${every}})`, 'g'), '$1\n')),
  )
}

/** Strings that are not usable media: the service must refuse them with a 4xx, never a 5xx. */
function badEncodings(bytes: Buffer, mime: string, other: Buffer): fc.Arbitrary<string> {
  const b64 = bytes.toString('base64')
  return fc.oneof(
    printable,
    oddString,
    fc.base64String({ maxLength: 200 }),
    fc.base64String({ maxLength: 200 }).map((s) => `${s}A`), // length % 4 == 1
    fc.uint8Array({ maxLength: 3000 }).map((u) => Buffer.from(u).toString('base64')),
    fc.uint8Array({ maxLength: 64 }).map((u) => `data:${mime};base64,${Buffer.from(u).toString('base64')}`),
    fc.constant(`data:${mime},${b64}`), // not base64
    fc.constant(`data:${mime};base64,`),
    fc.constant(`data:${mime};base64`),
    fc.constant('data:,'),
    fc.constant(`data:${mime};base64,${b64.slice(0, 12)}!!${b64.slice(12)}`),
    fc.constant(`data:${mime};base64,====`),
    fc.constant(`${b64}${b64}`.replace(/=/g, '')),
    fc.constant(other.toString('base64')), // a valid file of the wrong kind
    fc.integer({ min: 1, max: b64.length - 1 }).map((n) => b64.slice(0, n)), // cut short
    hugeString,
  )
}

const audioGood = goodEncodings(WAV, ['audio/wav', 'audio/x-wav', 'audio/mpeg'])
const audioBad = badEncodings(WAV, 'audio/wav', PNG)
/** Speaker references must be data URLs; bare base64 is among the bad ones. */
const referenceGood = goodEncodings(WAV, ['audio/wav', 'audio/x-wav']).filter((value) => /^data:/i.test(value))
const referenceBad = fc.oneof(audioBad, fc.constant(WAV.toString('base64')))
const imageGood = fc.oneof(
  goodEncodings(PNG, ['image/png', 'image/jpeg']),
  goodEncodings(JPEG, ['image/jpeg']),
  goodEncodings(WEBP, ['image/webp']),
  fc.webUrl({ validSchemes: ['http', 'https'], withQueryParameters: true, withFragments: true }),
)
const imageBad = fc.oneof(
  badEncodings(PNG, 'image/png', WAV),
  // http(s) URLs pass through untouched, so odd ones must not reach OpenAI either.
  printable.map((rest) => `http://${rest}`),
  fc.constantFrom(
    'http://',
    'https://',
    'HTTP://EXAMPLE.COM/A.PNG',
    'https://a b/c.png',
    'https://example.com/ü.png',
    'http://[::1',
    'https://example.com/%zz',
    'http://x/\u0000',
  ),
)

// -------------------------------------------------------------------------------------------------
// Valid-ish bodies from schemas/tasks.yaml
// -------------------------------------------------------------------------------------------------

const functionName = fc.stringMatching(/^[a-zA-Z0-9_-]{1,64}$/)
const schemaName = fc.stringMatching(/^[a-zA-Z0-9_-]{1,64}$/)
const smallSchema = fc.oneof(
  fc.constant({
    type: 'object',
    properties: { answer: { type: 'string' } },
    required: ['answer'],
    additionalProperties: false,
  }),
  fc.constant({ type: 'object' }),
  fc
    .dictionary(fc.string({ maxLength: 6 }), anyJson, { maxKeys: 3 })
    .map((properties) => ({ type: 'object', properties })),
)

const responseFormat = fc.oneof(
  fc.constantFrom({ type: 'text' }, { type: 'json_object' }),
  fc.record(
    {
      type: fc.constant('json_schema'),
      'json-schema': smallSchema.map((s) => JSON.stringify(s)),
      name: schemaName,
      strict: fc.boolean(),
    },
    { requiredKeys: ['type', 'json-schema'] },
  ),
  fc.record(
    {
      type: fc.constant('json_schema'),
      'json-schema': fc
        .record(
          { name: schemaName, schema: smallSchema, strict: fc.boolean(), description: fc.string({ maxLength: 20 }) },
          { requiredKeys: ['name', 'schema'] },
        )
        .map((wrapper) => JSON.stringify(wrapper)),
    },
    { requiredKeys: ['type', 'json-schema'] },
  ),
)

/** Response formats beyond the happy path: odd wrappers and schemas, as JSON text or not. */
const wildResponseFormat = fc.oneof(
  responseFormat,
  fc.record(
    {
      type: fc.constantFrom('text', 'json_object', 'json_schema'),
      'json-schema': fc.oneof(
        fc.string({ maxLength: 30 }),
        anyJson.map((v) => JSON.stringify(v)),
        fc
          .record({
            name: fc.oneof(schemaName, anyJson),
            schema: fc.oneof(smallSchema, anyJson),
            strict: anyJson,
            description: anyJson,
            extra: anyJson,
          })
          .map((wrapper) => JSON.stringify(wrapper)),
      ),
      name: schemaName,
      strict: fc.boolean(),
    },
    { requiredKeys: ['type'] },
  ),
)

const tool = fc.record(
  {
    type: fc.constant('function'),
    function: fc.record(
      {
        name: functionName,
        description: fc.string({ maxLength: 40 }),
        parameters: fc.oneof(smallSchema, deepValue.filter(isPlainObject)),
        strict: fc.boolean(),
      },
      { requiredKeys: ['name'] },
    ),
  },
  { requiredKeys: ['function'] },
)

const toolChoice = fc.oneof(
  fc.constantFrom('none', 'auto', 'required'),
  fc.record(
    { type: fc.constant('function'), function: fc.record({ name: functionName }) },
    { requiredKeys: ['function'] },
  ),
)

function historyTurn(image: fc.Arbitrary<string>, minParts: number): fc.Arbitrary<Body> {
  const part = fc.oneof(
    fc.record({ type: fc.constant('text'), text }),
    fc.record({
      type: fc.constant('image_url'),
      image_url: fc.record({ url: image, detail: fc.constantFrom('auto', 'low', 'high') }, { requiredKeys: ['url'] }),
    }),
  )
  return fc.record({
    role: fc.constantFrom('system', 'user', 'assistant'),
    content: fc.oneof(text, fc.array(part, { minLength: minParts, maxLength: 3 })),
  })
}

/** A tool round trip: an assistant turn's calls, each answered by a tool turn. */
const toolRoundTrip = fc
  .uniqueArray(fc.stringMatching(/^call_[A-Za-z0-9]{1,12}$/), { minLength: 1, maxLength: 3 })
  .chain((ids) =>
    fc
      .tuple(
        fc.record(
          {
            role: fc.constant('assistant'),
            content: fc.oneof(fc.constant(null), text),
            'tool-calls': fc.tuple(
              ...ids.map((id) =>
                fc.record(
                  {
                    id: fc.constant(id),
                    type: fc.constant('function'),
                    function: fc.record({ name: functionName, arguments: text }),
                  },
                  { requiredKeys: ['id', 'function'] },
                ),
              ),
            ),
          },
          { requiredKeys: ['role', 'tool-calls'] },
        ),
        fc.tuple(
          ...ids.map((id) => fc.record({ role: fc.constant('tool'), 'tool-call-id': fc.constant(id), content: text })),
        ),
      )
      .map(([asked, answers]): Body[] => [asked, ...answers]),
  )

/** Earlier turns: plain ones, developer ones, and tool round trips. */
function chatHistory(image: fc.Arbitrary<string>, minParts: number): fc.Arbitrary<Body[]> {
  const developer = fc.record({ role: fc.constant('developer'), content: text })
  const block = fc.oneof(
    { weight: 4, arbitrary: historyTurn(image, minParts).map((turn) => [turn]) },
    { weight: 1, arbitrary: developer.map((turn) => [turn]) },
    { weight: 2, arbitrary: toolRoundTrip },
  )
  return fc.array(block, { maxLength: 3 }).map((blocks) => blocks.flat())
}

const REASONING_MODELS = [
  'o1',
  'o3-mini',
  'o4-mini-2025-04-16',
  'gpt-5',
  'gpt-5.4-mini',
  'ft:o4-mini-2025-04-16:acme::x',
]
const CHAT_MODELS = ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-5-chat-latest']
const chatModel = fc.oneof(
  fc.constantFrom(...CHAT_MODELS, ...REASONING_MODELS),
  fc.stringMatching(/^[a-z0-9.-]{1,30}$/),
)
const reasoningEffort = fc.constantFrom('none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max')
const stop = fc.oneof(
  fc.string({ minLength: 1, maxLength: 8 }),
  fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }),
)

/** Fields a reasoning model (or any model, for `wild`) refuses; left out of its valid bodies. */
const SAMPLING_FIELDS = ['temperature', 'top-p', 'presence-penalty', 'frequency-penalty', 'stop']

/** `wild`: bad images and URLs, empty part lists, odd response formats. */
function textGeneration(wild: boolean): fc.Arbitrary<Body> {
  const image = wild ? fc.oneof(imageGood, imageBad) : imageGood
  return fc
    .record(
      {
        task: fc.constant('TASK_TEXT_GENERATION'),
        model: chatModel,
        prompt: text,
        'system-message': text,
        images: fc.array(image, { maxLength: 2 }),
        'chat-history': chatHistory(image, wild ? 0 : 1),
        temperature: fc.double({ min: 0, max: 2, noNaN: true }),
        n: fc.integer({ min: 1, max: 3 }),
        'max-tokens': fc.integer({ min: 1, max: 100_000 }),
        'response-format': wild ? wildResponseFormat : responseFormat,
        'top-p': fc.double({ min: 0, max: 1, noNaN: true }),
        'presence-penalty': fc.double({ min: -2, max: 2, noNaN: true }),
        'frequency-penalty': fc.double({ min: -2, max: 2, noNaN: true }),
        prediction: fc.record({ content: text }),
        tools: fc.array(tool, { maxLength: 2 }),
        'tool-choice': toolChoice,
        'reasoning-effort': reasoningEffort,
        verbosity: fc.constantFrom('low', 'medium', 'high'),
        stop,
        seed: fc.integer(),
        'parallel-tool-calls': fc.boolean(),
      },
      { requiredKeys: ['model', 'prompt'] },
    )
    .map((body) => (wild ? body : fieldsTheModelTakes(body)))
    .chain((body) =>
      // `response-type` is the same field under its other name; give at most one of them.
      fc.boolean().map((renamed) => {
        if (!renamed || body['response-format'] === undefined) return body
        const { 'response-format': format, ...rest } = body
        return { ...rest, 'response-type': format }
      }),
    )
}

/** A valid body keeps only the fields its model's family takes; the wild ones keep them all. */
function fieldsTheModelTakes(body: Body): Body {
  const model = String(body.model)
  const out = { ...body }
  const reasoning = REASONING_MODELS.includes(model)
  if (reasoning) for (const field of SAMPLING_FIELDS) delete out[field]
  if (CHAT_MODELS.includes(model)) delete out['reasoning-effort']
  if (!model.startsWith('gpt-5') && (reasoning || CHAT_MODELS.includes(model))) delete out.verbosity
  return out
}

const textEmbeddings = fc.record(
  {
    task: fc.constant('TASK_TEXT_EMBEDDINGS'),
    model: fc.oneof(
      fc.constantFrom('text-embedding-3-small', 'text-embedding-3-large', 'text-embedding-ada-002'),
      printable.filter((s) => s.length > 0),
    ),
    text: nonEmptyText,
    dimensions: fc.integer({ min: 1, max: 3072 }),
  },
  { requiredKeys: ['model', 'text'] },
)

const chunkingStrategy = fc.oneof(
  fc.constant('auto'),
  fc.record(
    {
      type: fc.constant('server_vad'),
      'prefix-padding-ms': fc.integer({ min: 0, max: 2000 }),
      'silence-duration-ms': fc.integer({ min: 0, max: 2000 }),
      threshold: fc.double({ min: 0, max: 1, noNaN: true }),
    },
    { requiredKeys: ['type'] },
  ),
)

const languageCode = fc.stringMatching(/^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})?$/)

/** As many names as references (1 to 4), the diarize model's known speakers. */
function knownSpeakers(reference: fc.Arbitrary<string>): fc.Arbitrary<Body> {
  return fc.integer({ min: 1, max: 4 }).chain((n) =>
    fc.record({
      'known-speaker-names': fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: n, maxLength: n }),
      'known-speaker-references': fc.array(reference, { minLength: n, maxLength: n }),
    }),
  )
}

function speechRecognition(audio: fc.Arbitrary<string>, reference: fc.Arbitrary<string>): fc.Arbitrary<Body> {
  return fc.oneof(
    fc.record(
      {
        task: fc.constant('TASK_SPEECH_RECOGNITION'),
        model: fc.constantFrom('whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe'),
        audio,
        prompt: text,
        language: languageCode,
        temperature: fc.double({ min: 0, max: 1, noNaN: true }),
        'response-format': fc.constantFrom('json', 'text'),
        'chunking-strategy': chunkingStrategy,
      },
      { requiredKeys: ['model', 'audio'] },
    ),
    fc.record(
      {
        model: fc.constantFrom('gpt-4o-transcribe', 'gpt-4o-mini-transcribe-2025-12-15'),
        audio,
        'response-format': fc.constant('json'),
        include: fc.constant(['logprobs']),
      },
      { requiredKeys: ['model', 'audio', 'include'] },
    ),
    fc.record(
      {
        model: fc.constant('gpt-transcribe'),
        audio,
        'response-format': fc.constantFrom('json', 'text', 'srt', 'vtt', 'verbose_json'),
        languages: fc.array(languageCode, { minLength: 1, maxLength: 3 }),
        keywords: fc.array(fc.string({ minLength: 1, maxLength: 30 }), { maxLength: 5 }),
      },
      { requiredKeys: ['model', 'audio'] },
    ),
    fc
      .record(
        {
          model: fc.constant('whisper-1'),
          audio,
          'response-format': fc.constantFrom('json', 'text', 'srt', 'vtt', 'verbose_json'),
          'timestamp-granularities': fc.uniqueArray(fc.constantFrom('word', 'segment'), { minLength: 1, maxLength: 2 }),
        },
        { requiredKeys: ['model', 'audio'] },
      )
      .map((body) =>
        body['response-format'] === 'verbose_json' ? body : { ...body, 'timestamp-granularities': undefined },
      ),
    fc.record(
      {
        model: fc.constant('gpt-4o-transcribe-diarize'),
        audio,
        language: fc.constantFrom('en', 'fr'),
        'response-format': fc.constantFrom('json', 'text', 'diarized_json'),
        'chunking-strategy': chunkingStrategy,
      },
      { requiredKeys: ['model', 'audio'] },
    ),
    fc
      .tuple(fc.record({ model: fc.constant('gpt-4o-transcribe-diarize'), audio }), knownSpeakers(reference))
      .map(([body, speakers]) => ({ ...body, ...speakers })),
  )
}

const AUDIO_FORMATS = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm']
const textToSpeech = fc
  .record(
    {
      task: fc.constant('TASK_TEXT_TO_SPEECH'),
      model: fc.constantFrom('tts-1', 'tts-1-hd', 'gpt-4o-mini-tts'),
      text: fc.oneof(fc.string({ minLength: 1, maxLength: 200 }), fc.string({ minLength: 1, maxLength: 4096 })),
      voice: fc.oneof(
        fc.constantFrom(...BUILT_IN_VOICES),
        fc.stringMatching(/^[a-z0-9_-]{1,64}$/),
        fc.record({ id: fc.string({ minLength: 1, maxLength: 40 }) }),
      ),
      instructions: fc.string({ maxLength: 200 }),
      'response-format': fc.constantFrom(...AUDIO_FORMATS),
      'response-type': fc.constantFrom(...AUDIO_FORMATS),
      speed: fc.double({ min: 0.25, max: 4, noNaN: true }),
    },
    { requiredKeys: ['model', 'text', 'voice'] },
  )
  .filter((body) => [...String(body.text)].length <= 4096)
  // tts-1 and tts-1-hd refuse instructions (their own test covers that).
  .map(({ instructions, ...body }) => (String(body.model).startsWith('tts-1') ? body : { ...body, instructions }))

const textToImage = fc.oneof(
  fc.record(
    {
      task: fc.constant('TASK_TEXT_TO_IMAGE'),
      model: fc.constant('dall-e-2'),
      prompt: fc.string({ minLength: 1, maxLength: 300 }),
      n: fc.integer({ min: 1, max: 3 }),
      quality: fc.constant('standard'),
      size: fc.constantFrom('256x256', '512x512', '1024x1024'),
    },
    { requiredKeys: ['prompt'] },
  ),
  fc.record(
    {
      model: fc.constant('dall-e-3'),
      prompt: fc.string({ minLength: 1, maxLength: 300 }),
      n: fc.constant(1),
      quality: fc.constantFrom('standard', 'hd'),
      size: fc.constantFrom('1024x1024', '1792x1024', '1024x1792'),
      style: fc.constantFrom('vivid', 'natural'),
    },
    { requiredKeys: ['model', 'prompt'] },
  ),
  fc.record(
    {
      model: fc.constantFrom('gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2', 'chatgpt-image-latest'),
      prompt: fc.string({ minLength: 1, maxLength: 300 }),
      n: fc.integer({ min: 1, max: 3 }),
      quality: fc.constantFrom('auto', 'low', 'medium', 'high'),
      size: fc.constantFrom('auto', '1024x1024', '1536x1024', '1024x1536'),
      background: fc.constantFrom('auto', 'opaque', 'transparent'),
      'output-format': fc.constantFrom('png', 'webp'),
      moderation: fc.constantFrom('auto', 'low'),
    },
    { requiredKeys: ['model', 'prompt'] },
  ),
  // Any of the schema's values, any model: the family rules decide; other models pass through.
  fc.record(
    {
      model: fc.oneof(fc.constantFrom('dall-e-2', 'dall-e-3', 'gpt-image-1'), fc.stringMatching(/^[a-z0-9-]{1,20}$/)),
      prompt: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), hugeString),
      n: fc.integer({ min: 1, max: 10 }),
      quality: fc.constantFrom('auto', 'low', 'medium', 'high', 'standard', 'hd'),
      size: fc.constantFrom(
        'auto',
        '256x256',
        '512x512',
        '1024x1024',
        '1536x1024',
        '1024x1536',
        '1792x1024',
        '1024x1792',
      ),
      style: fc.constantFrom('vivid', 'natural'),
      background: fc.constantFrom('auto', 'opaque', 'transparent'),
      'output-format': fc.constantFrom('png', 'jpeg', 'webp'),
      'output-compression': fc.integer({ min: 0, max: 100 }),
      moderation: fc.constantFrom('auto', 'low'),
    },
    { requiredKeys: ['prompt'] },
  ),
)

// -------------------------------------------------------------------------------------------------
// Mutations and encodings
// -------------------------------------------------------------------------------------------------

/** Keys a mapping bug might pass straight through: OpenAI's own names, and junk. */
const foreignKey = fc.oneof(
  fc.constantFrom(
    'messages',
    'stream',
    'stream_options',
    'user',
    'logit_bias',
    'max_tokens',
    'response_format',
    'top_p',
    'input',
    'file',
    'instructions',
    'seed',
    'store',
    'metadata',
    'encoding_format',
    'output_format',
    'background',
    'tools ',
    'Model',
    'PROMPT',
    '',
    ' ',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '__defineGetter__',
  ),
  fc.string({ maxLength: 12 }),
)

/** A valid-ish body, then fields replaced by wrong values, required ones dropped, foreign ones added. */
function mutated(valid: fc.Arbitrary<Body>, fields: string[]): fc.Arbitrary<unknown> {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom(...fields), value: wrongValue }),
    fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom(...fields) }),
    fc.record({ kind: fc.constant('add' as const), key: foreignKey, value: anyJson }),
  )
  return fc.tuple(valid, fc.array(op, { minLength: 1, maxLength: 3 })).map(([body, ops]) => {
    const out: Body = { ...body }
    for (const o of ops) {
      if (o.kind === 'delete') delete out[o.key]
      else Object.defineProperty(out, o.key, { value: o.value, enumerable: true, writable: true, configurable: true })
    }
    return out
  })
}

const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', '\\u005f_proto__', '__pro\\u0074o__']
const POLLUTION_VALUES = [
  '{"polluted":"yes","isAdmin":true}',
  '{"prototype":{"polluted":"yes"}}',
  '"yes"',
  'null',
  '[]',
  '{"__proto__":{"polluted":"yes"}}',
]

/** Adds `"key": value` to the n-th object of the JSON text (possibly one inside a string: then the JSON breaks). */
function withMember(json: string, key: string, value: string, nth: number): string {
  const starts = [...json.matchAll(/\{/g)].map((m) => m.index)
  if (!starts.length) return `{"${key}":${value}}`
  const at = starts[nth % starts.length]!
  const rest = json.slice(at + 1)
  const member = `"${key}":${value}`
  return json.slice(0, at + 1) + (rest.startsWith('}') ? member : `${member},`) + rest
}

const BAD_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0xc3, 0x28],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
]

/** The JSON bytes with invalid UTF-8 put at a string value's start or anywhere. */
function withBadBytes(json: string, bytes: number[], nth: number, inString: boolean): Buffer {
  const buf = Buffer.from(json, 'utf8')
  let at: number
  if (inString) {
    const starts = [...json.matchAll(/":"/g)].map((m) => Buffer.byteLength(json.slice(0, m.index + 3)))
    at = starts.length ? starts[nth % starts.length]! : 0
  } else at = nth % (buf.length + 1)
  return Buffer.concat([buf.subarray(0, at), Buffer.from(bytes), buf.subarray(at)])
}

const payloadOf = (body: unknown): fc.Arbitrary<string | Buffer> => {
  const json = JSON.stringify(body) ?? 'null'
  return fc.oneof(
    { weight: 12, arbitrary: fc.constant(json) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom(...POLLUTION_KEYS), fc.constantFrom(...POLLUTION_VALUES), fc.nat())
        .map(([key, value, nth]) => withMember(json, key, value, nth)),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.oneof(
            fc.constantFrom(...BAD_UTF8),
            fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 4 }),
          ),
          fc.nat(),
          fc.boolean(),
        )
        .map(([bytes, nth, inString]) => withBadBytes(json, bytes, nth, inString)),
    },
    { weight: 1, arbitrary: fc.nat().map((n) => json.slice(0, n % Math.max(1, json.length))) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        `\ufeff${json}`,
        `${json}x`,
        `${json}${json}`,
        ` \n${json}\n `,
        '',
        'null',
        '[]',
        '"text"',
        '1',
        '{',
        '{"a":1,}',
      ),
    },
  )
}

const ACCEPTS = [
  'application/json',
  'text/event-stream',
  'text/event-stream;q=0.5, application/json',
  'audio/*',
  'audio/mpeg',
  'audio/ogg',
  'audio/wav',
  'audio/pcm',
  'audio/flac',
  'audio/aac',
  'audio/*;q=0',
  'image/*',
  'image/png',
  'image/webp',
  'image/jpeg',
  'image/png;q=0.9, image/webp',
  '*/*',
  '*/*;q=0',
  'text/html',
  'application/xml',
  'text/*',
  '',
  ';;;',
  'garbage/',
  '*/*;q=abc',
  'application/json;q=0, */*',
  'audio/mpeg, audio/mpeg, audio/mpeg',
]
const accept = fc.option(
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ACCEPTS) }, { weight: 1, arbitrary: printable }),
  { freq: 3 },
)

const CONTENT_TYPES = [
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=latin1',
  'application/problem+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '',
]
const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant<string | undefined>('application/json') },
  { weight: 2, arbitrary: fc.constantFrom<string | undefined>(...CONTENT_TYPES, undefined) },
  { weight: 1, arbitrary: printable },
)

/** Cheap to send, once expensive to refuse: a huge array, many keys, deep nesting, as JSON text. */
const hugeValue = fc.oneof(
  fc.integer({ min: 1_000, max: 300_000 }).map((n) => `[${'1,'.repeat(n - 1)}1]`),
  fc.integer({ min: 1_000, max: 100_000 }).map((n) => `[${'"x",'.repeat(n - 1)}"x"]`),
  fc.integer({ min: 1_000, max: 50_000 }).map((n) => `{${Array.from({ length: n }, (_, i) => `"k${i}":1`).join(',')}}`),
  fc.integer({ min: 65, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 65, max: 5_000 }).map((n) => '{"a":'.repeat(n) + '{}' + '}'.repeat(n)),
)

/** A body of the task with one of its fields (or an unknown one) set to a huge value. */
function oversized(valid: fc.Arbitrary<Body>, task: string): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.constantFrom(...fieldsOf(task), 'unknown-field'), hugeValue).map(([body, field, value]) => {
    const json = JSON.stringify({ ...body, [field]: undefined })
    return json === '{}' ? `{"${field}":${value}}` : `${json.slice(0, -1)},"${field}":${value}}`
  })
}

function bodies(valid: fc.Arbitrary<Body>, wild: fc.Arbitrary<Body>, task: string): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 2, arbitrary: wild },
    { weight: 4, arbitrary: mutated(valid, fieldsOf(task)) },
    { weight: 1, arbitrary: anyJson },
  )
}

function requests(valid: fc.Arbitrary<Body>, wild: fc.Arbitrary<Body>, task: string): fc.Arbitrary<FuzzRequest> {
  const payload = fc.oneof(
    { weight: 11, arbitrary: bodies(valid, wild, task).chain(payloadOf) },
    { weight: 1, arbitrary: oversized(valid, task) },
  )
  return fc
    .tuple(payload, contentType, accept)
    .map(([text, type, acceptHeader]) => ({ payload: text, contentType: type, accept: acceptHeader ?? undefined }))
}

/** `{"inputs":[..]}` of the task's bodies, good, bad and huge, for its batch route. */
function batchRequests(valid: fc.Arbitrary<Body>, wild: fc.Arbitrary<Body>, task: string): fc.Arbitrary<FuzzRequest> {
  const item = fc.oneof(
    { weight: 8, arbitrary: bodies(valid, wild, task).map((body) => JSON.stringify(body) ?? 'null') },
    { weight: 1, arbitrary: oversized(valid, task) },
  )
  const payload = fc.oneof(
    { weight: 8, arbitrary: fc.array(item, { minLength: 1, maxLength: 4 }).map((json) => `{"inputs":[${json}]}`) },
    { weight: 1, arbitrary: anyJson.map((inputs) => JSON.stringify({ inputs })) },
    { weight: 1, arbitrary: hugeValue.map((inputs) => `{"inputs":${inputs}}`) },
  )
  return payload.map((text) => ({ payload: text, contentType: 'application/json', accept: undefined }))
}

// -------------------------------------------------------------------------------------------------
// Multipart forms for speech recognition
// -------------------------------------------------------------------------------------------------

const BOUNDARY = 'fuzz-boundary-7f3a'

interface FormPart {
  name: string
  value: string | Buffer
  filename?: string
  type?: string
}

function multipartBody(parts: FormPart[]): Buffer {
  const chunks: Buffer[] = []
  for (const part of parts) {
    let head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"`
    if (part.filename !== undefined) head += `; filename="${part.filename}"`
    if (part.type !== undefined) head += `\r\nContent-Type: ${part.type}`
    chunks.push(Buffer.from(`${head}\r\n\r\n`), Buffer.from(part.value), Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`))
  return Buffer.concat(chunks)
}

/** Text a form field may carry: numbers as JavaScript reads them but JSON does not, lists, JSON. */
const formText = fc.oneof(
  { weight: 4, arbitrary: text.filter((s) => !s.includes(BOUNDARY)) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '0',
      '0.5',
      '1',
      '0x1',
      '0b1',
      '0o7',
      '1e3',
      '.5',
      '5.',
      ' 1 ',
      '+1',
      '-0',
      'Infinity',
      'NaN',
      '1_0',
      'true',
      'false',
      'auto',
      'json',
      'verbose_json',
      'word',
      'logprobs',
      'en',
      '[]',
      '{}',
      '{"type":"server_vad","threshold":0.5}',
      '{"type":"server_vad","threshold":"x"}',
    ),
  },
)

const TRANSCRIPTION_FORM_FIELDS = [...fieldsOf('speech-recognition'), 'timestamp-granularities[]', 'file', 'x', '']

const textPart = fc.record({ name: fc.constantFrom(...TRANSCRIPTION_FORM_FIELDS), value: formText })
const filePart = fc.record({
  name: fc.constantFrom('audio', 'audio', 'known-speaker-references', 'model', 'file'),
  value: fc.oneof(
    fc.constant(WAV),
    fc.constant(PNG),
    fc.constant(Buffer.alloc(0)),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  ),
  filename: fc.constantFrom('talk.wav', '', '../../etc/passwd', 'a"b.wav', 'é.mp3'),
  type: fc.constantFrom('audio/wav', 'application/octet-stream', 'text/plain', 'image/png'),
})

/** A form that usually names a model and carries audio, plus any other parts. */
const speechRecognitionForm: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.option(fc.constantFrom('whisper-1', 'gpt-4o-transcribe', 'gpt-transcribe', 'gpt-4o-transcribe-diarize'), {
      freq: 6,
    }),
    fc.boolean(),
    fc.oneof(
      { weight: 1, arbitrary: fc.constant([]) },
      {
        weight: 2,
        arbitrary: fc.array(fc.oneof({ weight: 4, arbitrary: textPart }, { weight: 1, arbitrary: filePart }), {
          maxLength: 5,
        }),
      },
    ),
    accept,
  )
  .map(([model, withAudio, extra, acceptHeader]) => {
    const parts: FormPart[] = []
    if (model !== null) parts.push({ name: 'model', value: model })
    if (withAudio) parts.push({ name: 'audio', value: WAV, filename: 'talk.wav', type: 'audio/wav' })
    return {
      payload: multipartBody([...parts, ...extra]),
      contentType: `multipart/form-data; boundary=${BOUNDARY}`,
      accept: acceptHeader ?? undefined,
    }
  })

// Typed by the generated task names: a task added to schemas/tasks.yaml needs its arbitrary here.
const ROUTES: Record<TaskName, fc.Arbitrary<FuzzRequest>> = {
  'text-generation': requests(textGeneration(false), textGeneration(true), 'text-generation'),
  'text-embeddings': requests(textEmbeddings, textEmbeddings, 'text-embeddings'),
  'speech-recognition': requests(
    speechRecognition(audioGood, referenceGood),
    speechRecognition(audioBad, referenceBad),
    'speech-recognition',
  ),
  'text-to-speech': requests(textToSpeech, textToSpeech, 'text-to-speech'),
  'text-to-image': requests(textToImage, textToImage, 'text-to-image'),
}

const BATCH_ROUTES: Record<TaskName, fc.Arbitrary<FuzzRequest>> = {
  'text-generation': batchRequests(textGeneration(false), textGeneration(true), 'text-generation'),
  'text-embeddings': batchRequests(textEmbeddings, textEmbeddings, 'text-embeddings'),
  'speech-recognition': batchRequests(
    speechRecognition(audioGood, referenceGood),
    speechRecognition(audioBad, referenceBad),
    'speech-recognition',
  ),
  'text-to-speech': batchRequests(textToSpeech, textToSpeech, 'text-to-speech'),
  'text-to-image': batchRequests(textToImage, textToImage, 'text-to-image'),
}

const ALL_ROUTES: Array<[route: string, requests: fc.Arbitrary<FuzzRequest>, runs: number]> = [
  ...Object.entries(ROUTES).map(([route, arbitrary]): [string, fc.Arbitrary<FuzzRequest>, number] => [
    route,
    arbitrary,
    RUNS,
  ]),
  ['speech-recognition', speechRecognitionForm, Math.ceil(RUNS / 2)],
  ...Object.entries(BATCH_ROUTES).map(([route, arbitrary]): [string, fc.Arbitrary<FuzzRequest>, number] => [
    `${route}/batch`,
    arbitrary,
    Math.ceil(RUNS / 4),
  ]),
]

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`
const logChars = (): number => capturedLogLines.reduce((n, line) => n + line.length, 0)

// -------------------------------------------------------------------------------------------------
// The properties
// -------------------------------------------------------------------------------------------------

describe('fuzzing the task routes', () => {
  ALL_ROUTES.forEach(([route, arbitrary, runs], i) => {
    const form = arbitrary === speechRecognitionForm ? ' (multipart forms)' : ''
    test(`POST /v1/tasks/${route}${form}: 2xx or 4xx in the error shape, nothing unmapped reaches OpenAI`, async (t) => {
      const { app, upstream } = await buildWithUpstream(t)
      const seed = SEED + i
      t.diagnostic(`seed ${seed} (FUZZ_SEED=${SEED}), ${runs} runs`)
      const tally: Tally = { skipped: new Map(), runs: 0, reachedUpstream: 0, statuses: new Map() }
      const property = fc.asyncProperty(arbitrary, (req) => check(app, upstream, route, req, tally))
      // A first few runs compile what is compiled once (validators, serializers) before the heap is read.
      await fc.assert(property, { seed: seed + 1_000, numRuns: 20 })
      const gc = findGc()
      const logsBefore = logChars()
      const heapBefore = await settledHeap(gc)
      await fc.assert(property, { seed, numRuns: runs })
      const heapAfter = await settledHeap(gc)
      const statuses = [...tally.statuses]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}×${n}`)
        .join(' ')
      t.diagnostic(`${tally.runs} requests, ${tally.reachedUpstream} reached the stand-in; statuses ${statuses}`)
      for (const [reason, n] of tally.skipped) t.diagnostic(`skipped ${n} input(s): ${reason}`)
      assert.ok(
        tally.reachedUpstream >= runs * 0.1,
        `the generators reach OpenAI often enough (${tally.reachedUpstream} of ${runs})`,
      )
      // The harness keeps every log line the app writes (for the secrets check): not the app's memory.
      const logGrowth = logChars() - logsBefore
      const limit = heapBefore * 1.1 + logGrowth * 2 + 4e6
      t.diagnostic(`heapUsed ${mb(heapBefore)} -> ${mb(heapAfter)}, log lines kept +${mb(logGrowth)}`)
      assert.ok(heapAfter <= limit, `heap grew from ${mb(heapBefore)} to ${mb(heapAfter)} (limit ${mb(limit)})`)
      const health = await app.inject({ method: 'GET', url: '/healthz' })
      assert.equal(health.statusCode, 200, 'the service is alive afterwards')
      assertNotPolluted()
    })
  })
})

// -------------------------------------------------------------------------------------------------
// Bugs the fuzzing found (all fixed), minimised into regression tests
// -------------------------------------------------------------------------------------------------

describe('regressions found by fuzzing', () => {
  test('a body that is not multipart, sent as multipart/form-data to speech-recognition, gets a 4xx', async (t) => {
    const app = (await buildWithUpstream(t)).app
    const multipartType = fc.constantFrom(
      'multipart/form-data',
      'multipart/form-data; boundary=x',
      'Multipart/Form-Data; boundary="----b"',
    )
    const notMultipart = fc.oneof(
      fc.constantFrom('{}', 'garbage', '--x\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'),
      textEmbeddings.map((body) => JSON.stringify(body)),
      printable.filter((s) => s.length > 0),
    )
    t.diagnostic(`seed ${SEED}`)
    await fc.assert(
      fc.asyncProperty(multipartType, notMultipart, async (type, payload) => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/tasks/speech-recognition',
          payload,
          headers: { 'content-type': type },
        })
        assert.ok(
          res.statusCode >= 400 && res.statusCode < 500,
          `${type} ${JSON.stringify(payload)}: ${res.statusCode} ${res.body}`,
        )
        assertErrorShape(res.statusCode, res.headers, res.body)
      }),
      {
        seed: SEED,
        numRuns: 60,
        examples: [
          ['multipart/form-data; boundary=x', '{}'],
          ['multipart/form-data', '{}'],
        ],
      },
    )
  })

  test('an empty POST without Content-Type to speech-recognition gets a 4xx', async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    const res = await app.inject({ method: 'POST', url: '/v1/tasks/speech-recognition' })
    assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode} ${res.body}`)
    assertErrorShape(res.statusCode, res.headers, res.body)
    assert.equal(upstream.requests.length, 0)
  })

  /** Posts a text-generation body; OpenAI must never get what its contract refuses. */
  async function refusedOrMappedCleanly(t: TestContext, body: object): Promise<void> {
    const { app, upstream } = await buildWithUpstream(t)
    const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: body })
    assert.deepEqual(
      upstream.violations,
      [],
      `${JSON.stringify(body)} reached OpenAI breaking its contract (answered ${res.statusCode})`,
    )
    for (const rec of upstream.requests) assertOnlyMappedFields(rec)
    if (res.statusCode >= 400) {
      assert.equal(res.statusCode, 400)
      assert.equal(JSON.parse(res.body).error.code, 'ERR_VALIDATION', 'refused by the service, not by OpenAI')
    }
  }

  test('a chat-history user turn with content [] is refused (OpenAI requires at least one part)', (t) =>
    refusedOrMappedCleanly(t, { model: 'gpt-4o-mini', prompt: 'hi', 'chat-history': [{ role: 'user', content: [] }] }))

  for (const url of ['http://x/\u0000', 'https://a b/c.png', 'http://[::1']) {
    test(`an image URL that is not a valid URI (${JSON.stringify(url)}) is refused or normalised`, (t) =>
      refusedOrMappedCleanly(t, { model: 'gpt-4o-mini', prompt: 'hi', images: [url] }))
  }

  const WRAPPERS = [
    { name: 'answer', schema: { type: 'object' }, description: null },
    { name: 'answer', schema: { type: 'object' }, strict: 'yes' },
    { name: 'answer', schema: { type: 'object' }, evil: { injected: true } },
  ]
  for (const wrapper of WRAPPERS) {
    test(`OpenAI's json_schema wrapper ${JSON.stringify(wrapper)} is checked, not forwarded as is`, (t) =>
      refusedOrMappedCleanly(t, {
        model: 'gpt-4o-mini',
        prompt: 'hi',
        'response-format': { type: 'json_schema', 'json-schema': JSON.stringify(wrapper) },
      }))
  }
})
