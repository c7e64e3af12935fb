import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { parse } from 'yaml'
import { renderArtifacts } from '../scripts/artifacts.ts'
import { build, buildWithUpstream, capturedLogLines, TEST_API_KEY } from './support/app.ts'

test('healthz and readyz answer', async (t) => {
  const app = await build(t)
  assert.deepEqual((await app.inject('/healthz')).json(), { status: 'ok' })
  assert.deepEqual((await app.inject('/readyz')).json(), { status: 'ready' })
})

test('every answer carries a request id; a sane incoming one is honoured and sent upstream', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  const generated = await app.inject('/healthz')
  assert.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/)

  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: { 'x-request-id': 'trace-42.abc' },
    payload: { model: 'gpt-4o-mini', prompt: 'hi' },
  })
  assert.equal(res.headers['x-request-id'], 'trace-42.abc')
  assert.equal(upstream.requests[0]!.headers['x-client-request-id'], 'trace-42.abc')

  const unsafe = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'a b\u0001<script>' } })
  assert.notEqual(unsafe.headers['x-request-id'], 'a b\u0001<script>')
})

test('GET /v1/tasks lists the five tasks with the schemas of schemas/tasks.yaml', async (t) => {
  const app = await build(t)
  const res = await app.inject('/v1/tasks')
  assert.equal(res.statusCode, 200)
  const body = res.json()
  const yaml = parse(await readFile(new URL('../schemas/tasks.yaml', import.meta.url), 'utf8'))
  assert.deepEqual(
    body.tasks.map((task: { name: string; task: string; path: string }) => [task.name, task.task, task.path]),
    Object.entries(yaml).map(([name, def]) => [name, (def as { 'task-id': string })['task-id'], `/v1/tasks/${name}`]),
  )
  const generation = body.tasks[0]
  assert.deepEqual(generation.input.required, ['model', 'prompt'])
  assert.ok(generation.input.properties['chat-history'])
  assert.deepEqual(
    generation.input.properties['response-type'],
    generation.input.properties['response-format'],
    'local $refs are inlined',
  )
  assert.equal(body.component.id, 'openai')
  assert.deepEqual(body.component.setup.required, ['api-key'])
})

test('/openapi.json is the committed openapi/openapi.yaml, and /docs serves Swagger UI', async (t) => {
  // Configured as the committed document was rendered: defaults, no server key.
  const app = await build(t, { OPENAI_API_KEY: '' })
  const served = (await app.inject({ url: '/openapi.json', headers: { host: 'tasks.test:8443' } })).json()
  const committed = parse(await readFile(new URL('../openapi/openapi.yaml', import.meta.url), 'utf8'))
  assert.deepEqual(served.servers, [{ url: 'http://tasks.test:8443' }], 'the server the document was asked at')
  assert.deepEqual(committed.servers, [{ url: 'http://localhost:8080' }])
  assert.deepEqual({ ...served, servers: committed.servers }, committed)
  assert.deepEqual(
    Object.keys(served.paths)
      .filter((p) => /^\/v1\/tasks\/[\w-]+$/.test(p))
      .sort(),
    [
      '/v1/tasks/speech-recognition',
      '/v1/tasks/text-embeddings',
      '/v1/tasks/text-generation',
      '/v1/tasks/text-to-image',
      '/v1/tasks/text-to-speech',
    ],
  )
  const op = served.paths['/v1/tasks/text-generation'].post
  assert.ok(op.requestBody.content['application/json'].examples.recipe, 'spec recipe example')
  assert.equal(op.responses['4XX'].content['application/json'].schema.$ref, '#/components/schemas/ErrorResponse')
  const docs = await app.inject('/docs/')
  assert.equal(docs.statusCode, 200)
  assert.match(docs.body, /swagger/i)
})

test('generated files (OpenAPI, task types, configuration and error docs, OpenAI contract) are fresh: run npm run generate when this fails', async (t) => {
  for (const artifact of await renderArtifacts()) {
    // Without OpenAI's document beside the repository its contract cannot be checked, only used.
    const skip = 'skipped' in artifact && artifact.skipped
    await t.test(artifact.path, { skip }, async () => {
      if ('skipped' in artifact) return
      const committed = await readFile(new URL(`../${artifact.path}`, import.meta.url), 'utf8')
      assert.equal(committed, artifact.content, `${artifact.path} is stale`)
    })
  }
})

test('a client that hangs up aborts the upstream call', async (t) => {
  const { app, upstream } = await buildWithUpstream(t)
  upstream.enqueue({ kind: 'hang' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as { port: number }
  const controller = new AbortController()
  const pending = fetch(`http://127.0.0.1:${address.port}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hi' }),
    signal: controller.signal,
  })
  await upstream.waitForRequests(1)
  controller.abort()
  await assert.rejects(pending)
  await upstream.waitFor(() => upstream.requests[0]!.aborted, 2000)
  assert.equal(upstream.requests[0]!.aborted, true)
  await upstream.waitFor(() => app.upstream.stats.running === 0, 2000)
})

test('the API key never appears in an error body', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  upstream.enqueue({ status: 500 })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    payload: { model: 'm', prompt: 'p' },
  })
  assert.equal(res.statusCode, 502)
  assert.ok(!res.body.includes(TEST_API_KEY))
})

test('log redaction hides keys in headers and setup fields', async (t) => {
  const app = await build(t)
  app.log.info(
    {
      req: { headers: { authorization: 'Bearer sk-leak-1234567890', 'x-openai-api-key': 'sk-leak-req-key' } },
      headers: { authorization: 'Bearer sk-leak-top-level', 'x-openai-api-key': 'sk-leak-header' },
      busboyOptions: { headers: { cookie: 'session=sk-leak-multipart' }, limits: { files: 1 } },
      'api-key': 'sk-leak-abcdefghij',
      config: { openai: { apiKey: 'sk-leak-0987654321' } },
      credentials: { apiKey: 'sk-leak-credentials' },
      err: Object.assign(new Error('upstream refused'), {
        apiKey: 'sk-leak-error',
        headers: { authorization: 'Bearer sk-leak-error-header' },
      }),
    },
    'redaction probe',
  )
  const line = capturedLogLines.find((l) => l.includes('redaction probe'))
  assert.ok(line)
  assert.doesNotMatch(line, /sk-leak/)
  assert.match(line, /\[redacted\]/)
})
