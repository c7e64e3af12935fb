import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import openaiTasksApp from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { repeatedKind } from '../src/log-summary.ts'
import { serverOptions } from '../src/server-options.ts'
import { build, buildWithUpstream, capturedLogLines, TEST_API_KEY } from './support/app.ts'

const INTERVAL_MS = 200
const SUMMARY = 'repeated warnings, counted'

interface LogEntry {
  level: number
  msg: string
  reqId?: string
  err?: { stack?: string }
  counts?: Array<{ kind: string; operation: string; code?: string; cause?: string | number; count: number }>
  [key: string]: unknown
}

function entriesSince(mark: number): LogEntry[] {
  return capturedLogLines.slice(mark).map((line) => JSON.parse(line) as LogEntry)
}

/** Sum of the summary lines' counts since `mark`, for one kind. */
function counted(mark: number, kind: string): number {
  return entriesSince(mark)
    .filter((e) => e.msg === SUMMARY)
    .flatMap((e) => e.counts!)
    .filter((c) => c.kind === kind)
    .reduce((n, c) => n + c.count, 0)
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** A base URL where nothing listens: every connection is refused. */
async function refusingBaseUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}/v1`
}

function generate(app: FastifyInstance) {
  return app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    payload: { model: 'gpt-4o-mini', prompt: 'hi' },
  })
}

test('an OpenAI that refuses connections: a few warnings without stacks, and counts that add up', async (t) => {
  const n = 40
  const app = await build(t, { OPENAI_BASE_URL: await refusingBaseUrl(), LOG_SUMMARY_INTERVAL_MS: String(INTERVAL_MS) })
  const mark = capturedLogLines.length
  const answers = await Promise.all(Array.from({ length: n }, () => generate(app)))
  assert.deepEqual(new Set(answers.map((res) => res.statusCode)), new Set([502]))
  await waitFor(() => counted(mark, 'upstream failure') === n, 'the summary of the failures')

  const entries = entriesSince(mark)
  const warnings = entries.filter((e) => e.level === 40)
  assert.ok(warnings.length <= 6, `${warnings.length} warnings for ${n} failed requests and ${2 * n} retries`)
  assert.deepEqual(
    entries.filter((e) => e.level >= 50),
    [],
    'nothing at error: the service has no bug here',
  )
  assert.deepEqual(
    capturedLogLines.slice(mark).filter((line) => line.includes('"stack"')),
    [],
    'no stack',
  )

  const first = warnings.find((e) => e.msg === 'request failed')!
  assert.equal(first.code, 'ERR_UPSTREAM_UNREACHABLE', 'the outage starts with one example, at once')
  assert.equal(first.cause, 'ECONNREFUSED')
  assert.ok(first.reqId && answers.some((res) => res.headers['x-request-id'] === first.reqId), 'with its request id')
  assert.ok(
    warnings.some((e) => e.msg === 'retrying OpenAI request'),
    'and the first retry',
  )

  const counts = entries.filter((e) => e.msg === SUMMARY).flatMap((e) => e.counts!)
  assert.deepEqual(
    counts.find((c) => c.kind === 'upstream failure'),
    {
      kind: 'upstream failure',
      operation: '/v1/tasks/text-generation',
      code: 'ERR_UPSTREAM_UNREACHABLE',
      cause: 'ECONNREFUSED',
      count: n,
    },
  )
  assert.equal(counted(mark, 'retry'), 2 * n, 'retries are counted too (UPSTREAM_MAX_RETRIES 2)')
  assert.ok(
    counts
      .filter((c) => c.kind === 'retry')
      .every((c) => c.operation === '/chat/completions' && c.cause === 'ECONNREFUSED'),
  )

  const completions = entries.filter((e) => e.msg === 'request completed')
  assert.equal(completions.length, n, 'one completion line per failed request')
  assert.ok(
    completions.every((e) => e.level === 30 && e.code === 'ERR_UPSTREAM_UNREACHABLE'),
    'at info, with the code',
  )
})

test('an OpenAI answering 503: counted by its status', async (t) => {
  const n = 30
  const { app, upstream } = await buildWithUpstream(t, {
    UPSTREAM_MAX_RETRIES: '0',
    LOG_SUMMARY_INTERVAL_MS: String(INTERVAL_MS),
  })
  upstream.enqueue({ status: 503, times: n })
  const mark = capturedLogLines.length
  const answers = await Promise.all(Array.from({ length: n }, () => generate(app)))
  assert.deepEqual(new Set(answers.map((res) => res.statusCode)), new Set([502]))
  await waitFor(() => counted(mark, 'upstream failure') === n, 'the summary of the failures')
  const entries = entriesSince(mark)
  assert.equal(entries.filter((e) => e.msg === 'request failed').length, 1, 'one example, the rest counted')
  assert.deepEqual(
    entries.filter((e) => e.level >= 50),
    [],
  )
  const [count] = entries.filter((e) => e.msg === SUMMARY).flatMap((e) => e.counts!)
  assert.equal(count!.code, 'ERR_UPSTREAM_SERVER_ERROR')
  assert.equal(count!.cause, 503)
})

test('shed requests: one warning, counted, and their completion lines only at debug', async (t) => {
  const n = 50
  const { app, upstream } = await buildWithUpstream(t, {
    MAX_CONCURRENT_UPSTREAM: '1',
    LOG_SUMMARY_INTERVAL_MS: String(INTERVAL_MS),
  })
  upstream.enqueue({ kind: 'slow', delayMs: 500 })
  const held = generate(app)
  await upstream.waitForRequests(1)
  const mark = capturedLogLines.length
  const answers = await Promise.all(Array.from({ length: n }, () => generate(app)))
  assert.deepEqual(new Set(answers.map((res) => res.statusCode)), new Set([503]))
  await waitFor(() => counted(mark, 'shed') === n, 'the summary of the sheds')
  assert.equal((await held).statusCode, 200)

  const entries = entriesSince(mark)
  const warnings = entries.filter((e) => e.level === 40)
  assert.equal(warnings.filter((e) => e.msg === 'request failed').length, 1)
  assert.equal(warnings[0]!.code, 'ERR_OVERLOADED')
  assert.deepEqual(
    entries.filter((e) => e.level >= 50),
    [],
  )
  const shedCompletions = entries.filter((e) => e.msg === 'request completed' && e.code === 'ERR_OVERLOADED')
  assert.equal(shedCompletions.length, n)
  assert.ok(
    shedCompletions.every((e) => e.level === 20),
    'debug: a shed spares the process work, its log lines too',
  )
})

test('after a quiet interval the next warning is logged at once again; nothing is written in between', async (t) => {
  const app = await build(t, {
    OPENAI_BASE_URL: await refusingBaseUrl(),
    UPSTREAM_MAX_RETRIES: '0',
    LOG_SUMMARY_INTERVAL_MS: String(INTERVAL_MS),
  })
  const mark = capturedLogLines.length
  assert.equal((await generate(app)).statusCode, 502)
  await sleep(INTERVAL_MS * 4)
  assert.equal(entriesSince(mark).filter((e) => e.level === 40).length, 1, 'a lone failure is its own line, no summary')

  await Promise.all([generate(app), generate(app), generate(app)])
  await waitFor(() => counted(mark, 'upstream failure') === 3, 'the summary of the second burst')
  const entries = entriesSince(mark)
  assert.equal(entries.filter((e) => e.msg === 'request failed').length, 2, 'the start of each burst')
  assert.equal(entries.filter((e) => e.msg === SUMMARY).length, 1)
})

test('closing the app writes what is still counted', async (t) => {
  const app = await build(t, {
    OPENAI_BASE_URL: await refusingBaseUrl(),
    UPSTREAM_MAX_RETRIES: '0',
    LOG_SUMMARY_INTERVAL_MS: '60000',
  })
  const mark = capturedLogLines.length
  await Promise.all(Array.from({ length: 5 }, () => generate(app)))
  assert.equal(counted(mark, 'upstream failure'), 0, 'the interval has not ended')
  await app.close()
  assert.equal(counted(mark, 'upstream failure'), 5)
})

test('LOG_SUMMARY_INTERVAL_MS=0: one warning each, still without a stack', async (t) => {
  const n = 5
  const app = await build(t, {
    OPENAI_BASE_URL: await refusingBaseUrl(),
    UPSTREAM_MAX_RETRIES: '1',
    LOG_SUMMARY_INTERVAL_MS: '0',
  })
  const mark = capturedLogLines.length
  const answers = await Promise.all(Array.from({ length: n }, () => generate(app)))
  await sleep(INTERVAL_MS)
  const entries = entriesSince(mark)
  const failed = entries.filter((e) => e.msg === 'request failed')
  assert.equal(failed.length, n)
  assert.ok(failed.every((e) => e.level === 40))
  assert.deepEqual(new Set(failed.map((e) => e.reqId)), new Set(answers.map((res) => res.headers['x-request-id'])))
  assert.equal(entries.filter((e) => e.msg === 'retrying OpenAI request' && e.level === 40).length, n)
  assert.equal(entries.filter((e) => e.msg === SUMMARY).length, 0)
  assert.deepEqual(
    capturedLogLines.slice(mark).filter((line) => line.includes('"stack"')),
    [],
  )
})

test('a bug in the service is still logged at error with its stack, once per request', async (t) => {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'))
      callback()
    },
  })
  const config = loadConfig({
    OPENAI_API_KEY: TEST_API_KEY,
    RATE_LIMIT_MAX: '0',
    LOG_SUMMARY_INTERVAL_MS: String(INTERVAL_MS),
  })
  const app = Fastify(serverOptions(config, { stream: sink }))
  await app.register(fp(openaiTasksApp), { config })
  app.get('/bug', () => (JSON.parse('null') as { x: number }).x)
  await app.ready()
  t.after(() => app.close())

  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'GET', url: '/bug' })
    assert.equal(res.statusCode, 500)
    assert.equal(res.json().error.code, 'ERR_INTERNAL')
  }
  await sleep(INTERVAL_MS * 2)
  const entries = lines.map((line) => JSON.parse(line) as LogEntry)
  const errors = entries.filter((e) => e.level === 50)
  assert.equal(errors.length, 3, 'one each, not counted')
  assert.ok(errors.every((e) => e.msg === 'request failed' && e.err?.stack?.includes('TypeError')))
  assert.equal(entries.filter((e) => e.msg === SUMMARY).length, 0)
  const completions = entries.filter((e) => e.msg === 'request completed')
  assert.ok(completions.length === 3 && completions.every((e) => e.level === 30 && e.code === 'ERR_INTERNAL'))
  assert.deepEqual(
    lines.filter((line) => line.includes(TEST_API_KEY)),
    [],
  )
})

test('which 5xx are counted as trouble and which are bugs', () => {
  assert.equal(repeatedKind('ERR_OVERLOADED', 503), 'shed')
  for (const [code, status] of [
    ['ERR_UPSTREAM_UNREACHABLE', 502],
    ['ERR_UPSTREAM_TIMEOUT', 504],
    ['ERR_UPSTREAM_SERVER_ERROR', 502],
    ['ERR_UPSTREAM_BAD_RESPONSE', 502],
  ] as const) {
    assert.equal(repeatedKind(code, status), 'upstream failure', code)
  }
  for (const [code, status] of [
    ['ERR_INTERNAL', 500],
    ['ERR_UPSTREAM_RATE_LIMITED', 429],
    ['ERR_OVERLOADED', 500],
  ] as const) {
    assert.equal(repeatedKind(code, status), undefined, `${code} ${status}`)
  }
})
