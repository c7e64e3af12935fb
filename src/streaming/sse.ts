import { PassThrough, type Readable } from 'node:stream'
import { createParser } from 'eventsource-parser'

/** One Server-Sent Event as written on the wire. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/** An SSE comment: ignored by clients, keeps proxies from closing an idle connection. */
export const SSE_KEEP_ALIVE = ': keep-alive\n\n'

/**
 * The `data` of the events of an upstream SSE body, as the bytes arrive: one array per chunk
 * read that completed any event (a handful of events per chunk cost one step, not one each).
 */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string[]> {
  let pending: string[] = []
  const parser = createParser({ onEvent: (event) => pending.push(event.data) })
  const decoder = new TextDecoder()
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }))
    if (!pending.length) continue
    const complete = pending
    pending = []
    yield complete
  }
}

/**
 * The events as a byte stream, written with backpressure, plus a keep-alive comment after every
 * `heartbeatMs` of silence (one refreshable timer, not one per event). Events that come in the
 * same turn of the event loop — several upstream chunks in one socket read — go out as one
 * write, i.e. one syscall rather than one per event; an event waits at most until the loop's
 * check phase, never for a timer.
 */
export function sseStream(events: AsyncIterable<string>, heartbeatMs: number): Readable {
  const out = new PassThrough()
  const heartbeat = setTimeout(function beat() {
    if (out.writableEnded || out.destroyed) return
    out.write(SSE_KEEP_ALIVE)
    heartbeat.refresh()
  }, heartbeatMs)
  let pending: string[] = []
  let scheduled: NodeJS.Immediate | undefined
  const flush = (): void => {
    scheduled = undefined
    if (!pending.length || out.destroyed) return
    const text = pending.length === 1 ? pending[0]! : pending.join('')
    pending = []
    out.write(text)
  }
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
        pending.push(event)
        scheduled ??= setImmediate(flush)
        if (out.writableNeedDrain) await writable()
      }
    } finally {
      clearTimeout(heartbeat)
      if (scheduled) clearImmediate(scheduled)
      flush()
      out.end()
    }
  })().catch((err: Error) => out.destroy(err))
  return out
}
