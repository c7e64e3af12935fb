import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'

test('cluster mode: WORKERS processes share one port and all close on SIGTERM', async () => {
  const child = spawn(process.execPath, ['src/cluster.ts'], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, WORKERS: '2', PORT: '0', LOG_LEVEL: 'info', OPENAI_API_KEY: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let stdout = ''
  const bases = await new Promise<string[]>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
      const found = [...stdout.matchAll(/"pid":(\d+).*?Server listening at (http:\/\/127\.0\.0\.1:\d+)/g)]
      if (found.length >= 2) resolve(found.map((m) => `${m[1]} ${m[2]}`))
    })
    child.once('exit', () => reject(new Error(`cluster exited early:\n${stdout}`)))
  })
  const [first, second] = bases.map((b) => b.split(' '))
  assert.notEqual(first![0], second![0], 'two worker processes')
  assert.equal(first![1], second![1], 'one shared port')
  const res = await fetch(`${first![1]}/healthz`)
  assert.equal(res.status, 200)

  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
  assert.equal((stdout.match(/"msg":"closed"/g) ?? []).length, 2, 'each worker closed gracefully')
})
