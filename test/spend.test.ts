import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { loadConfig } from '../src/config.ts'
import { capturedLogLines, serveWithUpstream, type Served } from './support/app.ts'
import type { FakeOpenAI } from './support/fake-openai/index.ts'
import { metricSample } from './support/metric-sample.ts'
import { wavHeader } from './support/wav.ts'

const TOKEN_A = 'token-of-pipeline-a-0123'
const TOKEN_B = 'token-of-pipeline-b-4567'
const ADMIN = 'token-of-the-admin-89ab'

// Round prices, so that each expected cost below reads as the sum it is.
const PRICES = `
prices:
  gpt-4o-mini: { input-per-1m-tokens: 1, cached-input-per-1m-tokens: 0.5, output-per-1m-tokens: 4 }
  text-embedding-3-small: { input-per-1m-tokens: 2 }
  whisper-1: { per-minute: 0.01 }
  gpt-4o-transcribe: { input-per-1m-tokens: 2, audio-input-per-1m-tokens: 6, output-per-1m-tokens: 10, per-minute: 99 }
  tts-1: { per-1m-characters: 20 }
  dall-e-3: { per-image: { standard: { 1024x1024: 0.04 }, hd: { 1792x1024: 0.12 } } }
  dall-e-2: { per-image: { 512x512: 0.018 } }
  gpt-image-1: { input-per-1m-tokens: 0, output-per-1m-tokens: 40, per-image: { medium: { 1024x1024: 99 } } }
`

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'spend-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, text)
  return file
}

const CALLERS = `
callers:
  - name: pipeline-a
    token: ${TOKEN_A}
  - name: pipeline-b
    tokens: [${TOKEN_B}]
    models: ["gpt-4o-mini", "text-embedding-3-*"]
admin-tokens: [${ADMIN}]
${PRICES}`

async function serve(t: TestContext, file = CALLERS, env: Record<string, string> = {}): Promise<Served> {
  return serveWithUpstream(t, { CONFIG_FILE: configFile(file), ...env })
}

async function call(
  base: string,
  task: string,
  body: object,
  token = TOKEN_A,
  headers: Record<string, string> = {},
): Promise<{ res: Response; body: any }> {
  const res = await fetch(`${base}/v1/tasks/${task}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  })
  return { res, body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text() }
}

/** The next call to `path` answers this JSON (OpenAI's usage in it is what the cost is computed from). */
function answerOnce(upstream: FakeOpenAI, path: string, json: object): void {
  upstream.enqueue({
    kind: 'custom',
    path,
    handler(_req, res: ServerResponse) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(json))
    },
  })
}

const completion = (usage: object) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage,
})

function wav(): string {
  const data = Buffer.alloc(128)
  return `data:audio/wav;base64,${Buffer.concat([wavHeader(data.length, 8000), data]).toString('base64')}`
}

test("each task costs what its usage and the file's prices say, in the answer header", async (t) => {
  const { upstream, base } = await serve(t)
  const cost = async (task: string, body: object): Promise<string> => {
    const { res, body: answer } = await call(base, task, body)
    assert.equal(res.status, 200, JSON.stringify(answer))
    return res.headers.get('x-openai-tasks-cost-usd')!
  }

  // 1,000 input of which 400 cached, 500 output of which 200 reasoning: 600 × $1 + 400 × $0.5 + 500 × $4 per 1M.
  answerOnce(
    upstream,
    '/chat/completions',
    completion({
      prompt_tokens: 1000,
      completion_tokens: 500,
      total_tokens: 1500,
      prompt_tokens_details: { cached_tokens: 400 },
      completion_tokens_details: { reasoning_tokens: 200 },
    }),
  )
  assert.equal(await cost('text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }), '0.0028')

  answerOnce(upstream, '/embeddings', {
    object: 'list',
    model: 'text-embedding-3-small',
    data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
    usage: { prompt_tokens: 12345, total_tokens: 12345 },
  })
  assert.equal(await cost('text-embeddings', { model: 'text-embedding-3-small', text: 'a' }), '0.02469')

  // whisper-1 by the minute: 90 s at $0.01.
  answerOnce(upstream, '/audio/transcriptions', { text: 'hello', usage: { type: 'duration', seconds: 90 } })
  assert.equal(await cost('speech-recognition', { model: 'whisper-1', audio: wav() }), '0.015')
  // A plain-text answer says nothing of the length: the file's own, 12 s of 8 kHz PCM, at $0.01 a minute.
  const twelveSeconds = Buffer.alloc(12 * 8000 * 2)
  const wav12 = Buffer.concat([wavHeader(twelveSeconds.length, 8000), twelveSeconds]).toString('base64')
  const text = { model: 'whisper-1', audio: `data:audio/wav;base64,${wav12}`, 'response-format': 'text' }
  assert.equal(await cost('speech-recognition', text), '0.002')

  // gpt-4o-transcribe by tokens, though it has a per-minute price: 100 text × $2 + 900 audio × $6 + 50 × $10.
  answerOnce(upstream, '/audio/transcriptions', {
    text: 'hello',
    usage: {
      type: 'tokens',
      input_tokens: 1000,
      input_token_details: { audio_tokens: 900, text_tokens: 100 },
      output_tokens: 50,
      total_tokens: 1050,
    },
  })
  assert.equal(await cost('speech-recognition', { model: 'gpt-4o-transcribe', audio: wav() }), '0.0061')

  // 50 characters at $20 per million.
  assert.equal(await cost('text-to-speech', { model: 'tts-1', text: 'x'.repeat(50), voice: 'alloy' }), '0.001')

  // By quality and size: dall-e-3 at its default quality, and hd; dall-e-2 by size, three images.
  assert.equal(await cost('text-to-image', { model: 'dall-e-3', prompt: 'a cat' }), '0.04')
  assert.equal(
    await cost('text-to-image', { model: 'dall-e-3', prompt: 'a cat', quality: 'hd', size: '1792x1024' }),
    '0.12',
  )
  assert.equal(await cost('text-to-image', { model: 'dall-e-2', prompt: 'a cat', n: 3, size: '512x512' }), '0.054')
  // The GPT image model's tokens win over its per-image price: the stand-in reports 272 output tokens an image.
  assert.equal(await cost('text-to-image', { model: 'gpt-image-1', prompt: 'a cat', n: 2 }), '0.02176')
})

test('the usage and cost metrics count by caller, task, model and unit', async (t) => {
  const { base } = await serve(t)
  const a = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hello there' })
  const b = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, TOKEN_B)
  const usage = a.body.usage
  const metrics = await (await fetch(`${base}/metrics`)).text()
  const labels = { caller: 'pipeline-a', task: 'text-generation', model: 'gpt-4o-mini' }
  assert.equal(
    metricSample(metrics, 'openai_tasks_usage_total', { ...labels, unit: 'input_tokens' }),
    usage['prompt-tokens'],
  )
  assert.equal(
    metricSample(metrics, 'openai_tasks_usage_total', { ...labels, unit: 'output_tokens' }),
    usage['completion-tokens'],
  )
  assert.equal(
    metricSample(metrics, 'openai_tasks_cost_usd_total', labels),
    Number(a.res.headers.get('x-openai-tasks-cost-usd')),
  )
  assert.equal(
    metricSample(metrics, 'openai_tasks_cost_usd_total', { ...labels, caller: 'pipeline-b' }),
    Number(b.res.headers.get('x-openai-tasks-cost-usd')),
  )
  assert.equal(usage['cost-usd'], Number(a.res.headers.get('x-openai-tasks-cost-usd')), 'the JSON usage says it too')
})

test('a model without a price costs "unknown", with one warning, never 0', async (t) => {
  const { base } = await serve(t)
  for (let i = 0; i < 3; i++) {
    const { res } = await call(base, 'text-generation', { model: 'gpt-4o-mini-unlisted', prompt: 'hi' })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-openai-tasks-cost-usd'), 'unknown')
  }
  const warnings = capturedLogLines.filter((line) => line.includes('cost unknown for gpt-4o-mini-unlisted'))
  assert.equal(warnings.length, 1, 'one warning for the model')
  const metrics = await (await fetch(`${base}/metrics`)).text()
  const labels = { caller: 'pipeline-a', task: 'text-generation' }
  assert.equal(
    metricSample(metrics, 'openai_tasks_unpriced_calls_total', { ...labels, model: 'gpt-4o-mini-unlisted' }),
    3,
  )
  const usage: any = await (await fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${TOKEN_A}` } })).json()
  assert.equal(usage.callers[0].today['unpriced-calls'], 3)
  assert.equal(usage.callers[0].today['cost-usd'], 0)
})

test('a dated snapshot is priced as its base model', async (t) => {
  const { base } = await serve(t)
  const plain = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'same words' })
  const dated = await call(base, 'text-generation', { model: 'gpt-4o-mini-2024-07-18', prompt: 'same words' })
  assert.notEqual(plain.res.headers.get('x-openai-tasks-cost-usd'), '0')
  assert.equal(dated.res.headers.get('x-openai-tasks-cost-usd'), plain.res.headers.get('x-openai-tasks-cost-usd'))
})

test("a stream's output event costs what the JSON answer does; a stream cut short is counted", async (t) => {
  const { upstream, base } = await serve(t)
  const input = { model: 'gpt-4o-mini', prompt: 'Tell me a long story about the sea' }
  const json = await call(base, 'text-generation', input)
  const stream = await call(base, 'text-generation', input, TOKEN_A, { accept: 'text/event-stream' })
  const output = /event: output\ndata: (.*)\n/.exec(stream.body as string)?.[1]
  assert.ok(output, stream.body as string)
  assert.equal(JSON.parse(output).usage['cost-usd'], Number(json.res.headers.get('x-openai-tasks-cost-usd')))

  // One chunk, then silence: cut after the first delta, what arrived is counted for pipeline-b.
  upstream.enqueue({
    kind: 'custom',
    path: '/chat/completions',
    handler(_req, res: ServerResponse) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' }
      res.write(`data: ${JSON.stringify({ ...chunk, choices: [{ index: 0, delta: { content: 'Once' } }] })}\n\n`)
    },
  })
  const controller = new AbortController()
  const res = await fetch(`${base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN_B}`, accept: 'text/event-stream' },
    body: JSON.stringify(input),
    signal: controller.signal,
  })
  const reader = res.body!.getReader()
  let text = ''
  while (!text.includes('event: delta')) text += new TextDecoder().decode((await reader.read()).value)
  controller.abort()
  const seen = async (): Promise<any> => {
    const res = await fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${TOKEN_B}` } })
    return ((await res.json()) as any).callers[0].today
  }
  let today = await seen()
  for (let i = 0; i < 50 && today.calls === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    today = await seen()
  }
  assert.equal(today.calls, 1, 'the cut stream is one call')
  const { usage } = today['by-model'][0]
  assert.equal(usage.output_tokens, 1, 'a token for the one chunk that came')
  assert.ok(usage.input_tokens > 0, 'the prompt, estimated')
  assert.ok(today['cost-usd'] > 0, 'and it cost something')
})

test("a caller's models list: another model is a 403 naming it, before OpenAI", async (t) => {
  const { upstream, base } = await serve(t)
  const { res, body } = await call(base, 'text-generation', { model: 'gpt-4o', prompt: 'hi' }, TOKEN_B)
  assert.equal(res.status, 403)
  assert.equal(body.error.code, 'ERR_MODEL_NOT_ALLOWED')
  assert.match(body.error.message, /gpt-4o.*pipeline-b/)
  assert.equal(upstream.requests.length, 0)
  assert.equal((await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, TOKEN_B)).res.status, 200)
  const batch = await call(base, 'text-generation/batch', { inputs: [{ model: 'gpt-4o', prompt: 'hi' }] }, TOKEN_B)
  assert.equal(batch.body.outputs[0].error.code, 'ERR_MODEL_NOT_ALLOWED', 'a batch item too')
})

test('budgets: 0 blocks; a spent day budget is a 429 until UTC midnight; other callers go on', async (t) => {
  const file = `
callers:
  - { name: blocked, token: token-of-the-blocked-0, budget: { usd-per-month: 0 } }
  - { name: small, token: token-of-the-small-one, budget: { usd-per-day: 0.000001 } }
  - { name: free, token: token-of-the-free-one-0 }
${PRICES}`
  const { upstream, base } = await serve(t, file)
  const blocked = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, 'token-of-the-blocked-0')
  assert.equal(blocked.res.status, 429)
  assert.equal(blocked.body.error.code, 'ERR_BUDGET_EXCEEDED')
  assert.match(blocked.body.error.message, /month/)
  assert.equal(blocked.res.headers.get('x-openai-tasks-cost-usd'), '0', 'a refusal says it cost nothing')
  assert.equal(upstream.requests.length, 0, 'nothing reached OpenAI')

  const first = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, 'token-of-the-small-one')
  assert.equal(first.res.status, 200, 'under budget: served, and it spends more than the budget')
  const second = await call(base, 'text-embeddings/batch', { inputs: [{ text: 'x' }] }, 'token-of-the-small-one')
  assert.equal(second.res.status, 429)
  assert.match(second.body.error.message, /day/)
  const retryAfter = Number(second.res.headers.get('retry-after'))
  const midnight = Math.ceil((Date.UTC(...utcToday(1)) - Date.now()) / 1000)
  assert.ok(
    retryAfter > 0 && Math.abs(retryAfter - midnight) <= 2,
    `Retry-After ${retryAfter}, midnight in ${midnight}`,
  )
  assert.equal(upstream.requests.length, 1)

  const free = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, 'token-of-the-free-one-0')
  assert.equal(free.res.status, 200)
})

function utcToday(daysAhead: number): [number, number, number] {
  const now = new Date()
  return [now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + daysAhead]
}

test('/v1/usage: a caller sees its own spend, an admin token every caller and nothing else', async (t) => {
  const { base } = await serve(t)
  const a = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'one' })
  await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'two' }, TOKEN_B)
  const usage = async (token: string) => fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${token}` } })

  const own: any = await (await usage(TOKEN_A)).json()
  assert.deepEqual(
    own.callers.map((c: { caller: string }) => c.caller),
    ['pipeline-a'],
  )
  assert.equal(own.shared, false, 'without Redis, this process only')
  assert.equal(own.callers[0].today['cost-usd'], Number(a.res.headers.get('x-openai-tasks-cost-usd')))
  assert.equal(own.callers[0]['this-month'].calls, 1)
  assert.equal(own.day, new Date().toISOString().slice(0, 10))

  const all: any = await (await usage(ADMIN)).json()
  assert.deepEqual(
    all.callers.map((c: { caller: string }) => c.caller),
    ['pipeline-a', 'pipeline-b'],
  )
  const task = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, ADMIN)
  assert.equal(task.res.status, 401, 'an admin token calls no task')
  assert.equal((await usage('not-a-token-at-all-000')).status, 401)
})

test('SERVICE_TOKENS keep working: each token is a caller named by its digest', async (t) => {
  const { base } = await serveWithUpstream(t, { SERVICE_TOKENS: 'legacy-token-0123456789' })
  const res = await call(base, 'text-generation', { model: 'gpt-4o-mini', prompt: 'hi' }, 'legacy-token-0123456789')
  assert.equal(res.res.status, 200)
  const usage: any = await (
    await fetch(`${base}/v1/usage`, { headers: { authorization: 'Bearer legacy-token-0123456789' } })
  ).json()
  assert.match(usage.callers[0].caller, /^token-[0-9a-f]{12}$/)
  assert.equal(usage.callers[0].today.calls, 1)
})

test('an embeddings cache hit costs nothing', async (t) => {
  const { base } = await serve(t)
  const input = { model: 'text-embedding-3-small', text: 'the same words again' }
  const miss = await call(base, 'text-embeddings', input)
  const hit = await call(base, 'text-embeddings', input)
  assert.notEqual(miss.res.headers.get('x-openai-tasks-cost-usd'), '0')
  assert.match(hit.res.headers.get('cache-status') ?? '', /hit/)
  assert.equal(hit.res.headers.get('x-openai-tasks-cost-usd'), '0')
})

test('a malformed callers or prices section stops the start, naming the field', () => {
  const refused = (text: string): string => {
    try {
      loadConfig({ CONFIG_FILE: configFile(text), OPENAI_API_KEY: 'sk-test-key-0000000000' })
    } catch (err) {
      return (err as Error).message
    }
    assert.fail(`accepted:\n${text}`)
  }
  assert.match(
    refused('callers:\n  - { name: a, token: aaaaaaaaaaaaaaaa }\n  - { name: a, token: bbbbbbbbbbbbbbbb }\n'),
    /callers\[1\]\.name: a is the name of another caller/,
  )
  assert.match(refused('callers:\n  - { name: a }\n'), /callers\[0\]: a needs a token/)
  assert.match(
    refused('callers:\n  - { name: a, token: aaaaaaaaaaaaaaaa }\n  - { name: b, token: aaaaaaaaaaaaaaaa }\n'),
    /a token of b is also a token of a/,
  )
  assert.match(
    refused('callers:\n  - { name: a, token: aaaaaaaaaaaaaaaa, budget: { usd-per-week: 1 } }\n'),
    /usd-per-week/,
  )
  assert.match(refused('prices:\n  gpt-4o: { input-per-1k-tokens: 1 }\n'), /prices\.gpt-4o\.input-per-1k-tokens/)
  assert.match(refused('prices:\n  gpt-4o: { output-per-1m-tokens: -1 }\n'), /prices\.gpt-4o\.output-per-1m-tokens/)
})
