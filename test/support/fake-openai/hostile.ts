// Hostile answers: what a broken or malicious upstream sends, written out lazily so that a huge one costs the stand-in nothing.
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { Exchange } from './behaviours.ts'
import { openAIError } from './errors.ts'
import { JSON_TYPE, type Reply } from './reply.ts'
import type {
  EchoCredentialsBehaviour,
  HugeIndexBehaviour,
  HugeLineBehaviour,
  MutatedBehaviour,
  OversizeBehaviour,
  RecordedRequest,
  WrongContentTypeBehaviour,
} from './types.ts'

const SSE_TYPE = 'text/event-stream; charset=utf-8'
/** The index the issue found a single chunk could name: 50 M entries built from one event. */
export const HUGE_INDEX = 50_000_000
/** What a hostile answer is padded with, one reusable slice at a time. */
const FILLER = Buffer.alloc(64 * 1024, 'x')

/** A proxy's login page, answered in place of the API with a 200. */
export const LOGIN_PAGE =
  '<!doctype html><html><head><title>Sign in</title></head><body><form method="post" action="/login">' +
  '<input name="user"><input name="password" type="password"><button>Sign in</button></form></body></html>'

/** Whether the request asked for a stream (chat `stream: true`, a transcription form's `stream`). */
export function isStreamRequest(rec: RecordedRequest): boolean {
  return rec.json?.stream === true || rec.form?.fields.stream === 'true'
}

/** The bearer token the request carried, or '' without one. */
export function bearerOf(rec: RecordedRequest): string {
  return /^Bearer\s+(\S+)/i.exec(String(rec.headers.authorization ?? ''))?.[1] ?? ''
}

/**
 * Writes status, headers and the pieces one after another, waiting whenever the socket is full and
 * stopping once it closes (the client gave up on the answer): `rec.responseBytes` counts what went out.
 */
export async function writeLazily(
  x: Exchange,
  status: number,
  headers: Record<string, string>,
  pieces: Iterable<Buffer | string>,
): Promise<void> {
  const { res, rec } = x
  if (res.destroyed) return
  const all = { 'x-request-id': rec.requestId, ...headers }
  rec.responseStatus = status
  rec.responseHeaders = all
  rec.responseBytes = 0
  res.writeHead(status, all)
  for (const piece of pieces) {
    if (res.destroyed) return
    rec.responseBytes += Buffer.byteLength(piece)
    if (!res.write(piece)) await drainedOrClosed(res)
  }
  if (!res.destroyed) res.end()
}

async function drainedOrClosed(res: ServerResponse): Promise<void> {
  const ac = new AbortController()
  await Promise.race([once(res, 'drain', ac), once(res, 'close', ac)]).catch(() => undefined)
  ac.abort()
}

/** `bytes` of filler, in slices. */
function* filler(bytes: number): Generator<Buffer> {
  for (let left = bytes; left > 0; left -= FILLER.length) {
    yield left >= FILLER.length ? FILLER : FILLER.subarray(0, left)
  }
}

const CHUNK = { id: 'chatcmpl-hostile', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini' }
const chunkOf = (choices: object[]): string => `data: ${JSON.stringify({ ...CHUNK, choices })}\n\n`

/** A chat stream with one chunk naming a choice (or tool call) `index` far beyond what was asked for. */
export function playHugeIndex(b: HugeIndexBehaviour, x: Exchange): Promise<void> {
  const index = b.index ?? HUGE_INDEX
  const events =
    b.kind === 'huge-choice-index'
      ? [
          chunkOf([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
          chunkOf([{ index, delta: { content: 'x' }, finish_reason: 'stop' }]),
        ]
      : [
          chunkOf([
            {
              index: 0,
              delta: {
                role: 'assistant',
                content: null,
                tool_calls: [{ index, id: 'call_hostile', type: 'function', function: { name: 'f', arguments: '{}' } }],
              },
              finish_reason: null,
            },
          ]),
        ]
  events.push(chunkOf([{ index: 0, delta: {}, finish_reason: b.kind === 'huge-choice-index' ? 'stop' : 'tool_calls' }]))
  events.push('data: [DONE]\n\n')
  return writeLazily(x, 200, { 'content-type': SSE_TYPE }, events)
}

/** A 200 event stream whose first line is `bytes` long: a `data:` line the parser must hold, or junk it may skip. */
export function playHugeLine(b: HugeLineBehaviour, x: Exchange): Promise<void> {
  const bytes = b.bytes ?? 400 * 1024 * 1024
  const start = b.field === 'junk' ? 'x' : 'data: "'
  function* pieces(): Generator<Buffer | string> {
    yield start
    yield* filler(bytes)
    if (b.terminated) yield '"\n\ndata: [DONE]\n\n'
  }
  return writeLazily(x, 200, { 'content-type': SSE_TYPE }, pieces())
}

/**
 * A 200 answer `bytes` long in the operation's own type: for a stream, ordinary events of 64 KiB
 * that never end it; for speech, audio bytes; for the others a JSON object padded out.
 */
export function playOversize(b: OversizeBehaviour, x: Exchange): Promise<void> {
  const stream = isStreamRequest(x.rec)
  const speech = x.rec.path.startsWith('/v1/audio/speech')
  const contentType = stream ? SSE_TYPE : speech ? 'audio/mpeg' : JSON_TYPE
  const event = Buffer.from(`data: {"padding":"${'x'.repeat(FILLER.length - 20)}"}\n\n`)
  function* pieces(): Generator<Buffer | string> {
    if (stream) {
      for (let sent = 0; sent < b.bytes; sent += event.length) yield event
    } else if (speech) {
      yield* filler(b.bytes)
    } else {
      yield '{"padding":"'
      yield* filler(b.bytes - 14)
      yield '"}'
    }
  }
  const headers: Record<string, string> = { 'content-type': contentType }
  if (b.declareLength) headers['content-length'] = String(b.bytes)
  return writeLazily(x, 200, headers, pieces())
}

/** A 200 with another Content-Type: a login page by default, or the operation's own answer relabelled. */
export async function playWrongContentType(b: WrongContentTypeBehaviour, x: Exchange): Promise<void> {
  const contentType = b.contentType ?? 'text/html; charset=utf-8'
  if (b.keepBody) {
    const reply = await x.answer()
    const headers = { ...reply.headers }
    if (b.contentType === null) delete headers['content-type']
    else headers['content-type'] = contentType
    return x.send({ ...reply, headers })
  }
  const body = b.body ?? LOGIN_PAGE
  return writeLazily(x, 200, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) }, [body])
}

/** Every request header as `name: value` lines, the way a debugging server echoes them. */
function headerLines(rec: RecordedRequest): string {
  return Object.entries(rec.headers)
    .map(([name, value]) => `${name}: ${String(value)}`)
    .join('\n')
}

/**
 * An answer repeating the credentials the request carried (and `tokens`, secrets of its own):
 * in OpenAI's error message, as a 500 listing its request headers, as an error event in a stream
 * that had started, or as an unreadable 200 body.
 */
export function playEchoCredentials(b: EchoCredentialsBehaviour, x: Exchange): Promise<void> {
  const key = bearerOf(x.rec)
  const own = (b.tokens ?? []).map((token) => ` Bearer ${token} api-key: ${token}`).join('')
  const said = `Incorrect API key provided: Bearer ${key}.${own}`
  const echo = b.echo ?? 'message'
  const headers = { 'x-request-id': `req_${key}` }
  switch (echo) {
    case 'message': {
      const status = b.status ?? 401
      const body = JSON.stringify(openAIError(status, said, undefined, key))
      return writeLazily(x, status, { ...headers, 'content-type': JSON_TYPE }, [body])
    }
    case 'headers':
      return writeLazily(x, b.status ?? 500, { ...headers, 'content-type': 'text/plain' }, [
        `upstream failed; request was:\n${headerLines(x.rec)}\n${own}`,
      ])
    case 'stream-error':
      return writeLazily(x, 200, { ...headers, 'content-type': SSE_TYPE }, [
        chunkOf([{ index: 0, delta: { role: 'assistant', content: 'Hel' }, finish_reason: null }]),
        `data: ${JSON.stringify(openAIError(500, said, 'server_error', key))}\n\n`,
      ])
    case 'unreadable':
      return isStreamRequest(x.rec)
        ? writeLazily(x, 200, { ...headers, 'content-type': SSE_TYPE }, [`data: ${said}\n\n`])
        : writeLazily(x, 200, { ...headers, 'content-type': `${JSON_TYPE}; key=${key}` }, [said])
  }
}

/** A JSON node: where it sits (its parent and key; none for the root). */
interface Node {
  parent: Record<string, unknown> | unknown[] | undefined
  key: string | number
}

/** Every node of `value` in document order, the root first. */
function nodesOf(value: unknown, parent?: Node['parent'], key: Node['key'] = ''): Node[] {
  const nodes: Node[] = [{ parent, key }]
  if (typeof value === 'object' && value !== null) {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value)
    for (const [k, v] of entries) nodes.push(...nodesOf(v, value as Node['parent'], k))
  }
  return nodes
}

/** Puts each mutation's value at its node; the documents are changed in place, a root replaced in the list. */
function mutate(documents: unknown[], mutations: MutatedBehaviour['mutations']): void {
  for (const { at, value } of mutations) {
    const nodes = documents.flatMap((doc, i) => nodesOf(doc, documents, i))
    const node = nodes[Math.min(nodes.length - 1, Math.floor(Math.max(0, at) * nodes.length))]
    if (node?.parent) (node.parent as Record<string | number, unknown>)[node.key] = value
  }
}

const DATA_LINE = /^data: (.*)$/

/** The operation's own answer, its JSON (or its events' JSON) with the mutations applied. */
export async function playMutated(b: MutatedBehaviour, x: Exchange): Promise<void> {
  const reply = await x.answer()
  const type = reply.headers['content-type'] ?? ''
  if (type.startsWith(JSON_TYPE)) {
    const documents = [JSON.parse(Buffer.concat(reply.chunks).toString())]
    mutate(documents, b.mutations)
    const body = JSON.stringify(documents[0]) ?? 'null'
    return x.send({ ...reply, chunks: [Buffer.from(body)], streamed: false })
  }
  if (!type.startsWith('text/event-stream')) return x.send(reply)
  const lines = reply.chunks.map((chunk) => DATA_LINE.exec(chunk.toString().trimEnd())?.[1])
  const events = lines.map((line) => (line && line !== '[DONE]' ? (JSON.parse(line) as unknown) : undefined))
  const parsed = events.filter((event) => event !== undefined)
  mutate(parsed, b.mutations)
  let next = 0
  const chunks = reply.chunks.map((chunk, i) =>
    events[i] === undefined ? chunk : Buffer.from(`data: ${JSON.stringify(parsed[next++]) ?? 'null'}\n\n`),
  )
  const mutated: Reply = { ...reply, chunks }
  return x.send(mutated)
}
