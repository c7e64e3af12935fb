import type { ServerResponse } from 'node:http'
import { createParser, type ParseError } from 'eventsource-parser'
import { SSE_EVENT_CHARACTERS } from '../upstream/answer-limits.ts'
import type { AnswerBody } from '../upstream/upstream-answer.ts'
import { answerTooLarge, badUpstreamResponse } from '../upstream/upstream-errors.ts'

/** One Server-Sent Event as written on the wire. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/** The type and headers of every event stream the service answers with: no cache or proxy buffers it. */
export const EVENT_STREAM_TYPE = 'text/event-stream; charset=utf-8'
export const EVENT_STREAM_HEADERS = { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }

/** An SSE comment: ignored by clients, keeps proxies from closing an idle connection. */
export const SSE_KEEP_ALIVE = ': keep-alive\n\n'

/** Turns the events of an upstream SSE body into ours, as SSE text ('' for none). */
export interface SseRelay {
  /** Our events for the `data` of one upstream event; throwing fails the stream. */
  data(data: string): string
  /** Our last events, once the upstream body has ended; throwing fails the stream. */
  end(): string
  /** Our last events after a failure: the body's error, or what `data` or `end` threw. */
  fail(err: unknown): string
}

export interface RelayOptions {
  /** Silence after which a keep-alive comment goes out. */
  heartbeatMs: number
  /** The most of the upstream body relayed (answer-limits.ts); past it the stream fails. */
  maxBytes: number
}

// One options object for every decode, not one per read.
const STREAM = { stream: true }

/** The parser's own complaints are ignored (unknown fields and the like), except an event over its bound. */
function onParseError(error: ParseError): void {
  if (error.type === 'max-buffer-size-exceeded') {
    throw badUpstreamResponse(
      `a stream event over ${SSE_EVENT_CHARACTERS / 2 ** 20} Mi characters, more than this service takes in`,
    )
  }
}

/** An event stream relayed straight into the response, with no stream of its own in between. */
export interface SseStream {
  /** Writes the events into `res`, whose headers are set, and ends it with them. */
  into(res: ServerResponse): void
  /** Called once, when the response closes, however it ended (the caller may have hung up). */
  onClose(listener: () => void): void
}

/**
 * Relays an upstream SSE body as our own event stream, written into the response as it comes:
 * what each read of the body completes goes out as one write, the body pauses while the client
 * is behind (until the response drains), and a keep-alive comment follows `heartbeatMs` of
 * silence. An event over SSE_EVENT_CHARACTERS or a body over `maxBytes` fails the stream. A
 * response that closes first (the caller hung up) destroys the body, which aborts the upstream call.
 */
export function relaySse(body: AnswerBody, relay: SseRelay, { heartbeatMs, maxBytes }: RelayOptions): SseStream {
  let res: ServerResponse | undefined
  let events = ''
  let closed = false
  let received = 0
  let heartbeat: NodeJS.Timeout | undefined
  const closeListeners: Array<() => void> = []
  const parser = createParser({
    // A line or event that never ends is cut off there, not buffered on.
    maxBufferSize: SSE_EVENT_CHARACTERS,
    onError: onParseError,
    onEvent: (event) => {
      events += relay.data(event.data)
    },
  })
  const decoder = new TextDecoder()
  const resume = (): void => {
    body.resume()
  }

  const send = (text: string): void => {
    heartbeat?.refresh()
    if (!res!.write(text)) {
      body.pause()
      res!.once('drain', resume)
    }
  }
  const stop = (): void => {
    closed = true
    clearTimeout(heartbeat)
  }
  const end = (last: string): void => {
    res!.end(last || undefined)
  }
  const fail = (err: unknown): void => {
    if (closed) return
    stop()
    body.destroy()
    let last: string
    try {
      // Events taken from the read that failed still go out, before the failure's own.
      last = events + relay.fail(err)
    } catch {
      // No event can say what went wrong: the connection is cut, so the caller sees a failure.
      res!.destroy()
      return
    }
    end(last)
  }
  const onData = (chunk: Buffer): void => {
    if (closed) return
    received += chunk.length
    if (received > maxBytes) {
      fail(answerTooLarge('a stream', maxBytes))
      return
    }
    try {
      parser.feed(decoder.decode(chunk, STREAM))
    } catch (err) {
      fail(err)
      return
    }
    if (!events) return
    const text = events
    events = ''
    send(text)
  }
  const onEnd = (): void => {
    if (closed) return
    let last: string
    try {
      last = relay.end()
    } catch (err) {
      fail(err)
      return
    }
    stop()
    end(last)
  }

  return {
    into(response) {
      res = response
      heartbeat = setTimeout(() => send(SSE_KEEP_ALIVE), heartbeatMs)
      // Closed before the stream's end: the caller left, and OpenAI's answer is not wanted any more.
      response.once('close', () => {
        if (!closed) {
          stop()
          body.destroy()
        }
        for (const listener of closeListeners) listener()
      })
      body.consume({ data: onData, end: onEnd, error: fail })
    },
    onClose(listener) {
      closeListeners.push(listener)
    },
  }
}
