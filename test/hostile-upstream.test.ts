/**
 * A hostile upstream, through real sockets: the stand-in OpenAI plays the answers a broken or
 * malicious compatible server (or whatever answers at its address) sends, and the service must
 * keep the key to itself, keep its memory bounded and answer with its documented errors.
 * Issue 20's finding 4 (upstream text carries the key).
 */
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, test, type TestContext } from 'node:test'
import { request } from 'undici'
import { redactSecrets } from '../src/upstream/redact-secrets.ts'
import { capturedLogLines, serveWithUpstream, TEST_API_KEY, type Served } from './support/app.ts'
import { openAIError } from './support/fake-openai/index.ts'

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
