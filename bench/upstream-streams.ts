/**
 * The bench upstream's streaming side, for `npm run bench:streaming`:
 *
 *   POST /v1/audio/speech           audio/mpeg, chunked: 16 KB, or N bytes for an input
 *                                   holding `bench-bytes-N`, written as fast as the reader takes them
 *   POST /v1/audio/transcriptions   drains the (multipart) body, answers {"text":"…"} with its size
 *   GET  /_bench/held?id=ID&event=received|closed
 *                                   when the held request ID arrived / its connection closed, as
 *                                   process.hrtime.bigint() nanoseconds (a clock every process shares)
 *
 * A speech or chat body holding `bench-hold-ID` is held: chat JSON gets no answer at all, an SSE
 * chat or speech stream gets its headers and first bytes, then nothing; the upstream records when
 * it arrived and when the service closed the connection.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CHAT_COMPLETION_EVENTS } from './fixtures.ts'

const HOLD_MARK = Buffer.from('bench-hold-')
const HOLD_ID = /bench-hold-(\d+)/
const BYTES = /bench-bytes-(\d+)/
/** A held request ends itself after this long, so a service that never aborts leaks nothing. */
const HOLD_LIMIT_MS = 30_000
const WAIT_LIMIT_MS = 5_000

/** MPEG audio frame headers (0xFFFB) and silence: looks like mp3 to anyone peeking at it. */
const AUDIO_CHUNK = Buffer.alloc(64 * 1024)
for (let i = 0; i < AUDIO_CHUNK.length; i += 418) AUDIO_CHUNK.set([0xff, 0xfb, 0x90, 0x64], i)
const DEFAULT_AUDIO_BYTES = 16 * 1024
const AUDIO_HEADERS = { 'content-type': 'audio/mpeg', 'transfer-encoding': 'chunked' }

type HoldEvent = 'received' | 'closed'
interface Held {
  at: Partial<Record<HoldEvent, bigint>>
  waiters: Array<() => void>
}
const held = new Map<string, Held>()

function heldEntry(id: string): Held {
  let entry = held.get(id)
  if (!entry) held.set(id, (entry = { at: {}, waiters: [] }))
  return entry
}

function mark(id: string, event: HoldEvent): void {
  const entry = heldEntry(id)
  entry.at[event] ??= process.hrtime.bigint()
  for (const wake of entry.waiters.splice(0)) wake()
}

/** The hold ID a request body carries, if any. */
export function holdIdOf(body: Buffer): string | undefined {
  return body.includes(HOLD_MARK) ? HOLD_ID.exec(body.toString())?.[1] : undefined
}

/** Keeps `res` open after `first` (headers and bytes, or nothing), recording arrival and close. */
export function hold(id: string, res: ServerResponse, first?: { headers: Record<string, string>; chunks: Buffer[] }): void {
  res.once('close', () => mark(id, 'closed'))
  if (first) {
    res.writeHead(200, first.headers)
    for (const chunk of first.chunks) res.write(chunk)
  }
  mark(id, 'received')
  setTimeout(() => res.destroy(), HOLD_LIMIT_MS).unref()
}

/** A held SSE chat stream: the role chunk and one content delta, then silence. */
export function holdChatStream(id: string, res: ServerResponse): void {
  hold(id, res, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
    chunks: CHAT_COMPLETION_EVENTS.slice(0, 2),
  })
}

/** POST /v1/audio/speech, once its body is read. */
export function speech(body: Buffer, res: ServerResponse): void {
  const id = holdIdOf(body)
  if (id) return hold(id, res, { headers: AUDIO_HEADERS, chunks: [AUDIO_CHUNK.subarray(0, 4096)] })
  const total = Number(BYTES.exec(body.toString())?.[1] ?? DEFAULT_AUDIO_BYTES)
  res.writeHead(200, AUDIO_HEADERS)
  let sent = 0
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(AUDIO_CHUNK.length, total - sent)
      sent += n
      if (!res.write(n === AUDIO_CHUNK.length ? AUDIO_CHUNK : AUDIO_CHUNK.subarray(0, n))) {
        res.once('drain', pump)
        return
      }
    }
    res.end()
  }
  pump()
}

/** POST /v1/audio/transcriptions: counts the body's bytes without keeping them. */
export function transcription(req: IncomingMessage, res: ServerResponse): void {
  let bytes = 0
  req.on('data', (chunk: Buffer) => (bytes += chunk.length))
  req.on('end', () => {
    const body = JSON.stringify({ text: `bench transcription of a ${bytes}-byte request` })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
}

/** GET /_bench/held?id=ID&event=received|closed: answers once it happened (404 after 5 s). */
export function heldEvent(query: URLSearchParams, res: ServerResponse): void {
  const id = query.get('id') ?? ''
  const event: HoldEvent = query.get('event') === 'closed' ? 'closed' : 'received'
  const entry = heldEntry(id)
  const answer = (): boolean => {
    const at = entry.at[event]
    if (at === undefined) return false
    const body = JSON.stringify({ at: String(at) })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
    if (event === 'closed') held.delete(id)
    return true
  }
  if (answer()) return
  const timer = setTimeout(() => {
    entry.waiters = entry.waiters.filter((w) => w !== wake)
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(`{"error":{"message":"no ${event} event for hold ${id} within ${WAIT_LIMIT_MS} ms"}}`)
  }, WAIT_LIMIT_MS)
  const wake = (): void => {
    if (answer()) clearTimeout(timer)
    else entry.waiters.push(wake)
  }
  entry.waiters.push(wake)
}
