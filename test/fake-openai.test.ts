import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import sharp from 'sharp'
import OpenAI, { toFile } from 'openai'
import {
  contractStats,
  expectedSpeechBytes,
  openAIError,
  startFakeOpenAI,
  validateAgainstOpenAIContract,
  validateOpenAIComponent,
  validateOpenAIResponse,
} from './support/fake-openai/index.ts'
import type { FakeOpenAI } from './support/fake-openai/index.ts'

const AUTH = { authorization: 'Bearer sk-test-123' }

let fake: FakeOpenAI

async function post(path: string, body: unknown, headers: Record<string, string> = AUTH): Promise<Response> {
  return fetch(fake.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

function parseSse(text: string): unknown[] {
  assert.ok(text.endsWith('\n\n'), 'SSE ends with a blank line')
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      assert.match(block, /^data: /)
      const data = block.slice('data: '.length)
      return data === '[DONE]' ? '[DONE]' : JSON.parse(data)
    })
}

const chatBody = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] }

before(async () => {
  fake = await startFakeOpenAI()
  const s = contractStats()
  // Shown in the test output: what the contract costs this process.
  console.log(
    `contract: ${s.source}, load ${s.loadMs.toFixed(0)} ms, compile ${s.compileMs.toFixed(0)} ms, ` +
      `${s.componentsKept} components kept`,
  )
})
after(async () => {
  await fake.close()
})
beforeEach(() => fake.reset())

describe('contract', () => {
  test('request schemas compile and judge bodies', () => {
    assert.equal(validateAgainstOpenAIContract('/v1/chat/completions', chatBody), null)
    assert.equal(validateAgainstOpenAIContract('/chat/completions', chatBody), null)
    const missing = validateAgainstOpenAIContract('/chat/completions', { model: 'gpt-4o' })
    assert.ok(missing?.some((e: any) => e.keyword === 'required' && e.params.missingProperty === 'messages'))
    assert.ok(validateAgainstOpenAIContract('/embeddings', { model: 'x', input: 'a', extra: 1 }))
    assert.equal(validateAgainstOpenAIContract('/audio/speech', { model: 'tts-1', input: 'hi', voice: 'alloy' }), null)
    assert.ok(validateAgainstOpenAIContract('/audio/speech', { model: 'tts-1', input: 'hi', voice: 'alloy', speed: 9 }))
    assert.equal(validateAgainstOpenAIContract('/images/generations', { prompt: 'otter', model: 'dall-e-3' }), null)
    assert.throws(() => validateAgainstOpenAIContract('/v1/models', {}), /not a contract operation/)
  })

  test('nullable: true becomes a "null" type (and enum member)', () => {
    // `n` is {type: integer, nullable: true}; images `quality` is a nullable enum.
    assert.equal(
      validateAgainstOpenAIContract('/chat/completions', { ...chatBody, n: null, max_completion_tokens: null }),
      null,
    )
    assert.equal(validateAgainstOpenAIContract('/images/generations', { prompt: 'p', quality: null, n: null }), null)
    assert.ok(validateAgainstOpenAIContract('/images/generations', { prompt: 'p', quality: 'ultra' }))
  })

  test('the error shape is the contract ErrorResponse', () => {
    assert.equal(validateOpenAIComponent('ErrorResponse', openAIError(429, 'slow down')), null)
    assert.deepEqual(openAIError(400, 'bad', undefined, null), {
      error: { message: 'bad', type: 'invalid_request_error', param: null, code: null },
    })
    assert.deepEqual(openAIError(429, 'x'), {
      error: { message: 'x', type: 'requests', param: null, code: 'rate_limit_exceeded' },
    })
  })
})

describe('chat/completions', () => {
  test('a valid request gets a chat.completion and no violation', async () => {
    const res = await post('/chat/completions', chatBody)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    assert.match(res.headers.get('x-request-id') ?? '', /^req_/)
    const body: any = await res.json()
    assert.equal(validateOpenAIResponse('/chat/completions', body), null)
    assert.equal(body.object, 'chat.completion')
    assert.equal(body.model, 'gpt-4o-mini')
    assert.match(body.id, /^chatcmpl-/)
    assert.equal(body.choices.length, 1)
    assert.deepEqual(body.choices[0].message.content, 'echo: hello there')
    assert.equal(body.choices[0].message.role, 'assistant')
    assert.equal(body.choices[0].message.refusal, null)
    assert.equal(body.choices[0].finish_reason, 'stop')
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens)
    assert.deepEqual(Object.keys(body.usage.completion_tokens_details).sort(), [
      'accepted_prediction_tokens',
      'audio_tokens',
      'reasoning_tokens',
      'rejected_prediction_tokens',
    ])
    assert.deepEqual(fake.violations, [])
    const rec = fake.lastRequest()!
    assert.equal(rec.method, 'POST')
    assert.equal(rec.path, '/v1/chat/completions')
    assert.equal(rec.raw.toString(), JSON.stringify(chatBody))
    assert.deepEqual(rec.json, chatBody)
    assert.equal(rec.headers.authorization, AUTH.authorization)
    assert.equal(rec.aborted, false)
    assert.equal(rec.contractErrors, null)
    assert.equal(rec.responseStatus, 200)
  })

  test('a body without messages is a 400 and a violation', async () => {
    const res = await post('/chat/completions', { model: 'gpt-4o' })
    assert.equal(res.status, 400)
    const body: any = await res.json()
    assert.equal(body.error.type, 'invalid_request_error')
    assert.equal(body.error.message, "Missing required parameter: 'messages'.")
    assert.equal(body.error.param, null)
    assert.equal(body.error.code, null)
    assert.equal(fake.violations.length, 1)
    assert.equal(fake.violations[0]!.path, '/v1/chat/completions')
  })

  test('temperature "hot" is a 400 and a violation', async () => {
    const res = await post('/chat/completions', { ...chatBody, temperature: 'hot' })
    assert.equal(res.status, 400)
    assert.match(((await res.json()) as any).error.message, /temperature/)
    assert.equal(fake.violations.length, 1)
    assert.ok(fake.violations[0]!.errors.some((e: any) => e.instancePath === '/temperature'))
  })

  test('unparsable JSON is a 400 and a violation', async () => {
    const res = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: '{"model":',
    })
    assert.equal(res.status, 400)
    assert.match(((await res.json()) as any).error.message, /could not parse the JSON body/)
    assert.equal(fake.violations.length, 1)
  })

  test('no Authorization header: 401 invalid_api_key, recorded as a violation', async () => {
    const res = await post('/chat/completions', chatBody, {})
    assert.equal(res.status, 401)
    const body: any = await res.json()
    assert.equal(body.error.code, 'invalid_api_key')
    assert.equal(body.error.type, 'invalid_request_error')
    assert.equal(fake.violations.length, 1)
  })

  test('n choices', async () => {
    const body: any = await (await post('/chat/completions', { ...chatBody, n: 3 })).json()
    assert.deepEqual(
      body.choices.map((c: any) => c.index),
      [0, 1, 2],
    )
    assert.equal(new Set(body.choices.map((c: any) => c.message.content)).size, 3)
  })

  test('tool_choice required / named function gives tool_calls', async () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'lookup',
          parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
        },
      },
      {
        type: 'function',
        function: {
          name: 'add',
          parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'number' } } },
        },
      },
    ]
    for (const [toolChoice, name] of [
      ['required', 'lookup'],
      [{ type: 'function', function: { name: 'add' } }, 'add'],
    ] as const) {
      const res = await post('/chat/completions', { ...chatBody, tools, tool_choice: toolChoice })
      const body: any = await res.json()
      assert.equal(validateOpenAIResponse('/chat/completions', body), null)
      const choice = body.choices[0]
      assert.equal(choice.finish_reason, 'tool_calls')
      assert.equal(choice.message.content, null)
      const call = choice.message.tool_calls[0]
      assert.match(call.id, /^call_/)
      assert.equal(call.type, 'function')
      assert.equal(call.function.name, name)
      assert.equal(typeof JSON.parse(call.function.arguments), 'object')
    }
    const streamed = parseSse(
      await (await post('/chat/completions', { ...chatBody, tools, tool_choice: 'required', stream: true })).text(),
    )
    const deltas = (streamed.slice(0, -1) as any[]).map((c) => {
      assert.equal(validateOpenAIResponse('/chat/completions', c, 'text/event-stream'), null)
      return c.choices[0]
    })
    assert.equal(deltas[0].delta.tool_calls[0].function.name, 'lookup')
    assert.deepEqual(JSON.parse(deltas.map((d) => d.delta.tool_calls?.[0].function.arguments ?? '').join('')), {
      q: 'example',
    })
    assert.equal(deltas.at(-1).finish_reason, 'tool_calls')
    const auto: any = await (await post('/chat/completions', { ...chatBody, tools, tool_choice: 'auto' })).json()
    assert.equal(auto.choices[0].message.content, 'echo: hello there')
    assert.deepEqual(fake.violations, [])
  })

  test('stream: SSE chunks, usage chunk, [DONE]', async () => {
    const res = await post('/chat/completions', { ...chatBody, stream: true, stream_options: { include_usage: true } })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
    const events = parseSse(await res.text())
    assert.equal(events.at(-1), '[DONE]')
    const chunks = events.slice(0, -1) as any[]
    for (const c of chunks) {
      // OpenAI sends `"usage": null` on every chunk but the last when include_usage is set. The
      // contract marks that property `{$ref: CompletionUsage, nullable: true}`, and the README's rule
      // (drop `nullable` where there is no `type`) turns that into "never null" — so check without it.
      const { usage, ...rest } = c
      assert.equal(validateOpenAIResponse('/chat/completions', usage === null ? rest : c, 'text/event-stream'), null)
    }
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null))
    assert.ok(chunks.length >= 4)
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id))
    const usageChunk = chunks.at(-1)
    assert.deepEqual(usageChunk.choices, [])
    assert.ok(usageChunk.usage.total_tokens > 0)
    const text = chunks
      .flatMap((c) => c.choices)
      .map((ch: any) => ch.delta.content ?? '')
      .join('')
    assert.equal(text, 'echo: hello there')
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop')
    assert.deepEqual(fake.violations, [])
  })
})

describe('embeddings', () => {
  test('array input: one embedding per input, in order; dimensions', async () => {
    const res = await post('/embeddings', { model: 'text-embedding-3-small', input: ['a', 'b', 'a'] })
    assert.equal(res.status, 200)
    const body: any = await res.json()
    assert.equal(validateOpenAIResponse('/embeddings', body), null)
    assert.equal(body.object, 'list')
    assert.deepEqual(
      body.data.map((d: any) => d.index),
      [0, 1, 2],
    )
    assert.equal(body.data[0].embedding.length, 1536)
    assert.deepEqual(body.data[0].embedding, body.data[2].embedding)
    assert.notDeepEqual(body.data[0].embedding, body.data[1].embedding)
    assert.ok(body.usage.prompt_tokens > 0)

    const large: any = await (await post('/embeddings', { model: 'text-embedding-3-large', input: 'x' })).json()
    assert.equal(large.data.length, 1)
    assert.equal(large.data[0].embedding.length, 3072)
    const dims: any = await (
      await post('/embeddings', { model: 'text-embedding-3-large', input: 'x', dimensions: 8 })
    ).json()
    assert.equal(dims.data[0].embedding.length, 8)
    const b64: any = await (
      await post('/embeddings', {
        model: 'text-embedding-3-small',
        input: 'x',
        encoding_format: 'base64',
        dimensions: 4,
      })
    ).json()
    assert.equal(Buffer.from(b64.data[0].embedding, 'base64').length, 16)
    assert.deepEqual(fake.violations, [])
  })
})

describe('audio/transcriptions (multipart)', () => {
  test('a valid form is parsed, validated and answered', async () => {
    const audio = Buffer.from('RIFF....WAVEfmt fake audio bytes')
    const form = new FormData()
    form.append('file', new Blob([audio], { type: 'audio/wav' }), 'clip.wav')
    form.append('model', 'whisper-1')
    form.append('temperature', '0.2')
    form.append('timestamp_granularities[]', 'word')
    form.append('timestamp_granularities[]', 'segment')
    form.append('response_format', 'verbose_json')
    const res = await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    const body: any = await res.json()
    // Not validateOpenAIResponse: the contract's 200 schema is oneOf [Json, DiarizedJson, VerboseJson]
    // and Json (only `text` required, open) matches every verbose answer too, so oneOf always fails.
    assert.equal(validateOpenAIComponent('CreateTranscriptionResponseVerboseJson', body), null)
    assert.ok(validateOpenAIResponse('/audio/transcriptions', body), 'the ambiguous oneOf (documented above)')
    assert.match(body.text, /clip\.wav/)
    assert.match(body.text, new RegExp(`${audio.length} bytes`))
    assert.ok(body.words.length > 0 && body.segments.length === 1)
    assert.deepEqual(fake.violations, [])
    const rec = fake.lastRequest()!
    assert.equal(rec.form!.fields.model, 'whisper-1')
    assert.equal(rec.form!.files.file!.filename, 'clip.wav')
    assert.equal(rec.form!.files.file!.type, 'audio/wav')
    assert.deepEqual(rec.form!.files.file!.data, audio)
    assert.deepEqual(
      rec.form!.entries.filter(([n]) => n === 'timestamp_granularities[]').map(([, v]) => v),
      ['word', 'segment'],
    )
  })

  test('plain json answer is {text}', async () => {
    const form = new FormData()
    form.append('file', new Blob([Buffer.alloc(10)]), 'a.mp3')
    form.append('model', 'gpt-4o-transcribe')
    const body: any = await (
      await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    ).json()
    assert.equal(body.text, 'Transcript of a.mp3 (10 bytes).')
    assert.equal(validateOpenAIResponse('/audio/transcriptions', body), null)
  })

  test("diarized_json: two speakers taking turns, in the contract's shape", async () => {
    const form = new FormData()
    form.append('file', new Blob([Buffer.alloc(6400)]), 'call.wav')
    form.append('model', 'gpt-4o-transcribe-diarize')
    form.append('response_format', 'diarized_json')
    const body: any = await (
      await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    ).json()
    assert.equal(validateOpenAIComponent('CreateTranscriptionResponseDiarizedJson', body), null)
    assert.deepEqual(
      body.segments.map((s: any) => [s.type, s.id, s.speaker]),
      [
        ['transcript.text.segment', 'seg_0', 'A'],
        ['transcript.text.segment', 'seg_1', 'B'],
      ],
    )
    assert.equal(body.segments.map((s: any) => s.text).join(' '), body.text)
    assert.equal(body.segments[0].end, body.segments[1].start)
    assert.equal(body.segments[1].end, body.duration)
    assert.deepEqual(fake.violations, [])
  })

  test('the diarize model refuses unchunked audio over 30 seconds, as OpenAI does', async () => {
    const ask = async (chunking?: [string, string]): Promise<Response> => {
      const form = new FormData()
      form.append('file', new Blob([Buffer.alloc(1_000_000)]), 'long.wav')
      form.append('model', 'gpt-4o-transcribe-diarize')
      if (chunking) form.append(...chunking)
      return fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    }
    const refused = await ask()
    assert.equal(refused.status, 400)
    assert.match(((await refused.json()) as any).error.message, /chunking_strategy is required/)
    assert.equal((await ask(['chunking_strategy', 'auto'])).status, 200)
    assert.equal((await ask(['chunking_strategy[type]', 'server_vad'])).status, 200)
    assert.deepEqual(fake.violations, [])
  })

  test('stream: transcript.text.delta events then transcript.text.done', async () => {
    const form = new FormData()
    form.append('file', new Blob([Buffer.alloc(64)]), 'live.wav')
    form.append('model', 'gpt-4o-mini-transcribe')
    form.append('stream', 'true')
    const res = await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
    const events = parseSse(await res.text()) as any[]
    for (const e of events) assert.equal(validateOpenAIResponse('/audio/transcriptions', e, 'text/event-stream'), null)
    assert.equal(events.at(-1).type, 'transcript.text.done')
    assert.equal(
      events
        .slice(0, -1)
        .map((e) => e.delta)
        .join(''),
      events.at(-1).text,
    )
    assert.deepEqual(fake.violations, [])
  })

  test('stream: diarized segments, logprobs and languages, all within the contract', async () => {
    const stream = async (fields: Array<[string, string]>): Promise<any[]> => {
      const form = new FormData()
      form.append('file', new Blob([Buffer.alloc(64)]), 'live.wav')
      for (const [name, value] of fields) form.append(name, value)
      form.append('stream', 'true')
      const res = await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
      const events = parseSse(await res.text()) as any[]
      for (const e of events) {
        assert.equal(validateOpenAIResponse('/audio/transcriptions', e, 'text/event-stream'), null, JSON.stringify(e))
      }
      const text = events
        .filter((e) => e.type === 'transcript.text.delta')
        .map((e) => e.delta)
        .join('')
      assert.equal(text, events.at(-1).text, 'the deltas add up to the text')
      return events
    }
    const diarized = await stream([
      ['model', 'gpt-4o-transcribe-diarize'],
      ['response_format', 'diarized_json'],
    ])
    const types = diarized.map((e) => e.type.replace('transcript.text.', '')).join(',')
    assert.match(types, /^(delta,)+segment,(delta,)+segment,done$/)
    const segments = diarized.filter((e) => e.type === 'transcript.text.segment')
    for (const e of diarized.filter((e) => e.type === 'transcript.text.delta')) {
      assert.ok(
        segments.some((s) => s.id === e.segment_id),
        'each delta names its segment',
      )
    }
    const withLogprobs = await stream([
      ['model', 'gpt-4o-transcribe'],
      ['include[]', 'logprobs'],
    ])
    assert.ok(withLogprobs.every((e) => Array.isArray(e.logprobs)))
    const languages = await stream([
      ['model', 'gpt-transcribe'],
      ['languages[]', 'fr'],
    ])
    assert.deepEqual(languages.at(-1).languages, [{ code: 'fr' }])
    assert.deepEqual(fake.violations, [])
  })

  test('missing model / non-numeric temperature are violations', async () => {
    const form = new FormData()
    form.append('file', new Blob([Buffer.from('x')]), 'a.wav')
    const res = await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    assert.equal(res.status, 400)
    assert.equal(((await res.json()) as any).error.message, "Missing required parameter: 'model'.")

    const form2 = new FormData()
    form2.append('file', new Blob([Buffer.from('x')]), 'a.wav')
    form2.append('model', 'whisper-1')
    form2.append('temperature', 'warm')
    assert.equal(
      (await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form2 })).status,
      400,
    )
    assert.equal(fake.violations.length, 2)
  })

  test("include[]=logprobs with json: each token's logprob and bytes, in the contract's shape", async () => {
    const form = new FormData()
    form.append('file', new Blob([Buffer.alloc(640)]), 'clip.wav')
    form.append('model', 'gpt-4o-transcribe')
    form.append('include[]', 'logprobs')
    const body: any = await (
      await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    ).json()
    assert.equal(validateOpenAIComponent('CreateTranscriptionResponseJson', body), null)
    assert.equal(body.logprobs.map((l: any) => l.token).join(''), body.text)
    for (const { token, logprob, bytes } of body.logprobs) {
      assert.ok(logprob <= 0, token)
      assert.deepEqual(Buffer.from(bytes), Buffer.from(token))
    }
    form.set('response_format', 'text')
    const text = await (
      await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    ).text()
    assert.equal(text, `${body.text}\n`, 'no logprobs outside json')
    assert.deepEqual(fake.violations, [])
  })

  test('the newer list fields as `name[]` parts satisfy the contract, and the known speakers are named', async () => {
    const ask = async (names: string[], references = names.map(() => 'data:audio/wav;base64,UklGRg==')) => {
      const form = new FormData()
      form.append('file', new Blob([Buffer.alloc(6400)]), 'call.wav')
      form.append('model', 'gpt-4o-transcribe-diarize')
      form.append('response_format', 'diarized_json')
      for (const name of names) form.append('known_speaker_names[]', name)
      for (const reference of references) form.append('known_speaker_references[]', reference)
      return fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })
    }
    const named: any = await (await ask(['agent'])).json()
    assert.equal(validateOpenAIComponent('CreateTranscriptionResponseDiarizedJson', named), null)
    assert.deepEqual(
      named.segments.map((s: any) => s.speaker),
      ['agent', 'A'],
      'a known speaker by name, the others as OpenAI letters them',
    )
    assert.equal(fake.violations.length, 0)

    // Five is over the contract's maxItems: only a validator that reads `name[]` as a list sees it.
    assert.equal((await ask(['a', 'b', 'c', 'd', 'e'])).status, 400)
    assert.equal(fake.violations.length, 1)
    assert.match(JSON.stringify(fake.violations[0]!.errors), /known_speaker_names/)

    const form = new FormData()
    form.append('file', new Blob([Buffer.alloc(64)]), 'a.wav')
    form.append('model', 'gpt-transcribe')
    form.append('languages[]', 'en')
    form.append('keywords[]', 'Fastify')
    form.append('include[]', 'everything')
    assert.equal(
      (await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: AUTH, body: form })).status,
      400,
    )
    assert.match(JSON.stringify(fake.violations[1]!.errors), /include/, 'include[] items are checked against the enum')
  })

  test('JSON instead of multipart is a violation', async () => {
    const res = await post('/audio/transcriptions', { model: 'whisper-1', file: 'x' })
    assert.equal(res.status, 400)
    assert.equal(fake.violations.length, 1)
  })
})

describe('audio/speech', () => {
  test('bytes with the format content-type, chunked, deterministic', async () => {
    const req = { model: 'tts-1', input: 'Hello world, this is a test.', voice: 'alloy' }
    const res = await request(`${fake.url}/audio/speech`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify(req),
    })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-type'], 'audio/mpeg')
    assert.equal(res.headers['transfer-encoding'], 'chunked')
    const bytes = Buffer.from(await res.body.arrayBuffer())
    assert.deepEqual(bytes, expectedSpeechBytes(req))
    assert.deepEqual(bytes, fake.lastRequest()!.responseBody)
    assert.equal(bytes.subarray(0, 3).toString(), 'ID3')

    for (const [format, type] of [
      ['wav', 'audio/wav'],
      ['opus', 'audio/opus'],
      ['flac', 'audio/flac'],
      ['aac', 'audio/aac'],
      ['pcm', 'audio/pcm'],
    ]) {
      const r = await post('/audio/speech', { ...req, response_format: format })
      assert.equal(r.headers.get('content-type'), type)
      const b = Buffer.from(await r.arrayBuffer())
      assert.deepEqual(b, expectedSpeechBytes({ ...req, response_format: format }))
      if (format === 'wav') {
        assert.equal(b.subarray(0, 4).toString(), 'RIFF')
        assert.equal(b.readUInt32LE(40), b.length - 44)
      }
    }
    assert.notDeepEqual(expectedSpeechBytes(req), expectedSpeechBytes({ ...req, input: 'other' }))

    const sseReq = { model: 'gpt-4o-mini-tts', input: 'streamed', voice: 'alloy', stream_format: 'sse' }
    const sse = parseSse(await (await post('/audio/speech', sseReq)).text()) as any[]
    for (const e of sse) assert.equal(validateOpenAIResponse('/audio/speech', e, 'text/event-stream'), null)
    assert.equal(sse.at(-1).type, 'speech.audio.done')
    const audio = Buffer.concat(sse.slice(0, -1).map((e) => Buffer.from(e.audio, 'base64')))
    assert.deepEqual(audio, expectedSpeechBytes(sseReq))
    assert.deepEqual(fake.violations, [])
  })
})

describe('images/generations', () => {
  test('b64_json is a real PNG; revised_prompt only for dall-e-3', async () => {
    const res = await post('/images/generations', {
      model: 'dall-e-3',
      prompt: 'an otter',
      response_format: 'b64_json',
    })
    assert.equal(res.status, 200)
    const body: any = await res.json()
    assert.equal(validateOpenAIResponse('/images/generations', body), null)
    assert.equal(body.data.length, 1)
    assert.equal(body.data[0].revised_prompt, 'A detailed rendering of: an otter')
    const png = Buffer.from(body.data[0].b64_json, 'base64')
    assert.deepEqual(png, fake.png)
    const meta = await sharp(png).metadata()
    assert.equal(meta.format, 'png')
    assert.equal(meta.width, 8)

    const two: any = await (
      await post('/images/generations', { model: 'dall-e-2', prompt: 'x', n: 2, response_format: 'b64_json' })
    ).json()
    assert.equal(two.data.length, 2)
    assert.ok(!('revised_prompt' in two.data[0]))

    const gpt: any = await (
      await post('/images/generations', { model: 'gpt-image-1', prompt: 'x', output_format: 'webp' })
    ).json()
    assert.equal(validateOpenAIResponse('/images/generations', gpt), null)
    assert.equal((await sharp(Buffer.from(gpt.data[0].b64_json, 'base64')).metadata()).format, 'webp')
    assert.ok(gpt.usage.total_tokens > 0)
    assert.deepEqual(fake.violations, [])
  })

  test('dall-e default response_format url points at a served PNG', async () => {
    const body: any = await (await post('/images/generations', { model: 'dall-e-2', prompt: 'x' })).json()
    const img = await fetch(body.data[0].url)
    assert.equal(img.headers.get('content-type'), 'image/png')
    assert.deepEqual(Buffer.from(await img.arrayBuffer()), fake.png)
  })
})

describe('routing', () => {
  test('unknown path 404, wrong method 405, both OpenAI-style', async () => {
    const a = await fetch(`${fake.url}/models/nope`, { headers: AUTH })
    assert.equal(a.status, 404)
    assert.equal(((await a.json()) as any).error.message, 'Invalid URL (GET /v1/models/nope)')
    const b = await fetch(`${fake.url}/chat/completions`, { headers: AUTH })
    assert.equal(b.status, 405)
    assert.equal(((await b.json()) as any).error.type, 'invalid_request_error')
    assert.equal(fake.requests.length, 2)
  })
})

describe('scripted behaviours', () => {
  test('429 with retry-after, then back to normal', async () => {
    fake.enqueue({ status: 429, headers: { 'retry-after': '7' }, body: openAIError(429, 'Rate limit reached') })
    const r1 = await post('/chat/completions', chatBody)
    assert.equal(r1.status, 429)
    assert.equal(r1.headers.get('retry-after'), '7')
    assert.deepEqual(await r1.json(), openAIError(429, 'Rate limit reached'))
    assert.equal((await post('/chat/completions', chatBody)).status, 200)
    assert.equal(fake.pendingBehaviours(), 0)
  })

  test('status without body, times, and path targeting', async () => {
    fake.enqueue({ path: '/embeddings', status: 503, times: 2 })
    assert.equal((await post('/chat/completions', chatBody)).status, 200) // not its path
    const r = await post('/embeddings', { model: 'm', input: 'x' })
    assert.equal(r.status, 503)
    assert.equal(((await r.json()) as any).error.type, 'server_error')
    assert.equal((await post('/embeddings', { model: 'm', input: 'x' })).status, 503)
    assert.equal((await post('/embeddings', { model: 'm', input: 'x' })).status, 200)
    fake.enqueue({ status: 500, body: 'upstream exploded' })
    const t = await post('/chat/completions', chatBody)
    assert.equal(t.status, 500)
    assert.equal(await t.text(), 'upstream exploded')
  })

  test('hang: recorded, never answered; a client abort is observed', async () => {
    fake.enqueue({ kind: 'hang' })
    const ctl = new AbortController()
    const pending = fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify(chatBody),
      signal: ctl.signal,
    }).catch((e: unknown) => e)
    const [rec] = await fake.waitForRequests(1)
    assert.deepEqual(rec!.json, chatBody)
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(rec!.aborted, false)
    assert.equal(rec!.responseStatus, undefined, 'nothing was sent')
    ctl.abort()
    assert.equal(((await pending) as Error).name, 'AbortError')
    await fake.waitFor(() => rec!.aborted)
  })

  test('hang + close(): close destroys the hung socket promptly', async () => {
    // A separate stand-in, so closing it leaves the shared one alone.
    const other = await startFakeOpenAI()
    other.enqueue({ kind: 'hang' })
    const hung = fetch(`${other.url}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify({ model: 'm', input: 'x' }),
    }).catch((e: unknown) => e)
    await other.waitForRequests(1)
    const t0 = Date.now()
    await other.close()
    assert.ok(Date.now() - t0 < 1000)
    assert.ok((await hung) instanceof Error, 'the hung client sees an error once the stand-in closes')
    assert.equal(other.requests[0]!.aborted, false, 'closing is not a client abort')
  })

  test('reset: the client sees a socket error', async () => {
    fake.enqueue({ kind: 'reset' })
    await assert.rejects(
      request(`${fake.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...AUTH },
        body: JSON.stringify(chatBody),
      }),
      (err: any) => {
        assert.match(String(err.code), /ECONNRESET|UND_ERR_SOCKET/)
        return true
      },
    )
    assert.equal(fake.requests.length, 1)
    assert.equal(fake.requests[0]!.aborted, false)
  })

  test('malformed-json: 200 application/json that does not parse', async () => {
    fake.enqueue({ kind: 'malformed-json' })
    const res = await post('/chat/completions', chatBody)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    const text = await res.text()
    assert.ok(text.length > 0)
    assert.throws(() => JSON.parse(text), SyntaxError)
  })

  test('truncated-stream: SSE and audio stop early with a socket error', async () => {
    fake.enqueue({ kind: 'truncated-stream' })
    const res = await request(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify({ ...chatBody, stream: true }),
    })
    assert.equal(res.statusCode, 200)
    const got: Buffer[] = []
    await assert.rejects(async () => {
      for await (const c of res.body) got.push(c as Buffer)
    })
    const text = Buffer.concat(got).toString()
    assert.match(text, /^data: /)
    assert.doesNotMatch(text, /\[DONE\]/)
    assert.deepEqual(Buffer.concat(got), fake.lastRequest()!.responseBody)

    const req = { model: 'tts-1', input: 'x'.repeat(500), voice: 'alloy' }
    fake.enqueue({ kind: 'truncated-stream', afterChunks: 1 })
    const audio = await request(`${fake.url}/audio/speech`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify(req),
    })
    await assert.rejects(audio.body.arrayBuffer())
    assert.equal(fake.lastRequest()!.responseBody!.length, 4096)
    assert.ok(expectedSpeechBytes(req).length > 4096)
  })

  test('slow: the normal answer after the delay', async () => {
    fake.enqueue({ kind: 'slow', delayMs: 150 })
    const t0 = Date.now()
    const res = await post('/chat/completions', chatBody)
    assert.ok(Date.now() - t0 >= 140)
    assert.equal(((await res.json()) as any).choices[0].message.content, 'echo: hello there')
  })

  test('custom behaviour and setHandler', async () => {
    fake.enqueue({
      kind: 'custom',
      handler: (_req, res, rec) => {
        res.writeHead(418, { 'content-type': 'text/plain' }).end(`saw ${rec.json.model}`)
      },
    })
    const r = await post('/chat/completions', chatBody)
    assert.equal(r.status, 418)
    assert.equal(await r.text(), 'saw gpt-4o-mini')

    fake.setHandler('/embeddings', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"custom":true}')
    })
    assert.deepEqual(await (await post('/embeddings', { model: 'm', input: 'x' })).json(), { custom: true })
    assert.deepEqual(await (await post('/embeddings', { model: 'm', input: 'y' })).json(), { custom: true })
    fake.setHandler('/embeddings', undefined)
    assert.equal(((await (await post('/embeddings', { model: 'm', input: 'x' })).json()) as any).object, 'list')
  })
})

describe('the official openai SDK against the stand-in', () => {
  test('requests satisfy the contract and answers parse', async () => {
    const client = new OpenAI({ apiKey: 'sk-test-sdk', baseURL: fake.url, maxRetries: 0 })

    const chat = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'sdk hi' }],
    })
    assert.equal(chat.choices[0]!.message.content, 'echo: sdk hi')

    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'stream me please' }],
      stream: true,
      stream_options: { include_usage: true },
    })
    let text = ''
    let usage: unknown
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? ''
      usage ??= c.usage ?? undefined
    }
    assert.equal(text, 'echo: stream me please')
    assert.ok(usage)

    const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'], dimensions: 5 })
    assert.equal(emb.data.length, 2)
    assert.equal(emb.data[1]!.embedding.length, 5)

    const tr = await client.audio.transcriptions.create({
      file: await toFile(Buffer.from('fake audio'), 'sdk.wav', { type: 'audio/wav' }),
      model: 'whisper-1',
      temperature: 0.3,
      response_format: 'verbose_json',
      timestamp_granularities: ['word'],
    })
    assert.match(tr.text, /sdk\.wav \(10 bytes\)/)
    const form = fake.lastRequest()!.form!
    assert.equal(form.fields.temperature, '0.3')

    const scored = await client.audio.transcriptions.create({
      file: await toFile(Buffer.from('fake audio'), 'sdk.wav', { type: 'audio/wav' }),
      model: 'gpt-4o-transcribe',
      include: ['logprobs'],
    })
    assert.equal(scored.logprobs?.map((l) => l.token).join(''), scored.text)
    // The SDK types a diarized_json answer as a plain Transcription.
    const diarized: any = await client.audio.transcriptions.create({
      file: await toFile(Buffer.from('fake audio'), 'sdk.wav', { type: 'audio/wav' }),
      model: 'gpt-4o-transcribe-diarize',
      response_format: 'diarized_json',
      known_speaker_names: ['agent'],
      known_speaker_references: ['data:audio/wav;base64,UklGRg=='],
    })
    assert.equal(diarized.segments[0].speaker, 'agent')

    const speechReq = {
      model: 'gpt-4o-mini-tts',
      input: 'Say hi',
      voice: 'coral' as const,
      response_format: 'wav' as const,
    }
    const speech = await client.audio.speech.create(speechReq)
    assert.equal(speech.headers.get('content-type'), 'audio/wav')
    assert.deepEqual(Buffer.from(await speech.arrayBuffer()), expectedSpeechBytes(speechReq))

    const img = await client.images.generate({ model: 'gpt-image-1', prompt: 'otter' })
    assert.deepEqual(Buffer.from(img.data![0]!.b64_json!, 'base64'), fake.png)

    assert.deepEqual(fake.violations, [])
    assert.ok(fake.requests.every((r) => r.headers.authorization === 'Bearer sk-test-sdk'))
  })
})
