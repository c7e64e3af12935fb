import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { toErrorResponse } from './error-response.ts'

/**
 * Errors Fastify meets before routing (a URL it cannot decode, a parameter too long), which it
 * would otherwise answer with its own body and `FST_` code, bypassing the error handler: answered
 * in the service's error shape instead.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = toErrorResponse(error, request.id)
  request.errorCode = body.error.code
  reply.code(status).header('x-request-id', request.id).send(body)
}
