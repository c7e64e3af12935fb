import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'

const BY_CODE: Record<string, { status: number; code: string; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'ERR_REQUEST_TIMEOUT',
    message: 'The request did not arrive in time (HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS)',
  },
  HPE_HEADER_OVERFLOW: { status: 431, code: 'ERR_HEADERS_TOO_LARGE', message: 'The request headers are too large' },
}

/**
 * Errors before a request exists (malformed HTTP, slow clients): answered on the raw socket,
 * with the service's error shape, then the socket is closed.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const known = (err.code && BY_CODE[err.code]) || { status: 400, code: 'ERR_BAD_HTTP_REQUEST', message: 'Malformed HTTP request' }
  this.log.debug({ err: { message: err.message, code: err.code } }, 'client error')
  if (socket.writable) {
    const body = JSON.stringify({ error: { code: known.code, message: known.message, details: [], 'request-id': '' } })
    socket.write(
      `HTTP/1.1 ${known.status} ${STATUS_CODES[known.status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}
