import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { toErrorResponse, type AnyError } from '../error-response.ts'
import { repeatedKind, type LogSummary } from '../log-summary.ts'
import { DEPLOYMENT_HEADER } from '../routing/deployment-header.ts'
import { COST_HEADER } from '../spend/call-bill.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The error code the request was answered with, for its completion line. */
    errorCode: string | undefined
  }
}

export interface ErrorHandlerOptions {
  /** Where sheds and OpenAI outages are counted rather than each logged. */
  logSummary: LogSummary
}

/** Every non-2xx answer leaves through here, as `{"error":{code,message,details,request-id}}`. */
async function errorHandler(fastify: FastifyInstance, { logSummary }: ErrorHandlerOptions): Promise<void> {
  fastify.decorateRequest('errorCode', undefined)
  fastify.setErrorHandler((error: AnyError, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toErrorResponse(error, request.id)
    const { code, message } = body.error
    request.errorCode = code
    const kind = repeatedKind(code, status)
    if (kind) {
      // Trouble outside the service, in floods: its stack says nothing, the counts say enough.
      const operation = request.routeOptions.url ?? request.url.split('?')[0]!
      const cause = upstreamCause(error)
      logSummary.warn(
        request.log,
        { kind, operation, code, cause },
        { code, status, operation, cause, message },
        'request failed',
      )
    } else if (status >= 500) request.log.error({ err: error, status }, 'request failed')
    else request.log.info({ code, status }, 'request refused')
    if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds))
    // An error a deployment answered (or failed with) names it, as its answers do.
    if (typeof error.deployment === 'string') reply.header(DEPLOYMENT_HEADER, error.deployment)
    // What the calls made before the failure cost (0 for a refusal): spend is counted either way.
    if (request.bill) reply.header(COST_HEADER, request.bill.costText)
    reply.code(status).send(body)
  })
}

/** OpenAI's status, or the transport code when it did not answer. */
function upstreamCause(error: AnyError): string | number | undefined {
  const detail = error.details?.[0]
  return (detail?.['upstream-status'] ?? detail?.['transport-code']) as string | number | undefined
}

export default fp(errorHandler, { name: 'error-handler' })
