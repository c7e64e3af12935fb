import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FakeOpenAI } from './support/fake-openai/index.ts'
import { serveWithUpstream } from './support/app.ts'

const AUDIO_LIMIT_BYTES = 256 * 1024 * 1024

/** The next speech call answers with audio for as long as the service reads it; `closed` when it ends. */
function endlessAudio(upstream: FakeOpenAI): { closed: Promise<void> } {
  let onClosed: () => void
  const closed = new Promise<void>((resolve) => (onClosed = resolve))
  upstream.enqueue({
    kind: 'custom',
    path: '/audio/speech',
    handler(req, res) {
      req.resume()
      res.once('close', () => onClosed())
      res.writeHead(200, { 'content-type': 'audio/mpeg' })
      const chunk = Buffer.alloc(64 * 1024, 0x55)
      let sent = 0
      const pump = (): void => {
        while (sent < AUDIO_LIMIT_BYTES && !res.destroyed) {
          sent += chunk.length
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      pump()
    },
  })
  return { closed }
}

/** Asks for speech over a raw socket and reads none of the answer until told to. */
function stalledReader(t: TestContext, port: number): Socket {
  const body = JSON.stringify({ model: 'tts-1', text: 'Hello there', voice: 'alloy' })
  const socket = connect(port, '127.0.0.1', () => {
    socket.write(
      'POST /v1/tasks/text-to-speech HTTP/1.1\r\nHost: localhost\r\nAccept: audio/mpeg\r\n' +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
  })
  socket.pause()
  socket.on('error', () => undefined)
  t.after(() => socket.destroy())
  return socket
}

/** Reads `bytes` from a paused socket (or what comes before it closes), then pauses it again. */
function take(socket: Socket, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let taken = 0
    const done = (): void => {
      socket.pause()
      socket.off('data', onData)
      socket.off('close', done)
      resolve()
    }
    const onData = (chunk: Buffer): void => {
      taken += chunk.length
      if (taken >= bytes) done()
    }
    socket.on('data', onData)
    socket.once('close', done)
    socket.resume()
  })
}

/** Reads what the server left in the socket; resolves with the byte count once it has hung up. */
async function drain(socket: Socket): Promise<number> {
  let bytes = 0
  socket.on('data', (chunk: Buffer) => (bytes += chunk.length))
  socket.resume()
  await new Promise((resolve) => socket.once('close', resolve))
  return bytes
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => Promise.reject(new Error(`${what} did not happen within ${ms} ms`))),
  ])
}

test(
  'a client that stops reading is cut off and its OpenAI call aborted, while others are served',
  { timeout: 30_000 },
  async (t) => {
    const { upstream, base, port } = await serveWithUpstream(t, { CLIENT_WRITE_TIMEOUT_MS: '400' })
    const audio = endlessAudio(upstream)
    const reader = stalledReader(t, port)
    await upstream.waitForRequests(1, 5000)

    const other = await fetch(`${base}/v1/tasks/text-generation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', prompt: 'hi' }),
    })
    assert.equal(other.status, 200, 'another caller is answered meanwhile')

    await within(audio.closed, 10_000, 'the OpenAI call of the stalled reader ending')
    const received = await within(drain(reader), 10_000, 'the stalled connection closing')
    assert.ok(received < AUDIO_LIMIT_BYTES, `the answer was cut short (${received} bytes)`)
    const metrics = await (await fetch(`${base}/metrics`)).text()
    assert.match(metrics, /^openai_tasks_client_write_timeouts_total 1$/m)
  },
)

test('a client that reads slowly is not cut off', { timeout: 30_000 }, async (t) => {
  // Pauses a tenth of the timeout: a busy machine's lag must not pass for a stalled reader.
  const { upstream, port } = await serveWithUpstream(t, { CLIENT_WRITE_TIMEOUT_MS: '2000' })
  endlessAudio(upstream)
  const reader = stalledReader(t, port)
  await upstream.waitForRequests(1, 5000)
  // Takes a few MB at a time, with pauses shorter than the timeout, for longer than the timeout
  // in all: enough each time for the kernel to reopen its window (a receive buffer may have
  // grown to many MB), never near the answer's size limit, however fast the machine reads.
  for (let i = 0; i < 12; i++) {
    await take(reader, 4 * 1024 * 1024)
    await sleep(200)
  }
  assert.equal(reader.readableEnded || reader.destroyed, false, 'a reader that keeps taking bytes keeps its stream')
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  assert.match(metrics, /^openai_tasks_client_write_timeouts_total 0$/m, 'no connection was cut')
  assert.match(metrics, /^openai_tasks_upstream_requests_in_flight 1$/m, 'the OpenAI call goes on')
  reader.destroy()
})

test('CLIENT_WRITE_TIMEOUT_MS=0 never cuts a client off', { timeout: 30_000 }, async (t) => {
  const { upstream, port } = await serveWithUpstream(t, { CLIENT_WRITE_TIMEOUT_MS: '0' })
  const audio = endlessAudio(upstream)
  const reader = stalledReader(t, port)
  await upstream.waitForRequests(1, 5000)
  const ended = await Promise.race([audio.closed.then(() => true), sleep(1500).then(() => false)])
  assert.equal(ended, false, 'the OpenAI call goes on')
  reader.destroy()
})
