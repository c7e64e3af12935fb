// The check every test app runs on its answers (test/support/response-conformance.ts): it must
// catch an answer the document does not describe, or it proves nothing.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import test from 'node:test'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance } from 'fastify'
import { buildWithUpstream } from './support/app.ts'
import { answerProblems, type Answer } from './support/openapi-answers.ts'
import { assertAnswersConform, conformanceMode, recordAnswers, watchAnswers } from './support/response-conformance.ts'

/** A tiny app documented by @fastify/swagger, recording its answers as build() does. */
async function tinyApp(t: test.TestContext): Promise<{ app: FastifyInstance; answers: Answer[] }> {
  const app = Fastify()
  t.after(() => app.close())
  const answers: Answer[] = []
  recordAnswers(app, (answer) => answers.push(answer))
  await app.register(swagger, {
    openapi: { openapi: '3.1.0', info: { title: 'tiny', version: '1' } },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  })
  app.addSchema({ $id: 'count', type: 'object', required: ['n'], properties: { n: { type: 'integer' } } })
  const schema = { response: { 200: { $ref: 'count#' }, '4xx': { type: 'object', properties: {} } } }
  // Pre-serialised strings go out as they are, past the response serializer, as a broken route's would.
  app.get('/good', { schema }, async (_request, reply) => reply.type('application/json').send('{"n":1}'))
  app.get('/bad/:id', { schema }, async (_request, reply) => reply.type('application/json').send('{"n":"one"}'))
  app.get('/teapot', { schema }, async (_request, reply) => reply.code(418).type('application/json').send('{}'))
  app.get('/server-error', { schema }, async (_request, reply) => reply.code(503).type('application/json').send('{}'))
  app.get('/text', { schema }, async (_request, reply) => reply.type('text/plain').send('1'))
  app.get('/stream', { schema }, async (_request, reply) => reply.type('text/event-stream').send(Readable.from(['x'])))
  app.get('/hidden', { schema: { hide: true } }, async () => 'anything')
  await app.ready()
  return { app, answers }
}

test('an answer that breaks its declared schema is a problem naming route, status, path, message and body', async (t) => {
  const { app, answers } = await tinyApp(t)
  await app.inject('/good')
  await app.inject('/bad/7')
  await app.inject('/bad/8')
  await app.inject('/teapot')
  const problems = answerProblems(app.swagger(), answers)
  assert.deepEqual(problems, [
    {
      where: 'GET /bad/:id → 200',
      what: 'application/json body breaks its schema: /n must be integer',
      body: '{"n":"one"}',
      count: 2,
    },
  ])
})

test('an undeclared status, content type, or a stream of an undeclared type is a problem', async (t) => {
  const { app, answers } = await tinyApp(t)
  for (const url of ['/teapot', '/server-error', '/text', '/stream']) await app.inject(url)
  const problems = answerProblems(app.swagger(), answers).map((p) => `${p.where}: ${p.what}`)
  assert.deepEqual(problems, [
    'GET /server-error → 503: status 503 not declared (declared: 200, 4XX)',
    'GET /text → 200: content type text/plain not declared (declared: application/json)',
    'GET /stream → 200: content type text/event-stream not declared (declared: application/json)',
  ])
  assert.equal(answers.find((a) => a.route === '/stream')?.sent, 'stream', 'a stream is recorded, not read')
})

test('routes the document hides and requests no route took are not recorded', async (t) => {
  const { app, answers } = await tinyApp(t)
  await app.inject('/hidden')
  await app.inject('/nowhere')
  await app.inject('/good')
  assert.deepEqual(
    answers.map((a) => `${a.method} ${a.route} ${a.status}`),
    ['GET /good 200'],
  )
})

test('watchAnswers judges each answer as it ends, against the document the app serves', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  const watched = watchAnswers(app)
  await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 'tiny', version: '1' } } })
  const response = { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } }
  app.get('/answer', { schema: { response } }, async (_request, reply) =>
    reply.type('application/json').send('{"ok":"yes"}'),
  )
  await app.ready()
  assert.deepEqual(watched.problems(), [], 'nothing judged before an answer')
  await app.inject('/answer')
  await app.inject('/answer')
  assert.deepEqual(
    watched.problems().map((p) => `${p.where} ×${p.count}: ${p.what}`),
    ['GET /answer → 200 ×2: application/json body breaks its schema: /ok must be boolean'],
  )
})

test('in fail mode a problem fails the test; in report mode it is a diagnostic', async (t) => {
  const { app, answers } = await tinyApp(t)
  await app.inject('/bad/1')
  const problems = answerProblems(app.swagger(), answers)
  const diagnostics: string[] = []
  const recorder = {
    diagnostic: (message: string) => {
      diagnostics.push(message)
    },
  }
  assert.throws(
    () => assertAnswersConform(recorder, problems, 'fail'),
    (err: Error) => err.message.includes('GET /bad/:id → 200: application/json body breaks its schema: /n must be'),
  )
  assertAnswersConform(recorder, problems, 'report')
  assert.equal(diagnostics.length, 1)
  assert.match(diagnostics[0]!, /GET \/bad\/:id → 200.*\n {4}body: \{"n":"one"\}/)
  assertAnswersConform(recorder, problems, 'off')
  assert.equal(diagnostics.length, 1, 'off reports nothing')
})

/** A hand-written document, for what @fastify/swagger does not write (required headers, response refs). */
const DOCUMENT = {
  openapi: '3.1.0',
  info: { title: 'hand-written', version: '1' },
  paths: {
    '/items/{id}': {
      get: {
        responses: {
          200: { $ref: '#/components/responses/item' },
          404: {
            description: 'none',
            content: { 'application/problem+json': { schema: { type: 'object', required: ['title'] } } },
          },
          default: { description: 'error', content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
    },
    '/audio': {
      get: { responses: { 200: { description: 'sound', content: { 'audio/*': { schema: { type: 'string' } } } } } },
    },
  },
  components: {
    schemas: {
      item: { $id: 'ignored-id', type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
    },
    headers: { requestId: { required: true, schema: { type: 'string' } } },
    responses: {
      item: {
        description: 'an item',
        headers: { 'X-Request-Id': { $ref: '#/components/headers/requestId' }, 'X-Optional': { schema: {} } },
        content: { 'application/json; charset=utf-8': { schema: { $ref: '#/components/schemas/item' } } },
      },
    },
  },
}

const answer = (fields: Partial<Answer>): Answer => ({
  method: 'GET',
  route: '/items/:id',
  status: 200,
  contentType: 'application/json; charset=utf-8',
  sent: 'text',
  body: '{"id":"a"}',
  headers: { 'x-request-id': 'r1' },
  ...fields,
})

test('required headers, refs to responses, headers and schemas, ranges and default are followed', () => {
  const judged = (fields: Partial<Answer>): string[] =>
    answerProblems(DOCUMENT, [answer(fields)]).map((p) => `${p.where}: ${p.what}`)
  assert.deepEqual(judged({}), [], 'a conforming answer')
  assert.deepEqual(judged({ headers: {} }), ['GET /items/:id → 200: required header(s) missing: X-Request-Id'])
  assert.deepEqual(judged({ body: '{"id":1}' }), [
    'GET /items/:id → 200: application/json body breaks its schema: /id must be string',
  ])
  assert.deepEqual(judged({ headers: {}, body: '[]' }), [
    'GET /items/:id → 200: required header(s) missing: X-Request-Id',
    'GET /items/:id → 200: application/json body breaks its schema: (root) must be object',
  ])
  assert.deepEqual(judged({ body: '{"id":' }), ['GET /items/:id → 200: application/json body is not JSON'])
  assert.deepEqual(judged({ status: 404, contentType: 'application/problem+json', body: '{}' }), [
    "GET /items/:id → 404: application/problem+json body breaks its schema: (root) must have required property 'title'",
  ])
  assert.deepEqual(judged({ status: 500, body: '{}' }), [], 'default takes any other status')
  assert.deepEqual(judged({ status: 500, body: '[]' }), [
    'GET /items/:id → 500: application/json body breaks its schema: (root) must be object',
  ])
  assert.deepEqual(judged({ method: 'HEAD' }), [], 'HEAD is judged as the GET')
  assert.deepEqual(judged({ method: 'POST' }), ['POST /items/:id → 200: the document has no such operation'])
  assert.deepEqual(judged({ route: '/elsewhere' }), ['GET /elsewhere → 200: the document has no such operation'])
  assert.deepEqual(judged({ sent: 'nothing', body: undefined, contentType: undefined }), [], 'no body, no type')
  assert.deepEqual(judged({ contentType: undefined }), ['GET /items/:id → 200: a body without a Content-Type'])
  const audio = { route: '/audio', headers: {}, body: undefined }
  assert.deepEqual(judged({ ...audio, contentType: 'audio/mpeg', sent: 'bytes' }), [], 'audio/* takes audio/mpeg')
  assert.deepEqual(judged({ ...audio, contentType: 'image/png', sent: 'stream' }), [
    'GET /audio → 200: content type image/png not declared (declared: audio/*)',
  ])
})

test('a long body is cut to 300 characters in the problem', () => {
  const body = JSON.stringify({ id: 1, padding: 'x'.repeat(1000) })
  const [problem] = answerProblems(DOCUMENT, [answer({ body })])
  assert.equal(problem?.body, body.slice(0, 300))
})

test('past 50 kinds of problem, further kinds are only counted', () => {
  const answers = Array.from({ length: 60 }, (_, i) => answer({ route: `/missing-${i}` }))
  const problems = answerProblems(DOCUMENT, answers)
  assert.equal(problems.length, 51)
  assert.deepEqual(problems.at(-1), { where: 'and', what: '10 more of other kinds', count: 1 })
})

test('a schema Ajv cannot compile is a problem, not a crash', () => {
  const broken = structuredClone(DOCUMENT) as any
  broken.components.schemas.item = { $ref: '#/components/schemas/nowhere' }
  const [problem] = answerProblems(broken, [answer({})])
  assert.match(problem?.what ?? '', /^could not be judged: can't resolve reference/)
})

test("the service's own document: its real answer passes, the same answer altered does not", async (t) => {
  const { app } = await buildWithUpstream(t)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    payload: { model: 'gpt-4o-mini', prompt: 'hi' },
  })
  assert.equal(res.statusCode, 200)
  const real: Answer = {
    method: 'POST',
    route: '/v1/tasks/text-generation',
    status: res.statusCode,
    contentType: String(res.headers['content-type']),
    sent: 'text',
    body: res.body,
    headers: res.headers,
  }
  const judged = (fields: Partial<Answer>): string[] =>
    answerProblems(app.swagger(), [{ ...real, ...fields }]).map((p) => p.what)
  assert.deepEqual(judged({}), [])
  assert.deepEqual(judged({ body: JSON.stringify({ ...res.json(), texts: 'hi' }) }), [
    'application/json body breaks its schema: /texts must be array',
  ])
  assert.match(judged({ status: 302 })[0] ?? '', /^status 302 not declared/)
  assert.match(judged({ contentType: 'text/html' })[0] ?? '', /^content type text\/html not declared/)
})

test('RESPONSE_CONFORMANCE is fail, report or off', () => {
  assert.equal(conformanceMode(undefined), 'fail', 'a mismatch fails the test unless told otherwise')
  assert.equal(conformanceMode(''), 'fail')
  assert.equal(conformanceMode('report'), 'report')
  assert.equal(conformanceMode('off'), 'off')
  assert.throws(() => conformanceMode('loud'), /must be one of fail, report, off/)
})
