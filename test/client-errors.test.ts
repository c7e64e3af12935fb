import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildWithUpstream } from './support/app.ts'

const URL_CHAT = '/v1/tasks/text-generation'

test('validation lists every failing field by path, and nothing reaches the upstream', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: URL_CHAT,
    payload: { prompt: 42, temperature: 3, max_tokens: 10, tools: [{ function: { name: 'bad name!' } }] },
  })
  assert.equal(res.statusCode, 400)
  const { error } = res.json()
  assert.equal(error.code, 'ERR_VALIDATION')
  const byPath = Object.fromEntries(error.details.map((d: { path: string; message: string }) => [d.path, d.message]))
  assert.deepEqual(Object.keys(byPath).sort(), [
    '/max_tokens',
    '/model',
    '/prompt',
    '/temperature',
    '/tools/0/function/name',
  ])
  assert.equal(byPath['/model'], 'is required')
  assert.equal(byPath['/max_tokens'], 'is not a known field')
  assert.equal(byPath['/temperature'], 'must be <= 2')
  assert.equal(
    error.details.find((d: { path: string }) => d.path === '/tools/0/function/name').field,
    'tools.0.function.name',
  )
  for (const path of Object.keys(byPath)) assert.ok(error.message.includes(path.slice(1).replaceAll('/', '.')), path)
  assert.equal(upstream.requests.length, 0)
})

test('a body that is not an object is a 400 about the body', async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: URL_CHAT, payload: [1, 2] })
  assert.equal(res.statusCode, 400)
  assert.equal(res.json().error.details[0].field, '(body)')
})

test('a task field naming another task is refused', async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: URL_CHAT,
    payload: { task: 'TASK_TEXT_TO_IMAGE', model: 'gpt-4o-mini', prompt: 'hi' },
  })
  assert.equal(res.statusCode, 400)
  assert.deepEqual(
    res.json().error.details.map((d: { path: string; message: string }) => [d.path, d.message]),
    [['/task', 'must be "TASK_TEXT_GENERATION"']],
  )
})

test('invalid JSON is 400 ERR_INVALID_JSON', async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: URL_CHAT,
    headers: { 'content-type': 'application/json' },
    payload: '{"model": ',
  })
  assert.equal(res.statusCode, 400)
  assert.equal(res.json().error.code, 'ERR_INVALID_JSON')
})

test('a non-JSON content type is 415', async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: URL_CHAT,
    headers: { 'content-type': 'text/plain' },
    payload: 'hi',
  })
  assert.equal(res.statusCode, 415)
  assert.equal(res.json().error.code, 'ERR_UNSUPPORTED_MEDIA_TYPE')
})

test('a body over the route limit is 413', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { JSON_BODY_LIMIT_BYTES: '2048' })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-embeddings',
    payload: { model: 'text-embedding-3-small', text: 'x'.repeat(4096) },
  })
  assert.equal(res.statusCode, 413)
  assert.equal(res.json().error.code, 'ERR_PAYLOAD_TOO_LARGE')
  assert.equal(upstream.requests.length, 0)
})

test('an unknown route is a JSON 404', async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-to-video', payload: {} })
  assert.equal(res.statusCode, 404)
  assert.equal(res.json().error.code, 'ERR_NOT_FOUND')
  assert.match(res.json().error.message, /POST \/v1\/tasks\/text-to-video/)
})

test('no key on the server nor in the request is 401 before any upstream call', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { OPENAI_API_KEY: '' })
  const res = await app.inject({ method: 'POST', url: URL_CHAT, payload: { model: 'gpt-4o-mini', prompt: 'hi' } })
  assert.equal(res.statusCode, 401)
  const { error } = res.json()
  assert.equal(error.code, 'ERR_MISSING_API_KEY')
  assert.match(error.message, /OPENAI_API_KEY/)
  assert.match(error.message, /Authorization: Bearer/)
  assert.equal(upstream.requests.length, 0)
})

test("without a server key, the caller's key, organization and project go upstream", async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { OPENAI_API_KEY: '' })
  const res = await app.inject({
    method: 'POST',
    url: URL_CHAT,
    headers: {
      authorization: 'Bearer sk-caller-key-123456',
      'openai-organization': 'org-abc',
      'openai-project': 'proj_1',
    },
    payload: { model: 'gpt-4o-mini', prompt: 'hi' },
  })
  assert.equal(res.statusCode, 200)
  const sent = upstream.requests[0]!.headers
  assert.equal(sent.authorization, 'Bearer sk-caller-key-123456')
  assert.equal(sent['openai-organization'], 'org-abc')
  assert.equal(sent['openai-project'], 'proj_1')
})

test("the server's key and organization win over the caller's headers", async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { OPENAI_ORGANIZATION: 'org-server' })
  await app.inject({
    method: 'POST',
    url: URL_CHAT,
    headers: { authorization: 'Bearer sk-caller-key-123456', 'openai-organization': 'org-caller' },
    payload: { model: 'gpt-4o-mini', prompt: 'hi' },
  })
  const sent = upstream.requests[0]!.headers
  assert.match(String(sent.authorization), /^Bearer sk-test-/)
  assert.equal(sent['openai-organization'], 'org-server')
})

test('ALLOWED_MODELS restricts models, with prefix entries', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { ALLOWED_MODELS: 'gpt-4o*, text-embedding-3-small' })
  const allowed = await app.inject({ method: 'POST', url: URL_CHAT, payload: { model: 'gpt-4o-mini', prompt: 'hi' } })
  assert.equal(allowed.statusCode, 200)
  const refused = await app.inject({ method: 'POST', url: URL_CHAT, payload: { model: 'o3-mini', prompt: 'hi' } })
  assert.equal(refused.statusCode, 403)
  assert.equal(refused.json().error.code, 'ERR_MODEL_NOT_ALLOWED')
  assert.equal(refused.json().error.details[0].path, '/model')
  const defaulted = await app.inject({ method: 'POST', url: '/v1/tasks/text-to-image', payload: { prompt: 'a cat' } })
  assert.equal(defaulted.statusCode, 403, 'the default model is checked too')
  assert.equal(upstream.requests.length, 1)
})
