/**
 * A hostile upstream, through real sockets: the stand-in OpenAI plays the answers a broken or
 * malicious compatible server (or whatever answers at its address) sends, and the service must
 * keep the key to itself, keep its memory bounded and answer with its documented errors.
 * Issue 20's findings 4 (upstream text carries the key), 7 (indexes, lines and sizes from the
 * upstream are trusted) and 9a (a 200 text/html answers a stream request).
 */
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, test, type TestContext } from 'node:test'
import { request } from 'undici'
import { embeddingsAnswerBytes } from '../src/upstream/answer-limits.ts'
import { redactSecrets } from '../src/upstream/redact-secrets.ts'
import { capturedLogLines, serveWithUpstream, TEST_API_KEY, type Served } from './support/app.ts'
import { openAIError, type Behaviour } from './support/fake-openai/index.ts'
import { findGc, peakMemoryGrowth, settledHeap } from './support/heap.ts'

const MiB = 1024 * 1024
const NO_RETRIES = { UPSTREAM_MAX_RETRIES: '0' }
const WAV = 'data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='

/** One valid input per task, and the OpenAI path it goes to. */
const TASKS = {
  'text-generation': { path: '/v1/chat/completions', payload: { model: 'gpt-4o-mini', prompt: 'Say hi' } },
  'text-embeddings': { path: '/v1/embeddings', payload: { model: 'text-embedding-3-small', text: 'A fox' } },
  'speech-recognition': {
    path: '/v1/audio/transcriptions',
    payload: { model: 'gpt-4o-transcribe', audio: WAV, language: 'en' },
  },
  'text-to-speech': { path: '/v1/audio/speech', payload: { model: 'tts-1', text: 'Hello there', voice: 'alloy' } },
  'text-to-image': { path: '/v1/images/generations', payload: { model: 'gpt-image-1', prompt: 'A wombat' } },
} as const
type TaskName = keyof typeof TASKS
const TASK_NAMES = Object.keys(TASKS) as TaskName[]

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  text: string
  ms: number
}

interface SseEvent {
  event: string
  data: any
}

async function post(
  svc: Served,
  task: TaskName,
  { accept = 'application/json', payload = TASKS[task].payload as object } = {},
): Promise<Answer> {
  const started = Date.now()
  const res = await request(`${svc.base}/v1/tasks/${task}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept },
    body: JSON.stringify(payload),
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, ms: Date.now() - started }
}

function eventsOf(answer: Answer): SseEvent[] {
  assert.equal(answer.status, 200, answer.text.slice(0, 300))
  assert.match(String(answer.headers['content-type']), /^text\/event-stream/)
  return answer.text
    .split('\n\n')
    .filter((block) => block.startsWith('event: '))
    .map((block) => {
      const [event, data] = block.split('\n')
      return { event: event!.slice('event: '.length), data: JSON.parse(data!.slice('data: '.length)) }
    })
}

/** The answer is a JSON error with this status and code; returns its `error`. */
function errorOf(answer: Answer, status: number, code: string): any {
  assert.equal(answer.status, status, answer.text.slice(0, 300))
  assert.match(String(answer.headers['content-type']), /^application\/json/)
  const { error } = JSON.parse(answer.text)
  assert.equal(error.code, code, error.message)
  assert.equal(error['request-id'], answer.headers['x-request-id'])
  return error
}

/** The stream's last event is an `error` with this code, and neither `output` nor `done` came; returns its `error`. */
function streamErrorOf(answer: Answer, code: string): any {
  const events = eventsOf(answer)
  assert.equal(events.at(-1)?.event, 'error', events.map((e) => e.event).join(','))
  assert.ok(!events.some((e) => e.event === 'output' || e.event === 'done'))
  const { error } = events.at(-1)!.data
  assert.equal(error.code, code, error.message)
  return error
}

/** Neither the answer (body and headers) nor any log line of its request holds `secret`. */
function assertKept(answer: Answer, secret: string): void {
  assert.ok(!answer.text.includes(secret), `the answer holds the secret: ${answer.text.slice(0, 500)}`)
  assert.ok(!JSON.stringify(answer.headers).includes(secret), 'a header holds the secret')
  const requestId = String(answer.headers['x-request-id'])
  const lines = capturedLogLines.filter((line) => line.includes(requestId))
  assert.ok(lines.length > 0, 'the request was logged')
  assert.deepEqual(
    lines.filter((line) => line.includes(secret)),
    [],
    'no log line of the request holds the secret',
  )
}

async function serve(t: TestContext, env: Record<string, string> = {}): Promise<Served> {
  return serveWithUpstream(t, { ...NO_RETRIES, ...env })
}

describe('finding 4: what the upstream says is redacted before it reaches the caller or the log', () => {
  test('a 401 echoing the key as a bearer token', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'echo-credentials' })
    const answer = await post(svc, 'text-generation')
    const error = errorOf(answer, 401, 'ERR_UPSTREAM_UNAUTHORIZED')
    assert.equal(error.message, 'OpenAI refused the credentials: Incorrect API key provided: Bearer [redacted].')
    assert.equal(error.details[0]['upstream-code'], '[redacted]')
    assert.equal(error.details[0]['upstream-request-id'], 'req_[redacted]')
    assertKept(answer, TEST_API_KEY)
  })

  test("a 500 listing its request headers, the upstream's own secrets with them", async (t) => {
    const svc = await serve(t)
    const own = 'proxy-secret-0123456789'
    svc.upstream.enqueue({ kind: 'echo-credentials', echo: 'headers', tokens: [own] })
    const answer = await post(svc, 'text-embeddings')
    const error = errorOf(answer, 502, 'ERR_UPSTREAM_SERVER_ERROR')
    assert.match(error.message, /authorization: \[redacted\]/)
    assert.match(error.message, /Bearer \[redacted\] api-key: \[redacted\]/)
    assertKept(answer, TEST_API_KEY)
    assertKept(answer, own)
  })

  test('an error event in a stream that had started', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'echo-credentials', echo: 'stream-error' })
    const answer = await post(svc, 'text-generation', { accept: 'text/event-stream' })
    const error = streamErrorOf(answer, 'ERR_UPSTREAM_STREAM_ERROR')
    assert.match(error.message, /Bearer \[redacted\]/)
    assertKept(answer, TEST_API_KEY)
  })

  for (const accept of ['application/json', 'text/event-stream']) {
    test(`an unreadable 200 quoting the key (${accept})`, async (t) => {
      const svc = await serve(t)
      svc.upstream.enqueue({ kind: 'echo-credentials', echo: 'unreadable' })
      const answer = await post(svc, 'text-generation', { accept })
      const error =
        accept === 'application/json'
          ? errorOf(answer, 502, 'ERR_UPSTREAM_BAD_RESPONSE')
          : streamErrorOf(answer, 'ERR_UPSTREAM_BAD_RESPONSE')
      assert.match(error.message, /Bearer \[redacted\]/)
      assertKept(answer, TEST_API_KEY)
    })
  }

  test('a key in use of no known shape is redacted wherever the upstream repeats it', async (t) => {
    const key = 'my-vllm-key-7f3a9c'
    const svc = await serve(t, { OPENAI_API_KEY: key })
    svc.upstream.enqueue({ status: 400, body: openAIError(400, `key ${key} has no access to model gpt-4o-mini`) })
    const answer = await post(svc, 'text-generation')
    const error = errorOf(answer, 400, 'ERR_UPSTREAM_BAD_REQUEST')
    assert.equal(error.message, 'OpenAI rejected the request: key [redacted] has no access to model gpt-4o-mini')
    assertKept(answer, key)
  })

  test("OpenAI's own masked key is kept as OpenAI wrote it", async (t) => {
    const svc = await serve(t)
    const message =
      'Incorrect API key provided: sk-proj-********************abcd. You can find your API key at https://platform.openai.com/account/api-keys.'
    svc.upstream.enqueue({ status: 401, body: openAIError(401, message, undefined, 'invalid_api_key') })
    const error = errorOf(await post(svc, 'text-to-speech'), 401, 'ERR_UPSTREAM_UNAUTHORIZED')
    assert.equal(error.message, `OpenAI refused the credentials: ${message}`)
    assert.equal(error.details[0]['upstream-code'], 'invalid_api_key')
  })

  test('the shapes of credentials redacted, and the text around them kept', () => {
    const cases: Array<[string, string]> = [
      ['Incorrect API key provided: sk-abc123def456ghi789.', 'Incorrect API key provided: [redacted].'],
      ['key sk-proj-AbC_dEf-123456789 is revoked', 'key [redacted] is revoked'],
      ['Incorrect API key provided: sk-proj-****abcd.', 'Incorrect API key provided: sk-proj-****abcd.'],
      ['sent Authorization: Bearer eyJhbGciOi.J9.x-y_z', 'sent Authorization: [redacted]'],
      ['(i.e. Authorization: Bearer YOUR_KEY)', '(i.e. Authorization: [redacted])'],
      ['token Bearer abc.def, rejected', 'token Bearer [redacted], rejected'],
      ['{"api-key":"0123abcd","model":"m"}', '{"api-key":"[redacted]","model":"m"}'],
      ['x-api-key: hunter2hunter2\nhost: a', 'x-api-key: [redacted]\nhost: a'],
      ['GET /v1?api_key=s3cr3t&x=1', 'GET /v1?api_key=[redacted]&x=1'],
      ['Maximum context length is 128000 tokens', 'Maximum context length is 128000 tokens'],
      ['the task-management tool failed', 'the task-management tool failed'],
    ]
    for (const [text, redacted] of cases) assert.equal(redactSecrets(text, undefined), redacted, text)
    assert.equal(redactSecrets('no model for k3y-Of-Any-Shape!', 'k3y-Of-Any-Shape'), 'no model for [redacted]!')
    assert.equal(redactSecrets('EMPTY is not a valid key', 'EMPTY'), 'EMPTY is not a valid key', 'a placeholder key')
  })
})

describe('finding 7: indexes, lines and sizes from the upstream are bounded', () => {
  const gc = findGc()

  /** Runs `work` from a settled heap and returns its answer with how far memory rose meanwhile. */
  async function measured(t: TestContext, work: () => Promise<Answer>): Promise<{ answer: Answer; growthMiB: number }> {
    await settledHeap(gc)
    const { value, growth } = await peakMemoryGrowth(work)
    t.diagnostic(`answered in ${value.ms} ms, memory rose by ${(growth / MiB).toFixed(1)} MiB at most`)
    return { answer: value, growthMiB: growth / MiB }
  }

  for (const kind of ['huge-choice-index', 'huge-tool-call-index'] as const) {
    test(`a chat stream chunk naming a ${kind === 'huge-choice-index' ? 'choice' : 'tool call'} index of 5,000,000 fails the stream at once`, async (t) => {
      const svc = await serve(t)
      svc.upstream.enqueue({ kind, index: 5_000_000 })
      const { answer, growthMiB } = await measured(t, () =>
        post(svc, 'text-generation', { accept: 'text/event-stream' }),
      )
      const error = streamErrorOf(answer, 'ERR_UPSTREAM_BAD_RESPONSE')
      assert.match(error.message, /index 5000000/)
      assert.ok(growthMiB < 40, `memory rose by ${growthMiB.toFixed(1)} MiB`)
      assert.ok(answer.ms < 5000, `answered in ${answer.ms} ms`)
    })
  }

  test('a choice index that is one of the n asked for is taken, the next is not', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'huge-choice-index', index: 1 })
    const two = await post(svc, 'text-generation', {
      accept: 'text/event-stream',
      payload: { ...TASKS['text-generation'].payload, n: 2 },
    })
    assert.deepEqual(eventsOf(two).at(-2)!.data.texts, ['', 'x'])
    svc.upstream.enqueue({ kind: 'huge-choice-index', index: 2 })
    const three = await post(svc, 'text-generation', {
      accept: 'text/event-stream',
      payload: { ...TASKS['text-generation'].payload, n: 2 },
    })
    assert.match(
      streamErrorOf(three, 'ERR_UPSTREAM_BAD_RESPONSE').message,
      /choice index 2, not one of the 2 asked for/,
    )
  })

  test('a 400 MB SSE line fails the stream once it passes the event bound, reading little of it', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'huge-line' })
    const { answer, growthMiB } = await measured(t, () => post(svc, 'text-generation', { accept: 'text/event-stream' }))
    assert.match(streamErrorOf(answer, 'ERR_UPSTREAM_BAD_RESPONSE').message, /stream event over 8 Mi characters/)
    const sent = svc.upstream.requests[0]!.responseBytes!
    assert.ok(
      sent < 40 * MiB,
      `the stand-in wrote ${(sent / MiB).toFixed(1)} MiB of its 400 MB before the service hung up`,
    )
    assert.ok(growthMiB < 100, `memory rose by ${growthMiB.toFixed(1)} MiB`)
    await svc.upstream.waitFor(() => svc.upstream.requests[0]!.aborted, 2000)
  })

  test('a stream that never ends fails once it passes its bound', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'oversize', bytes: 1024 * MiB })
    const { answer, growthMiB } = await measured(t, () =>
      post(svc, 'speech-recognition', { accept: 'text/event-stream' }),
    )
    assert.match(streamErrorOf(answer, 'ERR_UPSTREAM_BAD_RESPONSE').message, /a stream over 64 MiB/)
    const sent = svc.upstream.requests[0]!.responseBytes!
    assert.ok(sent < 100 * MiB, `the stand-in wrote ${(sent / MiB).toFixed(1)} MiB of 1 GiB`)
    assert.ok(growthMiB < 100, `memory rose by ${growthMiB.toFixed(1)} MiB`)
  })

  test('an answer that declares itself over its bound is a 502 before its body is read', async (t) => {
    const svc = await serve(t)
    for (const task of TASK_NAMES) {
      for (const accept of ['application/json', 'text/event-stream', 'audio/mpeg', 'image/png']) {
        svc.upstream.reset()
        svc.upstream.enqueue({ kind: 'oversize', bytes: 1024 * MiB, declareLength: true })
        const answer = await post(svc, task, { accept })
        const error = errorOf(answer, 502, 'ERR_UPSTREAM_BAD_RESPONSE')
        assert.match(error.message, / over \d+ [KM]iB, more than this service takes in/)
        const sent = svc.upstream.requests[0]!.responseBytes!
        assert.ok(sent < 8 * MiB, `${task} (${accept}): the stand-in wrote ${(sent / MiB).toFixed(1)} MiB`)
      }
    }
  })

  test('a JSON answer past its bound is a 502, having read no more than the bound', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'oversize', bytes: 400 * MiB })
    const { answer, growthMiB } = await measured(t, () => post(svc, 'text-generation'))
    assert.match(
      errorOf(answer, 502, 'ERR_UPSTREAM_BAD_RESPONSE').message,
      /an answer from \/chat\/completions over 64 MiB/,
    )
    const sent = svc.upstream.requests[0]!.responseBytes!
    assert.ok(sent < 100 * MiB, `the stand-in wrote ${(sent / MiB).toFixed(1)} MiB of 400`)
    assert.ok(growthMiB < 200, `memory rose by ${growthMiB.toFixed(1)} MiB`)
  })

  test('a JSON answer cut off after its headers is a 502 at once, not a wait', async (t) => {
    const svc = await serve(t)
    svc.upstream.setHandler('/chat/completions', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      res.write('{"id":"chatcmpl-cut","object":"chat.completion","choices":[')
      setTimeout(() => res.socket?.destroy(), 20)
    })
    const answer = await post(svc, 'text-generation')
    assert.match(errorOf(answer, 502, 'ERR_UPSTREAM_UNREACHABLE').message, /other side closed/)
    assert.ok(answer.ms < 5_000, `answered after ${answer.ms} ms`)
  })

  test('the embeddings bound follows the inputs asked for', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'oversize', bytes: 4 * MiB })
    const one = await post(svc, 'text-embeddings')
    assert.match(errorOf(one, 502, 'ERR_UPSTREAM_BAD_RESPONSE').message, /an answer from \/embeddings over 225 KiB/)
    const ok = await post(svc, 'text-embeddings', { payload: { model: 'text-embedding-3-large', text: 'A fox' } })
    assert.equal(ok.status, 200)
  })

  test("OpenAI's largest embeddings answer fits its bound: 2,048 inputs of 3,072 floats", async (t) => {
    const svc = await serve(t)
    const input = Array.from({ length: 8 }, (_, i) => `input ${i}`)
    const res = await request(`${svc.upstream.url}/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-large', input, encoding_format: 'float' }),
    })
    const reply = await res.body.json()
    // The stand-in prints full doubles; OpenAI prints ~10 digits, on indented lines of their own.
    for (const text of [JSON.stringify(reply), JSON.stringify(reply, null, 2)]) {
      const whole = (Buffer.byteLength(text) / input.length) * 2048
      for (const bound of [embeddingsAnswerBytes(2048, 3072), embeddingsAnswerBytes(2048, undefined)]) {
        assert.ok(whole * 1.2 < bound, `${(whole / MiB).toFixed(0)} MiB in a bound of ${(bound / MiB).toFixed(0)} MiB`)
      }
    }
  })

  test('a streamed speech answer past its bound is cut off there', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ kind: 'oversize', bytes: 400 * MiB })
    const res = await request(`${svc.base}/v1/tasks/text-to-speech`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'audio/mpeg' },
      body: JSON.stringify(TASKS['text-to-speech'].payload),
    })
    assert.equal(res.statusCode, 200)
    let received = 0
    const cut = await (async () => {
      for await (const chunk of res.body) received += (chunk as Buffer).length
    })().then(
      () => false,
      () => true,
    )
    assert.ok(cut, 'the caller sees its answer cut short')
    assert.ok(received <= 128 * MiB, `the caller got ${(received / MiB).toFixed(1)} MiB`)
    const sent = svc.upstream.requests[0]!.responseBytes!
    assert.ok(sent < 200 * MiB, `the stand-in wrote ${(sent / MiB).toFixed(1)} MiB of 400`)
  })
})

describe('finding 9a: a 2xx that is not an event stream answers a stream request with a JSON 502', () => {
  const asked: Array<[TaskName, Behaviour]> = [
    ['text-generation', { kind: 'wrong-content-type' }],
    ['speech-recognition', { kind: 'wrong-content-type' }],
    ['text-generation', { kind: 'wrong-content-type', contentType: 'application/json', keepBody: true }],
    ['speech-recognition', { kind: 'wrong-content-type', contentType: 'text/plain', keepBody: true }],
  ]
  for (const [task, behaviour] of asked) {
    const type = (behaviour as { contentType?: string }).contentType ?? 'text/html'
    test(`${task} answered 200 ${type}`, async (t) => {
      const svc = await serve(t)
      svc.upstream.enqueue(behaviour)
      const answer = await post(svc, task, { accept: 'text/event-stream' })
      const error = errorOf(answer, 502, 'ERR_UPSTREAM_BAD_RESPONSE')
      assert.match(error.message, new RegExp(`the stream answer is ${type}.*, not text/event-stream`))
    })
  }

  for (const contentType of ['text/event-stream', 'Text/Event-Stream;charset=UTF-8', null]) {
    test(`a stream answered ${contentType ?? 'without a Content-Type'}, as compatible servers do, is relayed`, async (t) => {
      const svc = await serve(t)
      for (const task of ['text-generation', 'speech-recognition'] as const) {
        svc.upstream.enqueue({ kind: 'wrong-content-type', contentType, keepBody: true })
        const events = eventsOf(await post(svc, task, { accept: 'text/event-stream' }))
        assert.deepEqual(
          events.slice(-2).map((e) => e.event),
          ['output', 'done'],
        )
      }
    })
  }
})

describe('numbers an answer reports in the wrong type are not taken for counts', () => {
  const completion = (usage: object): object => ({
    id: 'chatcmpl-odd',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
    usage,
  })
  const ODD_USAGE = {
    prompt_tokens: 'x',
    completion_tokens: -1,
    total_tokens: {},
    prompt_tokens_details: { cached_tokens: 1.5 },
  }

  test('a chat completion whose usage counts are not whole numbers is answered without them', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ status: 200, body: completion(ODD_USAGE) })
    const answer = await post(svc, 'text-generation')
    assert.equal(answer.status, 200, answer.text)
    assert.deepEqual(JSON.parse(answer.text), {
      texts: ['hi'],
      usage: { 'prompt-token-details': { 'audio-tokens': 0, 'cached-tokens': 0 } },
    })
  })

  test('a streamed chat completion whose usage counts are not whole numbers still ends in done', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({
      kind: 'custom',
      handler: (_req, res) => {
        const chunk = (fields: object): string => `data: ${JSON.stringify({ id: 'chatcmpl-odd', ...fields })}\n\n`
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write(chunk({ choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: 'stop' }] }))
        res.end(chunk({ choices: [], usage: ODD_USAGE }) + 'data: [DONE]\n\n')
      },
    })
    const events = eventsOf(await post(svc, 'text-generation', { accept: 'text/event-stream' }))
    assert.deepEqual(
      events.map((e) => e.event),
      ['delta', 'output', 'done'],
    )
  })

  test('a transcript of negative duration is answered, its seconds not counted', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ status: 200, body: { text: 'Hello.', language: 'english', duration: -5, segments: [] } })
    const payload = { model: 'whisper-1', audio: WAV, 'response-format': 'verbose_json' }
    const answer = await post(svc, 'speech-recognition', { payload })
    assert.equal(answer.status, 200, answer.text)
    assert.equal(JSON.parse(answer.text).text, 'Hello.')
  })

  test('an embedding that is not all numbers, or an image that is not an object, is a 502', async (t) => {
    const svc = await serve(t)
    svc.upstream.enqueue({ status: 200, body: { object: 'list', data: [{ index: 0, embedding: [0.1, 'x'] }] } })
    errorOf(await post(svc, 'text-embeddings'), 502, 'ERR_UPSTREAM_BAD_RESPONSE')
    svc.upstream.enqueue({ status: 200, body: { created: 1_700_000_000, data: [null] } })
    errorOf(await post(svc, 'text-to-image'), 502, 'ERR_UPSTREAM_BAD_RESPONSE')
  })
})
