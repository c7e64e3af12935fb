import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadTaskDefinitions } from '../src/schemas/load-tasks.ts'
import { buildWithUpstream } from './support/app.ts'

/** The Swagger examples of the media tasks are what a reader tries first: each must work as written. */
const definitions = await loadTaskDefinitions()

for (const task of ['speech-recognition', 'text-to-speech', 'text-to-image'] as const) {
  const { examples } = definitions.find((def) => def.name === task)!
  test(`every ${task} example is answered 200, and OpenAI gets a request its contract allows`, async (t) => {
    assert.ok(Object.keys(examples).length >= 2, 'a plain example and one of the newer models')
    const { app, upstream } = await buildWithUpstream(t)
    for (const [name, { value }] of Object.entries(examples)) {
      upstream.reset()
      const res = await app.inject({ method: 'POST', url: `/v1/tasks/${task}`, payload: value })
      assert.equal(res.statusCode, 200, `${name}: ${res.body.slice(0, 300)}`)
      assert.equal(upstream.requests.length, 1, name)
      assert.deepEqual(upstream.violations, [], name)
      assert.equal(upstream.requests[0]!.json?.model ?? upstream.requests[0]!.form?.fields.model, value.model, name)
    }
  })
}
