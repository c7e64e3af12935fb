import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createSecureServer, type Http2Session } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { needs } from './support/needs.ts'
import { startServerProcess } from './support/server-process.ts'

const CALLS = 60
const ANSWER_DELAY_MS = 400

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** A self-signed certificate for localhost, made for this test only. */
function makeCertificate(dir: string): { key: Buffer; cert: Buffer; certPath: string } {
  const keyPath = join(dir, 'key.pem')
  const certPath = join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'ignore' },
  )
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath }
}

function completion(model: string): string {
  return JSON.stringify({
    id: 'chatcmpl-h2',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'over h2', refusal: null },
        finish_reason: 'stop',
        logprobs: null,
      },
    ],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  })
}

test(
  'to an https origin the service asks for HTTP/2 first and carries many calls on one connection',
  { skip: needs('openssl', hasOpenssl(), 'apt-get install openssl') },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'openai-tasks-h2-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const { key, cert, certPath } = makeCertificate(dir)

    const sessions = new Set<Http2Session>()
    const versions: string[] = []
    let open = 0
    let mostOpen = 0
    // Like Go's TLS stack (Ollama, many gateways), honour the client's order of preference.
    const upstream = createSecureServer(
      { key, cert, allowHTTP1: true, ALPNCallback: ({ protocols }) => protocols[0] },
      (req, res) => {
        versions.push(req.httpVersion)
        if (req.stream) sessions.add(req.stream.session!)
        open++
        mostOpen = Math.max(mostOpen, open)
        let body = ''
        req.on('data', (chunk: Buffer) => (body += chunk))
        req.on('end', () => {
          setTimeout(() => {
            open--
            res.writeHead(200, { 'content-type': 'application/json' }).end(completion(JSON.parse(body).model))
          }, ANSWER_DELAY_MS)
        })
      },
    )
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      for (const session of sessions) session.destroy()
      upstream.close()
    })
    const { port } = upstream.address() as AddressInfo

    // An operator trusts a private CA the same way: NODE_EXTRA_CA_CERTS.
    const server = await startServerProcess(t, {
      OPENAI_BASE_URL: `https://localhost:${port}/v1`,
      OPENAI_API_KEY: 'sk-h2-test-key-0123456789',
      NODE_EXTRA_CA_CERTS: certPath,
    })
    const answers = await Promise.all(
      Array.from({ length: CALLS }, () =>
        fetch(`${server.base}/v1/tasks/text-generation`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hi' }),
        }).then(async (res) => ({ status: res.status, body: (await res.json()) as { texts: string[] } })),
      ),
    )
    for (const answer of answers) {
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.deepEqual(answer.body.texts, ['over h2'])
    }
    assert.equal(versions.length, CALLS)
    assert.ok(
      versions.every((v) => v === '2.0'),
      `every call over HTTP/2: ${[...new Set(versions)].join(', ')}`,
    )
    assert.equal(sessions.size, 1, 'one connection carries them all')
    assert.ok(mostOpen > 1, `calls are multiplexed: at most ${mostOpen} at once`)
  },
)
