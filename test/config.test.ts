import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { loadConfig } from '../src/config.ts'

test('defaults: loopback on 8080, OpenAI base URL, long header timeout for reasoning models', () => {
  const config = loadConfig({})
  assert.equal(config.host, '127.0.0.1')
  assert.equal(config.port, 8080)
  assert.equal(config.openai.baseUrl, 'https://api.openai.com/v1')
  assert.equal(config.openai.apiKey, undefined)
  assert.equal(config.upstream.headersTimeoutMs, 600_000)
  assert.deepEqual(config.allowedModels, [])
})

test('values are parsed and the base URL loses its trailing slash', () => {
  const config = loadConfig({ PORT: '9000', OPENAI_BASE_URL: 'http://127.0.0.1:1234/v1/', ALLOWED_MODELS: ' a, b* ,' })
  assert.equal(config.port, 9000)
  assert.equal(config.openai.baseUrl, 'http://127.0.0.1:1234/v1')
  assert.deepEqual(config.allowedModels, ['a', 'b*'])
})

test('a bad value is refused with the variable named', () => {
  assert.throws(() => loadConfig({ PORT: 'eighty' }), /PORT/)
  assert.throws(() => loadConfig({ UPSTREAM_CONNECTIONS: '-1' }), /UPSTREAM_CONNECTIONS/)
  assert.throws(() => loadConfig({ OPENAI_BASE_URL: 'ftp://example' }), /OPENAI_BASE_URL/)
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/)
})

test('the server refuses to boot on a bad value, with a message and exit code 1', async () => {
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, PORT: 'not-a-port' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
  const [code] = await once(child, 'exit')
  assert.equal(code, 1)
  assert.match(stderr, /invalid configuration.*PORT/)
})

test('the server starts, serves and exits 0 on SIGTERM', async () => {
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', OPENAI_API_KEY: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let stdout = ''
  const listening = new Promise<string>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
      if (match) resolve(match[1]!)
    })
  })
  const base = await listening
  const res = await fetch(`${base}/healthz`)
  assert.equal(res.status, 200)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
})
