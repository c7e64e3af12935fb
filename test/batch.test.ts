import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildWithUpstream } from './support/app.ts'

test('embeddings batch: one upstream request per model/dimensions group, outputs in input order', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const inputs = [
    { model: 'text-embedding-3-small', text: 'alpha' },
    { model: 'text-embedding-3-large', text: 'bravo', dimensions: 8 },
    { model: 'text-embedding-3-small', text: 'charlie' },
    { model: 'text-embedding-3-small', text: '' },
    { model: 'text-embedding-3-large', text: 'delta', dimensions: 8 },
    { model: 'text-embedding-3-small', text: 'echo', dimensions: 4 },
  ]
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-embeddings/batch', payload: { inputs } })
  assert.equal(res.statusCode, 200)
  const { outputs } = res.json()
  assert.equal(outputs.length, inputs.length)

  const sent = upstream.requests.map((r) => r.json)
  assert.equal(sent.length, 3, 'small, large/8 and small/4')
  assert.deepEqual(sent.map((body) => [body.model, body.dimensions, body.input]).sort(), [
    ['text-embedding-3-large', 8, ['bravo', 'delta']],
    ['text-embedding-3-small', undefined, ['alpha', 'charlie']],
    ['text-embedding-3-small', 4, ['echo']],
  ])
  const answer = (model: string, dimensions?: number) => {
    const i = sent.findIndex((b) => b.model === model && b.dimensions === dimensions)
    return JSON.parse(upstream.requests[i]!.responseBody!.toString()).data
  }
  assert.deepEqual(outputs[0].embedding, answer('text-embedding-3-small')[0].embedding)
  assert.deepEqual(outputs[2].embedding, answer('text-embedding-3-small')[1].embedding)
  assert.deepEqual(outputs[1].embedding, answer('text-embedding-3-large', 8)[0].embedding)
  assert.deepEqual(outputs[4].embedding, answer('text-embedding-3-large', 8)[1].embedding)
  assert.equal(outputs[5].embedding.length, 4)
  assert.equal(outputs[3].error.code, 'ERR_VALIDATION')
  assert.equal(outputs[3].error.status, 400)
  assert.equal(outputs[3].error.details[0].path, '/text')
})

test('a failed upstream request fails only the items it carried', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  upstream.setHandler('/v1/embeddings', (req, res, recorded) => {
    const body = JSON.parse(recorded.raw.toString())
    if (body.model === 'broken-model') {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          error: {
            message: 'The model does not exist',
            type: 'invalid_request_error',
            param: null,
            code: 'model_not_found',
          },
        }),
      )
      return
    }
    const data = body.input.map((_: string, index: number) => ({ object: 'embedding', index, embedding: [index, 0.5] }))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ object: 'list', data, model: body.model, usage: { prompt_tokens: 1, total_tokens: 1 } }))
  })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-embeddings/batch',
    payload: {
      inputs: [
        { model: 'broken-model', text: 'a' },
        { model: 'text-embedding-3-small', text: 'b' },
        { model: 'text-embedding-3-small', text: 'c' },
      ],
    },
  })
  assert.equal(res.statusCode, 200)
  const { outputs } = res.json()
  assert.equal(outputs[0].error.code, 'ERR_UPSTREAM_NOT_FOUND')
  assert.equal(outputs[0].error.status, 404)
  assert.deepEqual(outputs[1], { embedding: [0, 0.5] })
  assert.deepEqual(outputs[2], { embedding: [1, 0.5] })
})

test('other tasks run each item, with per-item validation and errors', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation/batch',
    payload: {
      inputs: [
        { model: 'gpt-4o-mini', prompt: 'first' },
        { model: 'gpt-4o-mini', prompt: 'second', temperature: 9 },
        { task: 'TASK_TEXT_GENERATION', model: 'gpt-4o-mini', prompt: 'third' },
      ],
    },
  })
  assert.equal(res.statusCode, 200)
  const { outputs } = res.json()
  assert.deepEqual(outputs[0].texts, ['echo: first'])
  assert.equal(outputs[1].error.details[0].path, '/temperature')
  assert.deepEqual(outputs[2].texts, ['echo: third'])
  assert.equal(upstream.requests.length, 2)
})

test('the batch itself is validated: inputs required, bounded by BATCH_MAX_ITEMS', async (t) => {
  const { app } = await buildWithUpstream(t, { BATCH_MAX_ITEMS: '2' })
  const missing = await app.inject({ method: 'POST', url: '/v1/tasks/text-to-image/batch', payload: {} })
  assert.equal(missing.statusCode, 400)
  assert.equal(missing.json().error.details[0].path, '/inputs')
  const tooMany = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-to-image/batch',
    payload: { inputs: [{ prompt: 'a' }, { prompt: 'b' }, { prompt: 'c' }] },
  })
  assert.equal(tooMany.statusCode, 400)
  assert.match(tooMany.json().error.message, /inputs must NOT have more than 2 items/)
})

test("embeddings batches are split at OpenAI's 2048 inputs and by size", async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { BATCH_MAX_ITEMS: '5000', JSON_BODY_LIMIT_BYTES: '5000000' })
  const many = Array.from({ length: 2049 }, (_, i) => ({
    model: 'text-embedding-3-small',
    text: `t${i}`,
    dimensions: 1,
  }))
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-embeddings/batch', payload: { inputs: many } })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(
    upstream.requests.map((r) => r.json.input.length),
    [2048, 1],
  )
  assert.equal(res.json().outputs.filter((o: { embedding?: number[] }) => o.embedding?.length === 1).length, 2049)

  upstream.reset()
  const big = 'word '.repeat(120_000)
  const large = [1, 2, 3].map(() => ({ model: 'text-embedding-3-small', text: big, dimensions: 1 }))
  const split = await app.inject({ method: 'POST', url: '/v1/tasks/text-embeddings/batch', payload: { inputs: large } })
  assert.equal(split.statusCode, 200)
  assert.deepEqual(
    upstream.requests.map((r) => r.json.input.length),
    [1, 1, 1],
    '600k characters each: one per request',
  )
})

test('an embeddings answer listing its items out of order is still mapped by index', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.setHandler('/v1/embeddings', (_req, res, recorded) => {
    const body = JSON.parse(recorded.raw.toString())
    const data = body.input.map((text: string, index: number) => ({
      object: 'embedding',
      index,
      embedding: [text.length, index],
    }))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        object: 'list',
        data: data.reverse(),
        model: body.model,
        usage: { prompt_tokens: 3, total_tokens: 3 },
      }),
    )
  })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-embeddings/batch',
    payload: { inputs: ['a', 'bb', 'ccc'].map((text) => ({ model: 'text-embedding-3-small', text })) },
  })
  assert.deepEqual(res.json().outputs, [{ embedding: [1, 0] }, { embedding: [2, 1] }, { embedding: [3, 2] }])
})
