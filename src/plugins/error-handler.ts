import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { toErrorResponse, type AnyError } from '../error-response.ts'
import { NotFoundError } from '../errors.ts'

/** Every non-2xx answer leaves through here, as `{"error":{code,message,details,request-id}}`. */
async function errorHandler(fastify: FastifyInstance): Promise<void> {
  fastify.setErrorHandler((error: AnyError, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toErrorResponse(error, request.id)
    if (status >= 500) request.log.error({ err: error, status }, 'request failed')
    else request.log.info({ code: body.error.code, status }, 'request refused')
    if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds))
    reply.code(status).send(body)
  })

  fastify.setNotFoundHandler((request, reply) => {
    reply.send(new NotFoundError(request.method, request.url.split('?')[0]))
  })
}

export default fp(errorHandler, { name: 'error-handler' })
