import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import openaiTasksApp from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { serverOptions } from '../../src/server-options.ts'
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai/index.ts'
import { assertAnswersConform, conformanceMode, watchAnswers } from './response-conformance.ts'

/** Every log line any test app wrote, for the test that checks no secret leaks into logs. */
export const capturedLogLines: string[] = []

const logSink = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    capturedLogLines.push(chunk.toString('utf8'))
    callback()
  },
})

export const TEST_API_KEY = 'sk-test-0123456789abcdefSECRET'

/** Anything shaped like an OpenAI key (tests use `sk-` keys for callers too). */
const KEY_PATTERN = /sk-[A-Za-z0-9_-]{8,}/

export function assertNoSecretsLogged(): void {
  assert.ok(capturedLogLines.length > 0, 'the app logged something')
  const leaks = capturedLogLines.filter((line) => KEY_PATTERN.test(line))
  assert.deepEqual(leaks, [], 'no log line holds an API key')
}

/** Test defaults: quick retries and no rate limit, unless a test sets them. */
const TEST_DEFAULTS = {
  LOG_LEVEL: 'debug',
  OPENAI_API_KEY: TEST_API_KEY,
  UPSTREAM_RETRY_BASE_DELAY_MS: '5',
  RATE_LIMIT_MAX: '0',
}

/**
 * The app on Fastify's inject, configured from `env` on top of test defaults. Every answer it sends
 * is checked against the OpenAPI document it serves (response-conformance.ts).
 */
export async function build(t: TestContext, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = loadConfig({ ...TEST_DEFAULTS, ...env })
  const app = Fastify(serverOptions(config, { stream: logSink }))
  const conformance = conformanceMode()
  // Before the app: a root hook reaches every route the app adds.
  const answers = conformance === 'off' ? undefined : watchAnswers(app)
  await app.register(fp(openaiTasksApp), { config })
  await app.ready()
  answers?.prepare()
  t.after(async () => {
    await app.close()
    assertNoSecretsLogged()
    assertAnswersConform(t, answers?.problems() ?? [], conformance)
  })
  return app
}

/** A fresh stand-in OpenAI plus the app pointed at it; fails the test if a request broke the contract. */
export async function buildWithUpstream(
  t: TestContext,
  env: Record<string, string> = {},
): Promise<{ app: FastifyInstance; upstream: FakeOpenAI }> {
  const upstream = await startFakeOpenAI()
  t.after(async () => {
    await upstream.close()
    assert.deepEqual(upstream.violations, [], "every request that reached the upstream satisfies OpenAI's contract")
  })
  const app = await build(t, { OPENAI_BASE_URL: upstream.url, ...env })
  return { app, upstream }
}

export interface Served {
  app: FastifyInstance
  upstream: FakeOpenAI
  /** `http://127.0.0.1:<port>` */
  base: string
  port: number
}

/** buildWithUpstream, with the app listening for real on an ephemeral loopback port. */
export async function serveWithUpstream(t: TestContext, env: Record<string, string> = {}): Promise<Served> {
  const { app, upstream } = await buildWithUpstream(t, env)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, upstream, base: `http://127.0.0.1:${port}`, port }
}
