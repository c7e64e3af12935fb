import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { build, buildWithUpstream } from './support/app.ts'
import { redisServerAvailable, startRedis } from './support/redis-server.ts'

const CHAT = { model: 'gpt-4o-mini', prompt: 'hi' }

function chat(app: FastifyInstance, token?: string) {
  return app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    payload: CHAT,
  })
}

test('in memory: the limit applies per client IP, with Retry-After and rate-limit headers', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' })
  for (let i = 0; i < 3; i++) {
    const ok = await chat(app)
    assert.equal(ok.statusCode, 200)
    assert.equal(ok.headers['ratelimit-limit'], '3')
    assert.equal(ok.headers['ratelimit-remaining'], String(2 - i))
  }
  const limited = await chat(app)
  assert.equal(limited.statusCode, 429)
  assert.equal(limited.json().error.code, 'ERR_RATE_LIMITED')
  assert.ok(Number(limited.headers['retry-after']) > 0)
  assert.equal(upstream.requests.length, 3)
  assert.equal((await app.inject('/healthz')).statusCode, 200, 'health checks are not limited')
})

test('with service tokens the limit applies per token', async (t) => {
  const { app } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '2', SERVICE_TOKENS: 'tok-a-123,tok-b-456' })
  assert.equal((await chat(app, 'tok-a-123')).statusCode, 200)
  assert.equal((await chat(app, 'tok-a-123')).statusCode, 200)
  assert.equal((await chat(app, 'tok-a-123')).statusCode, 429)
  assert.equal((await chat(app, 'tok-b-456')).statusCode, 200, 'another token has its own budget')
})

const skipRedis = !redisServerAvailable() && !process.env.CI && 'redis-server is not installed (.ci/run installs it)'

test('with REDIS_URL, replicas share one count in a real Redis', { skip: skipRedis }, async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const { app: first, upstream } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '3', REDIS_URL: redis.url })
  const second = await build(t, { RATE_LIMIT_MAX: '3', REDIS_URL: redis.url, OPENAI_BASE_URL: upstream.url })
  assert.equal((await chat(first)).statusCode, 200)
  assert.equal((await chat(second)).statusCode, 200)
  assert.equal((await chat(first)).statusCode, 200)
  const limited = await chat(second)
  assert.equal(limited.statusCode, 429, 'the second replica sees the first one’s requests')
  assert.ok(Number(limited.headers['retry-after']) > 0)
})

test('when Redis goes away, requests still pass', { skip: skipRedis }, async (t) => {
  const redis = await startRedis()
  const { app } = await buildWithUpstream(t, { RATE_LIMIT_MAX: '3', REDIS_URL: redis.url })
  assert.equal((await chat(app)).statusCode, 200)
  await redis.stop()
  assert.equal((await chat(app)).statusCode, 200)
})
