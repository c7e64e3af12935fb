import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { gzipSync } from 'node:zlib'
import { buildWithUpstream, serveWithUpstream } from './support/app.ts'
import { wavHeader } from './support/wav.ts'

/**
 * HTTP as RFC 9110 has it, in the service's own error shape: a known path asked with another
 * method is a 405 with `Allow`, and none of Fastify's own `FST_` codes ever reaches a caller.
 */

function assertServiceError(
  res: { statusCode: number; headers: Record<string, unknown>; json(): any },
  status: number,
  code: string,
): any {
  assert.equal(res.statusCode, status)
  const { error } = res.json()
  assert.deepEqual(Object.keys(error).sort(), ['code', 'details', 'message', 'request-id'])
  assert.equal(error.code, code)
  assert.ok(res.headers['x-request-id'], 'the answer has an X-Request-Id')
  assert.equal(error['request-id'], res.headers['x-request-id'])
  return error
}

describe('405 Method Not Allowed', () => {
  const CASES: Array<[method: string, url: string, allow: string]> = [
    ['GET', '/v1/tasks/text-generation', 'POST'],
    ['PUT', '/v1/tasks/text-to-speech', 'POST'],
    ['GET', '/v1/tasks/text-embeddings/batch', 'POST'],
    ['DELETE', '/healthz', 'GET, HEAD'],
    ['POST', '/readyz', 'GET, HEAD'],
    ['PATCH', '/v1/tasks', 'GET, HEAD'],
    ['OPTIONS', '/v1/tasks/speech-recognition', 'POST'],
  ]
  for (const [method, url, allow] of CASES) {
    test(`${method} ${url} is a 405 with Allow: ${allow}`, async (t) => {
      const { app, upstream } = await buildWithUpstream(t)
      const res = await app.inject({ method: method as 'GET', url: `${url}?x=1` })
      const error = assertServiceError(res, 405, 'ERR_METHOD_NOT_ALLOWED')
      assert.equal(res.headers.allow, allow)
      assert.equal(error.message, `Method ${method} is not allowed on ${url}; use ${allow}`)
      assert.equal(upstream.requests.length, 0)
    })
  }

  test('HEAD of a POST-only route is a 405 with Allow and no body', async (t) => {
    const { base } = await serveWithUpstream(t)
    const res = await fetch(`${base}/v1/tasks/text-generation`, { method: 'HEAD' })
    assert.equal(res.status, 405)
    assert.equal(res.headers.get('allow'), 'POST')
    assert.equal(await res.text(), '')
  })

  test('unknown paths stay 404, and so does a missing file under a known prefix', async (t) => {
    const { app } = await buildWithUpstream(t)
    const unknown = await app.inject({ method: 'DELETE', url: '/v1/tasks/text-to-video' })
    assertServiceError(unknown, 404, 'ERR_NOT_FOUND')
    assert.equal(unknown.headers.allow, undefined)
    const missing = await app.inject({ method: 'GET', url: '/docs/static/no-such-file.js' })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.headers.allow, undefined)
    const wrongMethod = await app.inject({ method: 'POST', url: '/docs/static/index.html' })
    assertServiceError(wrongMethod, 405, 'ERR_METHOD_NOT_ALLOWED')
    assert.match(String(wrongMethod.headers.allow), /\bGET\b/)
  })
})

describe('no FST_ code reaches a caller', () => {
  test('a URL that is not valid percent-encoding is a 400 ERR_BAD_HTTP_REQUEST', async (t) => {
    const { app, upstream } = await buildWithUpstream(t)
    const res = await app.inject({ method: 'POST', url: '/v1/tasks/%zz', payload: {} })
    const error = assertServiceError(res, 400, 'ERR_BAD_HTTP_REQUEST')
    assert.match(error.message, /not a valid url component/)
    assert.equal(upstream.requests.length, 0)
  })

  test('the same on a real socket', async (t) => {
    const { port } = await serveWithUpstream(t)
    const { status, headers, body } = await new Promise<{
      status: number
      headers: Record<string, unknown>
      body: string
    }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'GET', path: '/v1/tasks/text-generation%E0%A4%A' },
        (res) => {
          let text = ''
          res
            .setEncoding('utf8')
            .on('data', (chunk) => (text += chunk))
            .on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
        },
      )
      req.on('error', reject).end()
    })
    assertServiceError({ statusCode: status, headers, json: () => JSON.parse(body) }, 400, 'ERR_BAD_HTTP_REQUEST')
  })

  const BODIES: Array<
    [what: string, url: string, headers: Record<string, string>, payload: string, status: number, code: string]
  > = [
    [
      'invalid JSON',
      '/v1/tasks/text-generation',
      { 'content-type': 'application/json' },
      '{"model":',
      400,
      'ERR_INVALID_JSON',
    ],
    [
      'an empty JSON body',
      '/v1/tasks/text-generation',
      { 'content-type': 'application/json' },
      '',
      400,
      'ERR_INVALID_JSON',
    ],
    [
      'an unsupported media type',
      '/v1/tasks/text-embeddings',
      { 'content-type': 'application/xml' },
      '<a/>',
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'a body over the limit',
      '/v1/tasks/text-embeddings',
      { 'content-type': 'application/json' },
      JSON.stringify({ text: 'x'.repeat(3000) }),
      413,
      'ERR_PAYLOAD_TOO_LARGE',
    ],
    [
      'a multipart body of too many fields',
      '/v1/tasks/speech-recognition',
      { 'content-type': 'multipart/form-data; boundary=b' },
      `${Array.from({ length: 80 }, (_, i) => `--b\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nx\r\n`).join('')}--b--\r\n`,
      413,
      'ERR_PAYLOAD_TOO_LARGE',
    ],
    [
      'a multipart field named __proto__',
      '/v1/tasks/speech-recognition',
      { 'content-type': 'multipart/form-data; boundary=b' },
      '--b\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\nx\r\n--b--\r\n',
      400,
      'ERR_INVALID_MULTIPART',
    ],
  ]
  for (const [what, url, headers, payload, status, code] of BODIES) {
    test(`${what} is ${status} ${code}`, async (t) => {
      const { app, upstream } = await buildWithUpstream(t, { JSON_BODY_LIMIT_BYTES: '2048' })
      const res = await app.inject({ method: 'POST', url, headers, payload })
      const error = assertServiceError(res, status, code)
      assert.doesNotMatch(JSON.stringify(error), /FST_/)
      assert.equal(upstream.requests.length, 0)
    })
  }
})

describe('415 for a body in a content coding (RFC 9110 §15.5.16)', () => {
  const EMBEDDING = { model: 'text-embedding-3-small', text: 'one' }

  function speechForm(): FormData {
    const form = new FormData()
    form.append('model', 'whisper-1')
    const samples = Buffer.alloc(4000, 1)
    form.append('audio', new Blob([wavHeader(samples.length, 8000), samples], { type: 'audio/wav' }), 'a.wav')
    return form
  }

  /** A form as the bytes and Content-Type fetch would send. */
  async function encodedForm(): Promise<{ type: string; bytes: Buffer }> {
    const request = new Request('http://form.invalid', { method: 'POST', body: speechForm() })
    return { type: request.headers.get('content-type')!, bytes: Buffer.from(await request.arrayBuffer()) }
  }

  async function assertRefused(res: Response): Promise<void> {
    const body = await res.text()
    assertServiceError(
      { statusCode: res.status, headers: Object.fromEntries(res.headers), json: () => JSON.parse(body) },
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
    )
    assert.match(JSON.parse(body).error.message, /Content-Encoding/)
    assert.equal(res.headers.get('accept-encoding'), 'identity')
  }

  for (const coding of ['gzip', 'GZip', 'deflate', 'br', 'zstd', 'gzip, identity', 'identity, gzip', 'x-unknown']) {
    test(`Content-Encoding: ${coding} on JSON, a batch and a form is a 415 before anything is read`, async (t) => {
      const { upstream, base } = await serveWithUpstream(t)
      const json = { 'content-type': 'application/json', 'content-encoding': coding }
      const gzipped = gzipSync(JSON.stringify(EMBEDDING))
      await assertRefused(
        await fetch(`${base}/v1/tasks/text-embeddings`, { method: 'POST', headers: json, body: gzipped }),
      )
      await assertRefused(
        await fetch(`${base}/v1/tasks/text-embeddings/batch`, {
          method: 'POST',
          headers: json,
          body: gzipSync(JSON.stringify({ inputs: [EMBEDDING] })),
        }),
      )
      const form = await encodedForm()
      await assertRefused(
        await fetch(`${base}/v1/tasks/speech-recognition`, {
          method: 'POST',
          headers: { 'content-type': form.type, 'content-encoding': coding },
          body: gzipSync(form.bytes),
        }),
      )
      assert.equal(upstream.requests.length, 0, 'nothing reaches OpenAI')
    })
  }

  test('the 415 comes before the body does: nothing waits for it or parses it', async (t) => {
    const { upstream, port } = await serveWithUpstream(t)
    const answer = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
      (resolve, reject) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/tasks/text-generation',
          // A body announced, far over the limit, of which not one byte is ever sent.
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': '99999999' },
        })
        req.on('response', (res) => {
          let text = ''
          res
            .setEncoding('utf8')
            .on('data', (chunk) => (text += chunk))
            .on('end', () => {
              resolve({ status: res.statusCode!, headers: res.headers, body: text })
              req.destroy()
            })
        })
        req.on('error', reject).flushHeaders()
      },
    )
    assertServiceError(
      { statusCode: answer.status, headers: answer.headers, json: () => JSON.parse(answer.body) },
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
    )
    assert.equal(upstream.requests.length, 0)
  })

  for (const coding of ['identity', 'Identity', ' identity ', '']) {
    test(`Content-Encoding: ${JSON.stringify(coding)} is the body as sent`, async (t) => {
      const { upstream, base } = await serveWithUpstream(t)
      const json = { 'content-type': 'application/json', 'content-encoding': coding }
      const res = await fetch(`${base}/v1/tasks/text-embeddings`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify(EMBEDDING),
      })
      assert.equal(res.status, 200, await res.text())
      const form = await encodedForm()
      const upload = await fetch(`${base}/v1/tasks/speech-recognition`, {
        method: 'POST',
        headers: { 'content-type': form.type, 'content-encoding': coding },
        body: form.bytes,
      })
      assert.equal(upload.status, 200, await upload.text())
      assert.equal(upstream.requests.length, 2)
      assert.equal(upstream.requests[0]!.json.input, EMBEDDING.text)
      assert.equal(upstream.requests[1]!.form!.files.file!.data.length, 44 + 4000)
    })
  }

  test('a GET with a Content-Encoding but no body is answered as usual', async (t) => {
    const { base } = await serveWithUpstream(t)
    const res = await fetch(`${base}/healthz`, { headers: { 'content-encoding': 'gzip' } })
    assert.equal(res.status, 200)
  })
})
