/**
 * Property-based fuzzing of OpenAI's side with fast-check: the stand-in plays a hostile upstream
 * for every task route (random statuses and JSON shapes, its own answers with wrong types and huge
 * numbers, huge indexes, huge or unterminated SSE lines, answers over their bounds, wrong content
 * types, error bodies and headers echoing the key or bearer tokens of its own, resets and cuts).
 * Whatever comes back, the service answers every valid request with a documented status in the
 * error shape (2xx; OpenAI's 4xx as its ERR_UPSTREAM_* code; 502 or 504), a stream ends in `done`
 * or an `error` event, no answer is slower than a bound, no secret is in any answer's body or
 * headers or in the log, and the heap is back near where it started after the run.
 *
 * Reproduce a run with FUZZ_SEED=<seed> (printed as a diagnostic); FUZZ_RUNS scales the runs.
 */
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { Agent, request } from 'undici'
import type { TaskName } from '../src/generated/task-types.ts'
import { capturedLogLines, serveWithUpstream, TEST_API_KEY, type Served } from './support/app.ts'
import { openAIError, type Behaviour } from './support/fake-openai/index.ts'
import { findGc, settledHeap } from './support/heap.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20_250_611)
const RUNS = Number(process.env.FUZZ_RUNS ?? 120)
/** Runs before the heap's baseline: lazy modules, JIT and pools reach their working size. */
const WARM_UP_RUNS = 30
/** The slowest answer allowed: the upstream timeouts below are 1 s each. */
const ANSWER_BOUND_MS = 10_000
const MiB = 1024 * 1024

const ENV = {
  UPSTREAM_MAX_RETRIES: '1',
  UPSTREAM_RETRY_MAX_DELAY_MS: '20',
  UPSTREAM_HEADERS_TIMEOUT_MS: '1000',
  UPSTREAM_BODY_TIMEOUT_MS: '1000',
  SSE_HEARTBEAT_MS: '1000',
  LOG_LEVEL: 'warn',
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

// -------------------------------------------------------------------------------------------------
// What the service is asked: valid requests, so that every odd answer is the upstream's doing
// -------------------------------------------------------------------------------------------------

interface Call {
  path: string
  payload: object
  accept: string
}

const WAV = 'data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='
const CHAT = { model: 'gpt-4o-mini', prompt: 'Say hi' }
const TOOL = {
  ...CHAT,
  tools: [
    { function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
  ],
  'tool-choice': 'required',
}
const task = (name: TaskName, payload: object, accept = 'application/json'): Call => ({
  path: `/v1/tasks/${name}`,
  payload,
  accept,
})

const CALLS: Record<TaskName, Call[]> = {
  'text-generation': [
    task('text-generation', CHAT),
    task('text-generation', CHAT, 'text/event-stream'),
    task('text-generation', { ...CHAT, n: 2 }, 'text/event-stream'),
    task('text-generation', TOOL),
    task('text-generation', TOOL, 'text/event-stream'),
  ],
  'text-embeddings': [
    task('text-embeddings', { model: 'text-embedding-3-small', text: 'A fox' }),
    {
      path: '/v1/tasks/text-embeddings/batch',
      payload: { inputs: ['A fox', 'A dog', 'A wombat'].map((text) => ({ model: 'text-embedding-3-small', text })) },
      accept: 'application/json',
    },
  ],
  'speech-recognition': [
    task('speech-recognition', { model: 'gpt-4o-transcribe', audio: WAV }),
    task('speech-recognition', { model: 'whisper-1', audio: WAV, 'response-format': 'verbose_json' }),
    task('speech-recognition', { model: 'whisper-1', audio: WAV, 'response-format': 'srt' }),
    task('speech-recognition', { model: 'gpt-4o-transcribe', audio: WAV }, 'text/event-stream'),
  ],
  'text-to-speech': [
    task('text-to-speech', { model: 'tts-1', text: 'Hello there', voice: 'alloy' }),
    task('text-to-speech', { model: 'tts-1', text: 'Hello there', voice: 'alloy' }, 'audio/mpeg'),
  ],
  'text-to-image': [
    task('text-to-image', { model: 'gpt-image-1', prompt: 'A wombat' }),
    task('text-to-image', { model: 'dall-e-3', prompt: 'A wombat' }),
    task('text-to-image', { model: 'gpt-image-1', prompt: 'A wombat' }, 'image/png'),
    task('text-to-image', { model: 'gpt-image-1', prompt: 'A wombat' }, 'image/webp'),
  ],
}

/** A transcript in a text format is OpenAI's 200 body itself: whatever it says, the caller gets. */
const relaysTextAsIs = (call: Call): boolean =>
  (call.payload as { 'response-format'?: string })['response-format'] === 'srt'

// -------------------------------------------------------------------------------------------------
// The hostile upstream's answers
// -------------------------------------------------------------------------------------------------

/** Secrets of the hostile server's own, which it echoes labelled (`Bearer …`, `api-key: …`). */
const OWN_TOKENS = ['sk-hostile-0123456789abcdef', 'hostile-bearer-token-0123456789']
const SECRETS = [TEST_API_KEY, ...OWN_TOKENS]

/** A token in the company of its label; a bare one only when it is the key in use or shaped like OpenAI's. */
const secretText: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        'Incorrect API key provided: Bearer %s.',
        'authorization: Bearer %s',
        'Authorization: Basic %s',
        '{"api-key":"%s"}',
        'x-api-key: %s\nhost: upstream',
        'GET /v1/chat/completions?api_key=%s',
      ),
      fc.constantFrom(...SECRETS),
    )
    .map(([template, token]) => template.replace('%s', token)),
  fc
    .tuple(
      fc.constantFrom('Incorrect API key provided: %s.', 'key %s has no access', '%s'),
      fc.constantFrom(TEST_API_KEY, OWN_TOKENS[0]!),
    )
    .map(([template, token]) => template.replace('%s', token)),
)

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
})

/** Text around a secret, on either side. */
const saying = fc
  .tuple(printable, secretText, printable)
  .map(([before, secret, after]) => `${before} ${secret} ${after}`)

const HUGE_NUMBERS = [5e7, 2 ** 32, 2 ** 53, 1e308, -1, -0, 0.5, Number.MAX_SAFE_INTEGER]

/** Any JSON value, huge numbers and odd strings included; never a secret. */
const anyJson: fc.Arbitrary<Json> = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -5, max: 5 }),
    fc.constantFrom(...HUGE_NUMBERS),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    printable,
    fc.constantFrom('', '\u0000', '\ud800', '😀', 'function', 'tool_calls', 'stop'),
    fc.array(tie('json'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('index', 'text', 'choices', 'data', 'delta', 'x'), tie('json'), { maxKeys: 3 }),
  ),
})).json

const retryHeaders = fc.option(
  fc.oneof(
    fc.record({ 'retry-after-ms': fc.constantFrom('0', '1', '15', '1e9', '-5', 'soon', '1.5') }),
    fc.record({ 'retry-after': fc.constantFrom('0', '1', '86400', 'Wed, 21 Oct 2015 07:28:00 GMT', 'never') }),
    fc.record({ 'x-should-retry': fc.constantFrom('true', 'false') }),
  ),
  { nil: undefined },
)

/** A status of OpenAI's or not, with an error body (often echoing secrets), random JSON, or text. */
const statusAnswer: fc.Arbitrary<Behaviour> = fc
  .tuple(
    fc.constantFrom(400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 520),
    fc.oneof(
      fc.tuple(saying, fc.option(secretText), fc.option(secretText)).map(([message, type, code]) => {
        const body = openAIError(400, message, type ?? undefined, code ?? undefined) as { error: object }
        return { error: { ...body.error } } as object
      }),
      saying,
      anyJson.map((json) => ({ error: json }) as object),
      fc.constant(undefined),
    ),
    retryHeaders,
    fc.option(
      secretText.filter((s) => !s.includes('\n')),
      { nil: undefined },
    ),
  )
  .map(([status, body, headers, requestId]) => ({
    status,
    ...(body !== undefined && { body }),
    headers: { ...headers, ...(requestId !== undefined && { 'x-request-id': requestId }) },
  }))

/** A 200 that is random JSON or text: never the key, as a 200 may be relayed as it is. */
const okAnswer: fc.Arbitrary<Behaviour> = fc.oneof(
  fc.constant<Behaviour>({ status: 200 }),
  anyJson.map((json): Behaviour => ({ status: 200, body: { data: json, choices: json, text: json } })),
  printable.map((text): Behaviour => ({ status: 200, body: text })),
)

const mutated: fc.Arbitrary<Behaviour> = fc
  .array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), value: anyJson }), { minLength: 1, maxLength: 4 })
  .map((mutations) => ({ kind: 'mutated', mutations }))

const hugeIndex: fc.Arbitrary<Behaviour> = fc.record({
  kind: fc.constantFrom('huge-choice-index' as const, 'huge-tool-call-index' as const),
  index: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom(...HUGE_NUMBERS), fc.integer({ min: 4, max: 5e7 })),
})

const hugeLine: fc.Arbitrary<Behaviour> = fc.record({
  kind: fc.constant('huge-line' as const),
  bytes: fc.oneof(fc.integer({ min: 1, max: 64 * 1024 }), fc.integer({ min: 7 * MiB, max: 10 * MiB })),
  field: fc.constantFrom('data' as const, 'junk' as const),
  terminated: fc.boolean(),
})

/** Over the bound by its Content-Length (nothing much sent), or a few MiB chunked (over the embeddings bound). */
const oversize: fc.Arbitrary<Behaviour> = fc.oneof(
  fc.constant<Behaviour>({ kind: 'oversize', bytes: 1024 * MiB, declareLength: true }),
  fc.integer({ min: 64 * 1024, max: 3 * MiB }).map((bytes): Behaviour => ({ kind: 'oversize', bytes })),
)

const CONTENT_TYPES = [
  'text/html; charset=utf-8',
  'application/json',
  'text/plain',
  'text/event-stream',
  'TEXT/EVENT-STREAM; charset=UTF-8',
  'audio/mpeg',
  'application/octet-stream',
  'image/png',
  'garbage',
]
const wrongContentType: fc.Arbitrary<Behaviour> = fc.record(
  {
    kind: fc.constant('wrong-content-type' as const),
    contentType: fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.constant(null)),
    keepBody: fc.boolean(),
    body: printable,
  },
  { requiredKeys: ['kind', 'contentType', 'keepBody'] },
)

const echo: fc.Arbitrary<Behaviour> = fc.record({
  kind: fc.constant('echo-credentials' as const),
  echo: fc.constantFrom('message' as const, 'headers' as const, 'stream-error' as const, 'unreadable' as const),
  status: fc.constantFrom(400, 401, 403, 500, 503),
  tokens: fc.subarray(OWN_TOKENS),
})

const faults: fc.Arbitrary<Behaviour> = fc.oneof(
  fc.constantFrom<Behaviour>({ kind: 'malformed-json' }, { kind: 'reset' }, { kind: 'slow', delayMs: 5 }),
  fc.record({
    kind: fc.constant('truncated-stream' as const),
    afterChunks: fc.integer({ min: 1, max: 6 }),
    stall: fc.boolean(),
  }),
)

const hostile: fc.Arbitrary<Behaviour> = fc.oneof(
  { weight: 4, arbitrary: statusAnswer },
  { weight: 2, arbitrary: okAnswer },
  { weight: 4, arbitrary: mutated },
  { weight: 1, arbitrary: hugeIndex },
  { weight: 1, arbitrary: hugeLine },
  { weight: 1, arbitrary: oversize },
  { weight: 2, arbitrary: wrongContentType },
  { weight: 3, arbitrary: echo },
  { weight: 1, arbitrary: faults },
)

// -------------------------------------------------------------------------------------------------
// Checks on every answer
// -------------------------------------------------------------------------------------------------

/** What OpenAI's statuses become, and the codes a failure of its answer is reported with. */
const UPSTREAM_CODES: Record<number, RegExp> = {
  400: /^ERR_UPSTREAM_BAD_REQUEST$/,
  401: /^ERR_UPSTREAM_UNAUTHORIZED$/,
  403: /^ERR_UPSTREAM_FORBIDDEN$/,
  404: /^ERR_UPSTREAM_NOT_FOUND$/,
  413: /^ERR_UPSTREAM_PAYLOAD_TOO_LARGE$/,
  429: /^ERR_UPSTREAM_RATE_LIMITED$/,
  502: /^ERR_UPSTREAM_(SERVER_ERROR|BAD_RESPONSE|UNREACHABLE)$/,
  504: /^ERR_UPSTREAM_TIMEOUT$/,
}
const STREAM_ERROR_CODE = /^ERR_UPSTREAM_(SERVER_ERROR|BAD_RESPONSE|UNREACHABLE|STREAM_ERROR|TIMEOUT)$/

function assertErrorBody(body: unknown, code: RegExp, where: string): void {
  assert.ok(typeof body === 'object' && body !== null, `${where}: an object`)
  assert.deepEqual(Object.keys(body), ['error'], where)
  const error = (body as { error: Record<string, unknown> }).error
  assert.match(String(error.code), code, `${where}: ${String(error.message)}`)
  assert.equal(typeof error.message, 'string', where)
  assert.ok(Array.isArray(error.details), where)
  assert.equal(typeof error['request-id'], 'string', where)
}

function assertNoSecret(headers: IncomingHttpHeaders, text: string): void {
  const head = JSON.stringify(headers)
  for (const secret of SECRETS) {
    assert.ok(!text.includes(secret), `the answer holds ${secret}: ${text.slice(0, 400)}`)
    assert.ok(!head.includes(secret), `a header holds ${secret}: ${head}`)
  }
}

/** The last event is `done`, or an `error` with the error body (and then neither `output` nor `done`). */
function assertStreamEnd(text: string): void {
  const events = [...text.matchAll(/^event: (\w+)\ndata: (.*)$/gm)].map(([, event, data]) => ({ event, data }))
  const last = events.at(-1)
  assert.ok(last, `a stream with events: ${text.slice(0, 300)}`)
  if (last.event === 'done') return
  assert.equal(last.event, 'error', `a stream ends in done or error: ${events.map((e) => e.event).join(',')}`)
  assertErrorBody(JSON.parse(last.data!), STREAM_ERROR_CODE, 'the error event')
  assert.ok(!events.some((e) => e.event === 'output' || e.event === 'done'), 'no output or done before the error')
}

interface Tally {
  statuses: Map<string, number>
}

async function check(svc: Served, agent: Agent, call: Call, behaviour: Behaviour, tally: Tally): Promise<void> {
  svc.upstream.reset()
  svc.upstream.enqueue(behaviour)
  const started = Date.now()
  const res = await request(svc.base + call.path, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', accept: call.accept },
    body: JSON.stringify(call.payload),
  })
  let text = ''
  let cut = false
  try {
    text = await res.body.text()
  } catch {
    cut = true
  }
  const ms = Date.now() - started
  const status = res.statusCode
  const type = String(res.headers['content-type'] ?? '')
  const key = `${status}${cut ? ' cut' : ''}`
  tally.statuses.set(key, (tally.statuses.get(key) ?? 0) + 1)

  assert.ok(ms < ANSWER_BOUND_MS, `answered in ${ms} ms`)
  assertNoSecret(res.headers, text)
  if (status >= 200 && status < 300) {
    // Only a byte stream, which has no error event, may be cut short.
    if (cut) assert.match(type, /^(audio|image)\//, `a ${type} answer cut short`)
    else if (type.startsWith('text/event-stream')) assertStreamEnd(text)
    else if (type.startsWith('application/json')) JSON.parse(text)
    return
  }
  assert.ok(!cut, `a ${status} answer cut short`)
  const code = UPSTREAM_CODES[status]
  assert.ok(code, `status ${status}: ${text.slice(0, 400)}`)
  assert.match(type, /^application\/json/)
  assertErrorBody(JSON.parse(text), code, `the ${status} answer`)
  assert.equal(JSON.parse(text).error['request-id'], res.headers['x-request-id'])
}

// -------------------------------------------------------------------------------------------------
// The properties
// -------------------------------------------------------------------------------------------------

describe('fuzzing the upstream of each task route', () => {
  const gc = findGc()
  ;(Object.entries(CALLS) as Array<[TaskName, Call[]]>).forEach(([route, calls], i) => {
    test(`${route}: a hostile upstream gets documented answers, keeps its secrets and leaves the heap as it was`, async (t) => {
      const svc = await serveWithUpstream(t, ENV)
      const agent = new Agent({ keepAliveTimeout: 1000, connections: 4 })
      t.after(() => agent.close())
      const seed = SEED + i
      t.diagnostic(`seed ${seed} (FUZZ_SEED=${SEED}), ${RUNS} runs`)
      const tally: Tally = { statuses: new Map() }
      // A text transcript is relayed as it came, so an answer quoting the key there is no leak to judge.
      const pairs = fc
        .tuple(fc.constantFrom(...calls), hostile)
        .filter(([call, behaviour]) => !(relaysTextAsIs(call) && behaviour.kind === 'echo-credentials'))
      const property = fc.asyncProperty(pairs, ([call, behaviour]) => check(svc, agent, call, behaviour, tally))
      const logLinesBefore = capturedLogLines.length

      await fc.assert(property, { seed: seed + 1_000, numRuns: WARM_UP_RUNS })
      svc.upstream.reset()
      const logCharsBefore = capturedLogLines.reduce((n, line) => n + line.length, 0)
      const before = await settledHeap(gc)
      const started = Date.now()
      await fc.assert(property, { seed, numRuns: RUNS })
      const elapsed = Date.now() - started
      svc.upstream.reset()
      const after = await settledHeap(gc)

      const statuses = [...tally.statuses]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([s, n]) => `${s}×${n}`)
        .join(' ')
      t.diagnostic(`${RUNS} runs in ${elapsed} ms; statuses ${statuses}`)
      const leaked = capturedLogLines.slice(logLinesBefore).filter((line) => SECRETS.some((s) => line.includes(s)))
      assert.deepEqual(leaked, [], 'no log line holds a secret')
      // The harness keeps every log line (for the secrets check): allowed on top of the 10 %.
      const logGrowth = capturedLogLines.reduce((n, line) => n + line.length, 0) - logCharsBefore
      const limit = before * 1.1 + logGrowth * 2
      const mb = (n: number): string => `${(n / MiB).toFixed(1)} MB`
      t.diagnostic(`heapUsed ${mb(before)} -> ${mb(after)}, limit ${mb(limit)}`)
      assert.ok(after <= limit, `heap grew from ${mb(before)} to ${mb(after)} (limit ${mb(limit)})`)
      const health = await request(`${svc.base}/healthz`, { dispatcher: agent })
      assert.equal(health.statusCode, 200, 'the service is alive afterwards')
      await health.body.dump()
    })
  })
})
