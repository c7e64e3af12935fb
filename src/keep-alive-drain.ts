import type { IncomingMessage, Server, ServerResponse } from 'node:http'

/** While draining, how long a connection still on keep-alive may sit idle before it is closed. */
const DRAINING_KEEP_ALIVE_MS = 1000

export interface KeepAliveDrain {
  /** From now on every response whose head has not gone out yet ends its connection. */
  start(): void
}

/**
 * Shutdown without cutting off a request on a keep-alive connection. Once started, every response
 * not yet begun says `Connection: close`: Node closes the socket once that response is written, and
 * the client, told so, sends nothing more on it. An idle connection is not closed under its client:
 * a request that comes on it is answered the same way. Node's server.close() then closes the
 * connections idle when the listener closes; one left on keep-alive by a response begun before the
 * drain (a long stream) closes after a short idle time, so a request its client sends at once is
 * still answered and the connection does not hold close() open.
 */
export function keepAliveDrain(server: Server): KeepAliveDrain {
  let draining = false
  const inFlight = new Set<ServerResponse>()
  function forget(this: ServerResponse): void {
    inFlight.delete(this)
  }
  // Ahead of the app's listener, so the header is there before any handler can answer.
  server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    if (draining) {
      response.setHeader('connection', 'close')
      return
    }
    inFlight.add(response)
    response.on('close', forget)
  })
  return {
    start() {
      if (draining) return
      draining = true
      for (const response of inFlight) if (!response.headersSent) response.setHeader('connection', 'close')
      inFlight.clear()
      server.keepAliveTimeout = DRAINING_KEEP_ALIVE_MS
      server.keepAliveTimeoutBuffer = 0
    },
  }
}
