import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildWithUpstream } from './support/app.ts'

const URL = '/v1/tasks/text-embeddings'
const TEXT = 'The quick brown fox jumps over the lazy dog.'

/** The embedding the stand-in sent back in its last answer. */
function sentEmbedding(body: Buffer | undefined): number[] {
  return JSON.parse(String(body)).data[0].embedding
}

function paths(res: { json(): any }): string[] {
  return res.json().error.details.map((d: { path: string }) => d.path)
}

test('sends model, text and float encoding; answers with the embedding the upstream sent', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'text-embedding-3-small', text: TEXT } })

  assert.equal(res.statusCode, 200)
  assert.equal(upstream.requests.length, 1)
  const sent = upstream.requests[0]!
  assert.equal(sent.method, 'POST')
  assert.equal(sent.path, '/v1/embeddings')
  assert.deepEqual(sent.json, { model: 'text-embedding-3-small', input: TEXT, encoding_format: 'float' })

  const expected = sentEmbedding(sent.responseBody)
  assert.equal(expected.length, 1536)
  assert.deepEqual(res.json(), { embedding: expected })
})

test('passes dimensions on and gets a vector of that length', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { model: 'text-embedding-3-large', text: TEXT, dimensions: 256 }
  const res = await app.inject({ method: 'POST', url: URL, payload })

  assert.equal(res.statusCode, 200)
  const sent = upstream.requests[0]!
  assert.deepEqual(sent.json, {
    model: 'text-embedding-3-large',
    input: TEXT,
    encoding_format: 'float',
    dimensions: 256,
  })
  assert.equal(res.json().embedding.length, 256)
  assert.deepEqual(res.json().embedding, sentEmbedding(sent.responseBody))
})

test('text-embedding-3-large without dimensions gives its full 3072 floats', async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'text-embedding-3-large', text: TEXT } })
  assert.equal(res.statusCode, 200)
  assert.equal(res.json().embedding.length, 3072)
})

test('an embedding model the schema does not list is passed through', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'text-embedding-4-preview', text: TEXT } })
  assert.equal(res.statusCode, 200)
  assert.equal(upstream.requests[0]!.json.model, 'text-embedding-4-preview')
})

test('the task field is accepted when it names this task', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const payload = { task: 'TASK_TEXT_EMBEDDINGS', model: 'text-embedding-ada-002', text: TEXT }
  const res = await app.inject({ method: 'POST', url: URL, payload })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(upstream.requests[0]!.json, {
    model: 'text-embedding-ada-002',
    input: TEXT,
    encoding_format: 'float',
  })
})

test('refused before any upstream call', async (t) => {
  const cases: Array<[name: string, payload: object, path: string]> = [
    ['another task id', { task: 'TASK_TEXT_GENERATION', model: 'text-embedding-3-small', text: TEXT }, '/task'],
    ['empty text', { model: 'text-embedding-3-small', text: '' }, '/text'],
    ['dimensions 0', { model: 'text-embedding-3-small', text: TEXT, dimensions: 0 }, '/dimensions'],
    ['fractional dimensions', { model: 'text-embedding-3-small', text: TEXT, dimensions: 1.5 }, '/dimensions'],
    ['no text', { model: 'text-embedding-3-small' }, '/text'],
    ['no model', { text: TEXT }, '/model'],
    ['an unknown field', { model: 'text-embedding-3-small', text: TEXT, input: TEXT }, '/input'],
  ]
  const { app, upstream } = await buildWithUpstream(t)
  for (const [name, payload, path] of cases) {
    const res = await app.inject({ method: 'POST', url: URL, payload })
    assert.equal(res.statusCode, 400, name)
    assert.equal(res.json().error.code, 'ERR_VALIDATION', name)
    assert.ok(paths(res).includes(path), `${name}: ${JSON.stringify(res.json().error.details)}`)
  }
  assert.equal(upstream.requests.length, 0)
})

test('an upstream answer without data is a 502', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({
    status: 200,
    body: { object: 'list', model: 'text-embedding-3-small', usage: { prompt_tokens: 9, total_tokens: 9 } },
  })
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'text-embedding-3-small', text: TEXT } })
  assert.equal(res.statusCode, 502)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
  assert.equal(upstream.requests.length, 1)
})

test('an upstream answer with an empty data list is a 502', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({ status: 200, body: { object: 'list', data: [], model: 'text-embedding-3-small' } })
  const res = await app.inject({ method: 'POST', url: URL, payload: { model: 'text-embedding-3-small', text: TEXT } })
  assert.equal(res.statusCode, 502)
  assert.equal(res.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
})

test('the embedding is copied exactly from any well-formed answer layout, and a malformed one is a 502', async (t) => {
  // The same input each time, each answered afresh: no cache.
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0', CACHE: 'off' })
  const answers = [
    '{\n  "object": "list",\n  "data": [\n    {\n      "object": "embedding",\n      "index": 0,\n      "embedding": [ -1.5e-7, 0.25 , 3E+2, 0 ]\n    }\n  ],\n  "model": "m",\n  "usage": { "prompt_tokens": 3, "total_tokens": 3 }\n}\n',
    '{"data":[{"embedding":[0.1],"index":0,"object":"embedding"},{"embedding":[0.2],"index":1,"object":"embedding"}],"object":"list","model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}',
    '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1,,2]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}',
  ]
  let next = 0
  upstream.setHandler('/v1/embeddings', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(answers[next++])
  })
  const post = () =>
    app.inject({
      method: 'POST',
      url: '/v1/tasks/text-embeddings',
      payload: { model: 'text-embedding-3-small', text: 'x' },
    })
  const pretty = await post()
  assert.equal(pretty.statusCode, 200)
  assert.deepEqual(pretty.json(), { embedding: [-1.5e-7, 0.25, 300, 0] })
  const two = await post()
  assert.deepEqual(two.json(), { embedding: [0.1] }, 'several embeddings: the first, parsed the ordinary way')
  const broken = await post()
  assert.equal(broken.statusCode, 502)
  assert.equal(broken.json().error.code, 'ERR_UPSTREAM_BAD_RESPONSE')
})
