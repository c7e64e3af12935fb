import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import Fastify from 'fastify'
import { LogSummary } from '../src/log-summary.ts'
import errorHandler from '../src/plugins/error-handler.ts'
import uploads from '../src/plugins/uploads.ts'
import { BODY_VALIDATION_OPTIONS } from '../src/schemas/ajv-options.ts'

/**
 * The text parts of a multipart body take the type the input schema gives their field only when
 * they are that type as JSON writes it: what `Number()` would also read (hex, blanks, `Infinity`)
 * stays text and is refused by name. No upload task has an integer or boolean field of its own
 * yet, so the uploads plugin is tried here on a schema that has them, on a real socket.
 */

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    count: { type: 'integer' },
    flag: { type: 'boolean' },
    ratio: { type: 'number' },
    either: { anyOf: [{ type: 'integer' }, { type: 'boolean' }] },
    file: { type: 'string' },
  },
}

/** The uploads plugin and the service's error answers, as the task routes have them; answers with the body it typed. */
async function serveForm(t: TestContext): Promise<string> {
  const app = Fastify({ ajv: { customOptions: BODY_VALIDATION_OPTIONS } })
  const logSummary = new LogSummary({ intervalMs: 0 })
  await app.register(errorHandler, { logSummary })
  await app.register(async (scope) => {
    await scope.register(uploads, { fields: { file: { maxBytes: 1024 } }, schema: SCHEMA })
    scope.post('/probe', { schema: { body: SCHEMA } }, async (request) => request.body)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(async () => {
    await app.close()
    logSummary.close()
  })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/probe`
}

function post(url: string, name: string, value: string): Promise<Response> {
  const form = new FormData()
  form.append(name, value)
  return fetch(url, { method: 'POST', body: form })
}

const TYPED: Array<[name: string, text: string, value: unknown]> = [
  ['count', '0', 0],
  ['count', '-12', -12],
  ['count', '3e2', 300],
  ['count', '2.0', 2],
  ['flag', 'true', true],
  ['flag', 'false', false],
  ['ratio', '-0.125', -0.125],
  ['ratio', '1E+2', 100],
  ['either', '7', 7],
  ['either', 'false', false],
]

const REFUSED: Array<[name: string, text: string]> = [
  ...['0x10', '0b1', '0o7', '', ' 1', '1 ', '+1', '01', '1.', 'Infinity', '1e999', '1.5'].map(
    (text): [string, string] => ['count', text],
  ),
  ...['True', 'TRUE', '1', '0', 'yes', 'on', ' true', 'true\n', ''].map((text): [string, string] => ['flag', text]),
  ...['0x1', '.5', '-.5', 'NaN', '-Infinity', '1_000', '١'].map((text): [string, string] => ['ratio', text]),
  ...['0x7', 'on'].map((text): [string, string] => ['either', text]),
]

test('integer, boolean and number parts are typed from their JSON spelling only', async (t) => {
  const url = await serveForm(t)
  for (const [name, text, value] of TYPED) {
    await t.test(`${name}=${JSON.stringify(text)} is ${JSON.stringify(value)}`, async () => {
      const res = await post(url, name, text)
      const body = await res.text()
      assert.equal(res.status, 200, body)
      assert.deepEqual(JSON.parse(body), { [name]: value })
    })
  }
  for (const [name, text] of REFUSED) {
    await t.test(`${name}=${JSON.stringify(text)} is a 400 naming ${name}`, async () => {
      const res = await post(url, name, text)
      const { error } = (await res.json()) as { error: { code: string; details: Array<{ path: string }> } }
      assert.equal(res.status, 400, JSON.stringify(error))
      assert.equal(error.code, 'ERR_VALIDATION')
      assert.ok(
        error.details.length > 0 && error.details.every((d) => d.path === `/${name}`),
        JSON.stringify(error.details),
      )
    })
  }
})
