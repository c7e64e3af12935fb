import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { ERROR_CODES, type ErrorCode } from './errors.ts'

/** Node's socket errors, by their code, as the service's codes. */
const BY_CODE: Record<string, { code: ErrorCode; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    code: 'ERR_REQUEST_TIMEOUT',
    message: 'The request did not arrive in time (HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS)',
  },
  HPE_HEADER_OVERFLOW: { code: 'ERR_HEADERS_TOO_LARGE', message: 'The request headers are too large' },
}
const MALFORMED = { code: 'ERR_BAD_HTTP_REQUEST', message: 'Malformed HTTP request' } as const

/** Connections answered here; a request on one of them ended with that answer, not a hang-up. */
const answered = new WeakMap<Socket, ErrorCode>()

/** The error answered on this connection by the handler below (408 for a body too slow), if any. */
export function errorAnsweredOn(socket: Socket): ErrorCode | undefined {
  return answered.get(socket)
}

/**
 * Errors before a request exists (malformed HTTP, slow clients): answered on the raw socket,
 * with the service's error shape, then the socket is closed.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const known = (err.code && BY_CODE[err.code]) || MALFORMED
  const status = ERROR_CODES[known.code].status
  this.log.debug({ err: { message: err.message, code: err.code } }, 'client error')
  if (socket.writable) {
    const body = JSON.stringify({ error: { code: known.code, message: known.message, details: [], 'request-id': '' } })
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
    answered.set(socket, known.code)
  }
  socket.destroy()
}
