import { setTimeout as delay } from 'node:timers/promises'
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

export const HEARTBEAT = Symbol('heartbeat')

/**
 * Passes the source's items through and yields HEARTBEAT whenever `everyMs` pass without one.
 * The pending read of the source is kept across heartbeats, so nothing is lost or reordered.
 */
export async function* withHeartbeat<T>(source: AsyncIterator<T>, everyMs: number): AsyncGenerator<T | typeof HEARTBEAT> {
  let next = source.next()
  try {
    for (;;) {
      const timer = new AbortController()
      const tick = delay(everyMs, HEARTBEAT, { signal: timer.signal }).catch(() => undefined)
      const result = await Promise.race([next, tick])
      timer.abort()
      if (result === HEARTBEAT) {
        yield HEARTBEAT
        continue
      }
      if (!result || result.done) return
      yield result.value
      next = source.next()
    }
  } finally {
    await source.return?.()
  }
}
