import { PassThrough, type Readable } from 'node:stream'
import { createParser } from 'eventsource-parser'

/** One Server-Sent Event as written on the wire. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/** An SSE comment: ignored by clients, keeps proxies from closing an idle connection. */
export const SSE_KEEP_ALIVE = ': keep-alive\n\n'

/** The `data` of each event of an upstream SSE body, as the bytes arrive. */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const pending: string[] = []
  const parser = createParser({ onEvent: (event) => pending.push(event.data) })
  const decoder = new TextDecoder()
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }))
    while (pending.length) yield pending.shift()!
  }
}

/**
 * The events as a byte stream, written as they come with backpressure, plus a keep-alive
 * comment after every `heartbeatMs` of silence (one refreshable timer, not one per event).
 */
export function sseStream(events: AsyncIterable<string>, heartbeatMs: number): Readable {
  const out = new PassThrough()
  const heartbeat = setTimeout(function beat() {
    if (out.writableEnded || out.destroyed) return
    out.write(SSE_KEEP_ALIVE)
    heartbeat.refresh()
  }, heartbeatMs)
  const writable = () =>
    new Promise<void>((resolve) => {
      out.once('drain', resolve)
      out.once('close', resolve)
    })
  ;(async () => {
    try {
      for await (const event of events) {
        if (out.destroyed) break
        heartbeat.refresh()
        if (!out.write(event)) await writable()
      }
    } finally {
      clearTimeout(heartbeat)
      out.end()
    }
  })().catch((err: Error) => out.destroy(err))
  return out
}
