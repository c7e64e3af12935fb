// The start-up warm-up (src/warm-up/): run as production runs it, a process of its own, in front
// of the stand-in OpenAI and an OTLP endpoint, so that anything the warm-up leaked (a call to
// OpenAI, a metric, a log line, a span) would be seen where a user sees it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TEST_API_KEY } from './support/app.ts'
import { startFakeOpenAI } from './support/fake-openai/index.ts'
import { startServerProcess } from './support/server-process.ts'
import { startTracedService } from './support/traced-service.ts'

interface LogLine {
  msg: string
  calls?: number
  failed?: number
  ms?: number
}

const lines = (log: string): LogLine[] =>
  log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine)

const TRACEPARENT = `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-01`

test('the warm-up runs its calls before listening, and none of them reaches OpenAI, the metrics, the log or the traces', async (t) => {
  const { upstream, receiver, server } = await startTracedService(t, { WARM_UP_CALLS: '40' })

  const startLines = lines(server.log())
  const warmed = startLines.findIndex((line) => line.msg === 'warmed up')
  assert.ok(warmed >= 0, `a "warmed up" line among: ${startLines.map((l) => l.msg).join(' | ')}`)
  const { calls, failed, ms } = startLines[warmed]!
  assert.deepEqual({ calls, failed }, { calls: 40, failed: 0 })
  assert.equal(typeof ms, 'number')
  assert.ok(
    warmed < startLines.findIndex((line) => /Server listening/.test(line.msg)),
    'warmed up before the server listens',
  )
  assert.equal(startLines.filter((line) => line.msg === 'request completed').length, 0, 'no access line of its calls')
  assert.equal(upstream.count(), 0, 'no warm-up call went to the configured OpenAI')

  const metrics = await (await fetch(`${server.base}/metrics`)).text()
  const counted = (name: string): string[] =>
    metrics.split('\n').filter((line) => line.startsWith(name) && !line.endsWith(' 0'))
  assert.deepEqual(counted('openai_tasks_http_requests_total{route="/v1/tasks'), [], 'no task request counted')
  assert.deepEqual(counted('openai_tasks_tokens_total'), [], 'no tokens counted')
  assert.deepEqual(counted('openai_tasks_cost_usd_total'), [], 'no cost counted')
  assert.deepEqual(counted('openai_tasks_usage_total'), [], 'no usage counted')

  // The first real call: to the configured OpenAI, in the caller's trace, the only trace exported.
  const res = await fetch(`${server.base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: TRACEPARENT },
    body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hello' }),
  })
  assert.equal(res.status, 200)
  assert.equal(typeof ((await res.json()) as { texts: string[] }).texts[0], 'string')
  assert.equal(upstream.count('/v1/chat/completions'), 1)
  await receiver.waitForSpans((span) => span.name === 'chat gpt-4o-mini', 1)
  const traces = new Set(receiver.spans.map((span) => span.traceId))
  assert.deepEqual([...traces], ['a1'.repeat(16)], 'every exported span is in the caller trace')
})

test('WARM_UP_CALLS=0 starts without a warm-up', async (t) => {
  const upstream = await startFakeOpenAI()
  t.after(() => upstream.close())
  const server = await startServerProcess(t, {
    OPENAI_BASE_URL: upstream.url,
    OPENAI_API_KEY: TEST_API_KEY,
    WARM_UP_CALLS: '0',
  })
  assert.equal(
    lines(server.log()).some((line) => line.msg === 'warmed up'),
    false,
  )
  assert.equal((await fetch(`${server.base}/readyz`)).status, 200)
})
