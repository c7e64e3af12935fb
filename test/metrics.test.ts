import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildWithUpstream } from './support/app.ts'
import { metricSample } from './support/metric-sample.ts'

/** The value of one sample of the exposition text, 0 when absent. */
async function sample(app: FastifyInstance, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricSample((await app.inject('/metrics')).body, name, labels)
}

test('a text-generation request moves the request, upstream and token counters', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const route = { route: '/v1/tasks/text-generation', method: 'POST', status: '200' }
  const before = await sample(app, 'openai_tasks_http_requests_total', route)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    payload: { model: 'gpt-4o-mini', prompt: 'count me' },
  })
  assert.equal(res.statusCode, 200)
  const usage = JSON.parse(upstream.requests[0]!.responseBody!.toString()).usage
  assert.equal(await sample(app, 'openai_tasks_http_requests_total', route), before + 1)
  assert.equal(await sample(app, 'openai_tasks_http_request_duration_seconds_count', route), before + 1)
  const tokens = { task: 'text-generation', model: 'gpt-4o-mini' }
  assert.equal(await sample(app, 'openai_tasks_tokens_total', { ...tokens, kind: 'prompt' }), usage.prompt_tokens)
  assert.equal(
    await sample(app, 'openai_tasks_tokens_total', { ...tokens, kind: 'completion' }),
    usage.completion_tokens,
  )
  assert.equal(
    await sample(app, 'openai_tasks_upstream_request_duration_seconds_count', {
      operation: '/chat/completions',
      status: '200',
    }),
    1,
  )
  assert.equal(await sample(app, 'openai_tasks_http_requests_in_flight'), 1, 'the /metrics request itself')
  assert.ok((await sample(app, 'process_cpu_user_seconds_total')) > 0, 'process metrics')
})

test('streamed text generation counts its tokens too', async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: { accept: 'text/event-stream' },
    payload: { model: 'gpt-4o', prompt: 'stream me' },
  })
  const output = JSON.parse(/event: output\ndata: (.*)\n/.exec(res.body)![1]!)
  assert.equal(
    await sample(app, 'openai_tasks_tokens_total', { task: 'text-generation', model: 'gpt-4o', kind: 'completion' }),
    output.usage['completion-tokens'],
  )
})

test('upstream errors and retries are counted by operation and status', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_MAX_RETRIES: '1' })
  upstream.enqueue({ status: 500, times: 2 })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-embeddings',
    payload: { model: 'text-embedding-3-small', text: 'x' },
  })
  assert.equal(res.statusCode, 502)
  assert.equal(await sample(app, 'openai_tasks_upstream_errors_total', { operation: '/embeddings', status: '500' }), 2)
  assert.equal(await sample(app, 'openai_tasks_upstream_retries_total', { operation: '/embeddings' }), 1)
  assert.equal(
    await sample(app, 'openai_tasks_http_requests_total', { route: '/v1/tasks/text-embeddings', status: '502' }),
    1,
  )
})

test('media tasks count characters, audio bytes and images', async (t) => {
  const { app } = await buildWithUpstream(t)
  await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-to-speech',
    payload: { model: 'tts-1', text: 'twelve chars', voice: 'alloy' },
  })
  assert.equal(await sample(app, 'openai_tasks_speech_characters_total', { model: 'tts-1' }), 12)

  const wav = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='
  await app.inject({ method: 'POST', url: '/v1/tasks/speech-recognition', payload: { model: 'whisper-1', audio: wav } })
  assert.equal(
    await sample(app, 'openai_tasks_audio_input_bytes_total', { model: 'whisper-1' }),
    Buffer.from(wav, 'base64').length,
  )

  await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-to-image',
    payload: { prompt: 'two cats', n: 2, size: '256x256' },
  })
  assert.equal(await sample(app, 'openai_tasks_images_generated_total', { model: 'dall-e-2' }), 2)

  await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-embeddings',
    payload: { model: 'text-embedding-3-small', text: 'count' },
  })
  assert.ok((await sample(app, 'openai_tasks_tokens_total', { task: 'text-embeddings', kind: 'prompt' })) > 0)
})

test('METRICS_TOKEN protects /metrics', async (t) => {
  const { app } = await buildWithUpstream(t, { METRICS_TOKEN: 'scrape-secret' })
  assert.equal((await app.inject('/metrics')).statusCode, 401)
  assert.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer nope' } })).statusCode, 401)
  const ok = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer scrape-secret' } })
  assert.equal(ok.statusCode, 200)
  assert.match(String(ok.headers['content-type']), /^text\/plain/)
})
