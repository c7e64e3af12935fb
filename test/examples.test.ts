import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { loadTaskDefinitions } from '../src/schemas/load-tasks.ts'
import { buildWithUpstream } from './support/app.ts'

/**
 * Every request body example of schemas/tasks.yaml (Swagger UI's "Try it out" bodies) is
 * accepted, and what it sends satisfies OpenAI's contract (the stand-in checks each request).
 */

const definitions = await loadTaskDefinitions()

for (const def of definitions) {
  describe(`${def.name} examples`, () => {
    for (const [name, { value }] of Object.entries(def.examples)) {
      test(`"${name}" is answered 200 through the stand-in`, async (t) => {
        const { app, upstream } = await buildWithUpstream(t)
        const res = await app.inject({ method: 'POST', url: `/v1/tasks/${def.name}`, payload: value })
        assert.equal(res.statusCode, 200, res.body.slice(0, 500))
        assert.equal(upstream.requests.length, 1)
      })
    }
  })
}

test('the gpt-5 and tool round-trip examples send what they show', async (t) => {
  const examples = definitions.find((def) => def.name === 'text-generation')!.examples
  const { app, upstream } = await buildWithUpstream(t)
  for (const name of ['gpt-5', 'tool-round-trip']) {
    const res = await app.inject({ method: 'POST', url: '/v1/tasks/text-generation', payload: examples[name]!.value })
    assert.equal(res.statusCode, 200, res.body)
  }
  const [gpt5, roundTrip] = upstream.requests.map((r) => r.json)
  assert.deepEqual(gpt5, {
    model: 'gpt-5.4',
    messages: [
      { role: 'developer', content: 'Answer for a curious ten-year-old.' },
      { role: 'user', content: [{ type: 'text', text: 'Explain in two sentences why the sky is blue.' }] },
    ],
    reasoning_effort: 'low',
    verbosity: 'low',
    max_completion_tokens: 2000,
  })
  const call = { id: 'call_abc123', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }
  assert.deepEqual(roundTrip.messages, [
    { role: 'user', content: 'What is the weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', tool_call_id: 'call_abc123', content: '{"temperature_c":18,"sky":"cloudy"}' },
  ])
})
