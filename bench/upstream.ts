/**
 * A minimal, fast stand-in for OpenAI used by the benchmark: no validation, fixed answers.
 *
 *   POST /v1/chat/completions   chat.completion JSON, or SSE chunks when the body has "stream":true
 *   POST /v1/embeddings         one 1536-float embedding per input (`input` a string or an array:
 *                               one data item per input, with its `index`)
 *   POST /v1/audio/speech, POST /v1/audio/transcriptions, GET /_bench/held, and requests held
 *                               open: see upstream-streams.ts
 *   GET  /_bench/last-body?path=/v1/embeddings   the last body received on that path (as sent)
 *
 * Run as a child process (`node bench/upstream.ts`); listens on 127.0.0.1:$PORT (0: any free
 * port) and reports `{ port }` over IPC when forked, or prints it otherwise.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CHAT_COMPLETION_EVENTS, CHAT_COMPLETION_JSON, embeddingsJson } from './fixtures.ts'
import { hold, holdChatStream, heldEvent, holdIdOf, speech, transcription } from './upstream-streams.ts'

const STREAM_FLAG = Buffer.from('"stream":true')
const lastBodies = new Map<string, Buffer>()

function readBody(req: IncomingMessage, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
}

function sendJson(res: ServerResponse, status: number, body: Buffer | string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function sendEvents(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  const last = CHAT_COMPLETION_EVENTS.length - 1
  for (let i = 0; i < last; i++) res.write(CHAT_COMPLETION_EVENTS[i])
  res.end(CHAT_COMPLETION_EVENTS[last])
}

function inputCount(body: Buffer): number {
  try {
    const { input } = JSON.parse(body.toString()) as { input?: unknown }
    // A string, one token array (number[]), or a list of strings / token arrays.
    return Array.isArray(input) && typeof input[0] !== 'number' ? Math.max(input.length, 1) : 1
  } catch {
    return 1
  }
}

function chat(body: Buffer, res: ServerResponse): void {
  const stream = body.includes(STREAM_FLAG)
  const id = holdIdOf(body)
  if (id && stream) holdChatStream(id, res)
  else if (id) hold(id, res)
  else if (stream) sendEvents(res)
  else sendJson(res, 200, CHAT_COMPLETION_JSON)
}

const server = createServer((req, res) => {
  const url = req.url ?? '/'
  if (req.method === 'POST' && (url === '/v1/chat/completions' || url === '/v1/embeddings' || url === '/v1/audio/speech')) {
    readBody(req, (body) => {
      lastBodies.set(url, body)
      if (url === '/v1/embeddings') sendJson(res, 200, embeddingsJson(inputCount(body)))
      else if (url === '/v1/audio/speech') speech(body, res)
      else chat(body, res)
    })
    return
  }
  if (req.method === 'POST' && url === '/v1/audio/transcriptions') return transcription(req, res)
  if (req.method === 'GET' && url.startsWith('/_bench/held?')) return heldEvent(new URLSearchParams(url.slice(url.indexOf('?') + 1)), res)
  if (req.method === 'GET' && url.startsWith('/_bench/last-body?')) {
    const path = new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('path') ?? ''
    const body = lastBodies.get(path)
    if (body) sendJson(res, 200, body)
    else sendJson(res, 404, '{"error":{"message":"nothing received on that path yet"}}')
    return
  }
  req.resume()
  sendJson(res, 404, `{"error":{"message":"bench upstream: no route ${req.method} ${url}"}}`)
})

// Longer than any pause in a run, so neither client drops its connections between phases.
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  if (process.send) process.send({ port })
  else console.log(`bench upstream listening on http://127.0.0.1:${port}/v1`)
})

// When the parent goes away (even killed), go too.
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
