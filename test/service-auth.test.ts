import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../src/config.ts'
import { buildWithUpstream } from './support/app.ts'

const CHAT = { model: 'gpt-4o-mini', prompt: 'hi' }
const TOKENS = { SERVICE_TOKENS: 'tok-alpha-1111, tok-beta-2222' }

test('with SERVICE_TOKENS, task routes need one of the tokens', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, TOKENS)
  for (const authorization of [undefined, 'Bearer wrong-token', 'Basic dG9rLWFscGhhLTExMTE=', 'Bearer tok-alpha-111']) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/tasks/text-generation',
      headers: authorization ? { authorization } : {},
      payload: CHAT,
    })
    assert.equal(res.statusCode, 401, String(authorization))
    assert.equal(res.json().error.code, 'ERR_UNAUTHORIZED')
  }
  assert.equal(upstream.requests.length, 0)
  for (const token of ['tok-alpha-1111', 'tok-beta-2222']) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/tasks/text-generation',
      headers: { authorization: `Bearer ${token}` },
      payload: CHAT,
    })
    assert.equal(res.statusCode, 200)
  }
  assert.match(
    String(upstream.requests[0]!.headers.authorization),
    /^Bearer sk-test-/,
    "the server's OpenAI key goes upstream, not the token",
  )
})

test('health, docs and the OpenAPI document stay open when tokens are on', async (t) => {
  const { app } = await buildWithUpstream(t, TOKENS)
  for (const url of ['/healthz', '/readyz', '/openapi.json', '/docs/']) {
    assert.equal((await app.inject(url)).statusCode, 200, url)
  }
  const doc = (await app.inject('/openapi.json')).json()
  assert.deepEqual(Object.keys(doc.components.securitySchemes), ['serviceToken'])
  assert.equal(doc.components.securitySchemes.serviceToken.scheme, 'bearer')
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { security: unknown }>>)) {
    const open = ['/healthz', '/readyz', '/metrics'].includes(path)
    for (const operation of Object.values(item)) {
      assert.deepEqual(operation.security, open ? [] : [{ serviceToken: [] }], path)
    }
  }
})

test('tokens can come from SERVICE_TOKENS_FILE', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tokens-'))
  const file = join(dir, 'tokens')
  await writeFile(file, 'tok-from-file-1\ntok-from-file-2\n')
  const { app } = await buildWithUpstream(t, { SERVICE_TOKENS_FILE: file })
  const ok = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: { authorization: 'Bearer tok-from-file-2' },
    payload: CHAT,
  })
  assert.equal(ok.statusCode, 200)
  assert.throws(() => loadConfig({ SERVICE_TOKENS_FILE: join(dir, 'missing') }), /SERVICE_TOKENS_FILE/)
})

test("a caller's own key in X-OpenAI-Api-Key is used only when the operator allows it", async (t) => {
  const refused = await buildWithUpstream(t, TOKENS)
  await refused.app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: { authorization: 'Bearer tok-alpha-1111', 'x-openai-api-key': 'sk-caller-own-0001' },
    payload: CHAT,
  })
  assert.match(String(refused.upstream.requests[0]!.headers.authorization), /^Bearer sk-test-/)

  const allowed = await buildWithUpstream(t, { ...TOKENS, ALLOW_CALLER_API_KEYS: 'true' })
  await allowed.app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: {
      authorization: 'Bearer tok-alpha-1111',
      'x-openai-api-key': 'sk-caller-own-0001',
      'openai-organization': 'org-caller',
    },
    payload: CHAT,
  })
  assert.equal(allowed.upstream.requests[0]!.headers.authorization, 'Bearer sk-caller-own-0001')
  assert.equal(allowed.upstream.requests[0]!.headers['openai-organization'], 'org-caller')
})

test('tokens on, no server key, caller keys not allowed: 401 saying how to provide a key', async (t) => {
  const { app, upstream } = await buildWithUpstream(t, { ...TOKENS, OPENAI_API_KEY: '' })
  const res = await app.inject({
    method: 'POST',
    url: '/v1/tasks/text-generation',
    headers: { authorization: 'Bearer tok-alpha-1111' },
    payload: CHAT,
  })
  assert.equal(res.statusCode, 401)
  assert.equal(res.json().error.code, 'ERR_MISSING_API_KEY')
  assert.equal(upstream.requests.length, 0)
})

test('a server key on a non-loopback host without tokens refuses to start, unless explicitly allowed', () => {
  assert.throws(
    () => loadConfig({ OPENAI_API_KEY: 'sk-x', HOST: '0.0.0.0' }),
    /SERVICE_TOKENS[\s\S]*ALLOW_UNAUTHENTICATED/,
  )
  assert.doesNotThrow(() => loadConfig({ OPENAI_API_KEY: 'sk-x', HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' }))
  assert.doesNotThrow(() => loadConfig({ OPENAI_API_KEY: 'sk-x', HOST: '0.0.0.0', SERVICE_TOKENS: 't1' }))
  assert.doesNotThrow(() => loadConfig({ OPENAI_API_KEY: 'sk-x', HOST: '127.0.0.1' }))
  assert.doesNotThrow(() => loadConfig({ OPENAI_API_KEY: 'sk-x', HOST: '::1' }))
  assert.doesNotThrow(() => loadConfig({ HOST: '0.0.0.0' }), 'without a server key every caller pays with its own')
})
