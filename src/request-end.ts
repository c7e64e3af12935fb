import type { ServerResponse } from 'node:http'
import type { FastifyRequest } from 'fastify'
import { errorAnsweredOn } from './client-errors.ts'
import { ERROR_CODES, type ErrorCode } from './errors.ts'

// How a request ended, for its metrics and its log line, taken when its response closes: Node
// closes every response once however the request ends, while Fastify runs onResponse and writes
// its completion line only for a response that finished.

/**
 * Why a response closed before it finished: the client left (hung up, reset the connection),
 * `ERR_CLIENT_CLOSED`; or the service answered on the connection itself (`ERR_REQUEST_TIMEOUT`
 * for a body too slow to arrive). Undefined when the service cut the connection of a stream that
 * failed after its headers: the status that was sent stands.
 */
export function earlyCloseCode(request: FastifyRequest): ErrorCode | undefined {
  const { socket } = request.raw
  const answered = errorAnsweredOn(socket)
  if (answered) return answered
  // The client's end of the connection ended (FIN) or failed (RST, EPIPE) before the response did.
  return socket.readableEnded || socket.errored ? 'ERR_CLIENT_CLOSED' : undefined
}

/** The status a request ended with: its response's, or for one that closed first, its reason's. */
export function endStatus(request: FastifyRequest, response: ServerResponse): number {
  if (response.writableFinished) return response.statusCode
  const code = earlyCloseCode(request)
  return code ? ERROR_CODES[code].status : response.statusCode
}
