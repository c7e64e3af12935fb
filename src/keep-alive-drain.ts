import type { IncomingMessage, Server, ServerResponse } from 'node:http'

/** After the listener closes, how long a connection left idle may wait for one more request. */
const LAST_REQUEST_WAIT_MS = 2000

/**
 * Shutdown without cutting off a request on a keep-alive connection: once the listener closes,
 * responses say `Connection: close` and idle connections get a short wait for a request their
 * client may already be sending, instead of being closed under it (docs/operations.md, Shutdown).
 */
export function keepAliveDrain(server: Server): void {
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
  // In the same step as the listener closes: a response between the two would send its client
  // to reconnect into the accept queue of a listener about to close.
  const close = server.close.bind(server)
  server.close = (callback?: (err?: Error) => void) => {
    if (!draining) start()
    return close(callback)
  }

  function start(): void {
    draining = true
    for (const response of inFlight) if (!response.headersSent) response.setHeader('connection', 'close')
    inFlight.clear()
    // A connection that goes idle from now on (a long stream ending) waits as long, then closes.
    server.keepAliveTimeout = LAST_REQUEST_WAIT_MS
    server.keepAliveTimeoutBuffer = 0
    const closeIdleConnections = server.closeIdleConnections.bind(server)
    server.closeIdleConnections = () => {
      setTimeout(closeIdleConnections, LAST_REQUEST_WAIT_MS).unref()
    }
  }
}
