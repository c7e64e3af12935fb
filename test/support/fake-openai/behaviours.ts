// Scripted behaviours: the queue `fake.enqueue(...)` fills, and how each behaviour answers a request.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { defaultErrorMessage, openAIError } from './errors.ts'
import {
  playEchoCredentials,
  playHugeIndex,
  playHugeLine,
  playMutated,
  playOversize,
  playWrongContentType,
} from './hostile.ts'
import { JSON_TYPE, bodyReply, type Reply } from './reply.ts'
import { pathMatches } from './request.ts'
import type { Behaviour, RecordedRequest, StatusBehaviour } from './types.ts'

/** Where to cut an answer short: after this many chunks, then stall or destroy the socket. */
export interface Cut {
  after: number
  stall: boolean
}

/** One request being answered, as the server hands it to a behaviour. */
export interface Exchange {
  req: IncomingMessage
  res: ServerResponse
  rec: RecordedRequest
  /** OpenAI's answer to a breach of the contract, if the request had one. */
  problem: Reply | undefined
  /** The answer the request would get without a behaviour (the problem's, if any). */
  answer(): Promise<Reply>
  send(reply: Reply, cut?: Cut): Promise<void>
  /** Destroy the socket, with a TCP reset when `reset`. */
  destroy(reset: boolean): void
  /** Wait `ms` (cut short when the stand-in closes); true if the answer should still be written. */
  pause(ms: number): Promise<boolean>
}

/** FIFO; a behaviour with a `path` waits for a request to it, one with `times` answers that many. */
export class BehaviourQueue {
  readonly #entries: Array<{ behaviour: Behaviour; left: number }> = []

  push(behaviour: Behaviour): void {
    if (behaviour.kind === 'slow' && !(typeof behaviour.delayMs === 'number' && behaviour.delayMs >= 0)) {
      throw new Error('slow needs delayMs')
    }
    if (behaviour.kind === 'oversize' && !(typeof behaviour.bytes === 'number' && behaviour.bytes >= 16)) {
      throw new Error('oversize needs bytes (16 or more)')
    }
    if ((behaviour.kind === undefined || behaviour.kind === 'status') && typeof behaviour.status !== 'number') {
      throw new Error('fake-openai: enqueue needs a status or a kind')
    }
    this.#entries.push({ behaviour, left: Math.max(1, behaviour.times ?? 1) })
  }

  /** The first behaviour for `pathname`, leaving the queue when it used its last time. */
  take(pathname: string): Behaviour | undefined {
    const i = this.#entries.findIndex((e) => e.behaviour.path === undefined || pathMatches(e.behaviour.path, pathname))
    if (i < 0) return undefined
    const entry = this.#entries[i]!
    if (--entry.left <= 0) this.#entries.splice(i, 1)
    return entry.behaviour
  }

  get length(): number {
    return this.#entries.length
  }

  clear(): void {
    this.#entries.length = 0
  }
}

function lowerKeys(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h ?? {})) out[k.toLowerCase()] = v
  return out
}

/** The status with the normal answer (2xx without a body), else with the body given or an OpenAI error. */
async function playStatus(b: StatusBehaviour, x: Exchange): Promise<void> {
  if (b.body === undefined && b.status < 300 && !x.problem) {
    const r = await x.answer()
    return x.send({ ...r, status: b.status, headers: { ...r.headers, ...lowerKeys(b.headers) } })
  }
  const reply =
    typeof b.body === 'string'
      ? bodyReply(b.status, 'text/plain; charset=utf-8', b.body)
      : bodyReply(
          b.status,
          JSON_TYPE,
          JSON.stringify(b.body === undefined ? openAIError(b.status, defaultErrorMessage(b.status)) : b.body),
        )
  return x.send({ ...reply, headers: { ...reply.headers, ...lowerKeys(b.headers) } })
}

/** Half of a JSON answer, or the start of a chat completion for other answers. */
async function playMalformedJson(x: Exchange): Promise<void> {
  const r = await x.answer()
  const json =
    r.headers['content-type']?.startsWith(JSON_TYPE) && !r.streamed
      ? r.chunks[0]!.subarray(0, Math.max(1, Math.floor(r.chunks[0]!.length / 2)))
      : Buffer.from('{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"mess')
  return x.send(bodyReply(200, JSON_TYPE, json))
}

export async function playBehaviour(b: Behaviour, x: Exchange): Promise<void> {
  switch (b.kind) {
    case 'hang':
      return
    case 'reset':
      x.destroy(true)
      return
    case 'custom':
      await b.handler(x.req, x.res, x.rec)
      return
    case 'slow':
      if (await x.pause(b.delayMs)) await x.send(await x.answer())
      return
    case 'malformed-json':
      return playMalformedJson(x)
    case 'huge-choice-index':
    case 'huge-tool-call-index':
      return playHugeIndex(b, x)
    case 'huge-line':
      return playHugeLine(b, x)
    case 'oversize':
      return playOversize(b, x)
    case 'wrong-content-type':
      return playWrongContentType(b, x)
    case 'echo-credentials':
      return playEchoCredentials(b, x)
    case 'mutated':
      return playMutated(b, x)
    case 'truncated-stream': {
      const r = await x.answer()
      const total = r.chunks.length < 2 ? 2 : r.chunks.length
      const after = Math.min(total - 1, Math.max(1, b.afterChunks ?? Math.floor(total / 2)))
      return x.send(r, { after, stall: b.stall === true })
    }
    default:
      return playStatus(b, x)
  }
}
