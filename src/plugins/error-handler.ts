import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ErrorObject } from 'ajv'
import { NotFoundError, pointerToField, type DetailedError, type ErrorDetail } from '../errors.ts'

/** Fastify's own client errors, renamed to the service's stable codes with a clearer message. */
const FASTIFY_ERRORS: Record<string, { code: string; message?: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
    message: 'Unsupported Content-Type: send the task input as application/json',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'ERR_PAYLOAD_TOO_LARGE', message: 'The body is larger than this route accepts' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'ERR_INVALID_JSON', message: 'The body is empty; send the task input as JSON' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'ERR_INVALID_JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'ERR_INVALID_CONTENT_LENGTH' },
}

type AnyError = FastifyError & Partial<DetailedError>

/** Every non-2xx answer leaves through here, as `{"error":{code,message,details,request-id}}`. */
async function errorHandler(fastify: FastifyInstance): Promise<void> {
  fastify.setErrorHandler((error: AnyError, request: FastifyRequest, reply: FastifyReply) => {
    const status = statusOf(error)
    const known = error.code ? FASTIFY_ERRORS[error.code] : undefined
    let code = known?.code ?? error.code ?? 'ERR_INTERNAL'
    let message = known?.message ?? error.message
    let details = error.details
    if (error.validation) {
      code = 'ERR_VALIDATION'
      details = validationDetails(error.validation, error.validationContext ?? 'body')
      message = `The request is invalid: ${details.map((d) => `${d.field} ${d.message}`).join('; ')}`
    } else if (error instanceof SyntaxError && status === 400) {
      code = 'ERR_INVALID_JSON'
      message = `The body is not valid JSON: ${error.message}`
    } else if (status >= 500 && !error.code?.startsWith('ERR_UPSTREAM')) {
      code = 'ERR_INTERNAL'
      message = 'Internal server error'
    }

    if (status >= 500) request.log.error({ err: error, status }, 'request failed')
    else request.log.info({ code, status }, 'request refused')

    if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds))
    reply.code(status).send({ error: { code, message, details: details ?? [], 'request-id': request.id } })
  })

  fastify.setNotFoundHandler((request, reply) => {
    reply.send(new NotFoundError(request.method, request.url.split('?')[0]))
  })
}

function statusOf(error: AnyError): number {
  const status = error.statusCode
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500
}

function validationDetails(errors: FastifyError['validation'] & object, context: string): ErrorDetail[] {
  const details: ErrorDetail[] = []
  const seen = new Set<string>()
  for (const e of errors as ErrorObject[]) {
    // An if/then failure is reported by the `then` branch's own errors, with their paths.
    if (e.keyword === 'if') continue
    const detail = describe(e)
    const key = `${detail.path}\u0000${detail.message}`
    if (seen.has(key)) continue
    seen.add(key)
    details.push({ ...detail, field: detail.field || `(${context})` })
  }
  return details
}

function describe(e: ErrorObject): ErrorDetail {
  const params = e.params as Record<string, unknown>
  let path = e.instancePath
  let message = e.message ?? 'is invalid'
  switch (e.keyword) {
    case 'required':
      path += `/${String(params.missingProperty)}`
      message = 'is required'
      break
    case 'additionalProperties':
      path += `/${String(params.additionalProperty)}`
      message = 'is not a known field'
      break
    case 'enum':
      message = `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`
      break
    case 'const':
      message = `must be ${JSON.stringify(params.allowedValue)}`
      break
    case 'false schema':
      message = 'is not supported with these settings'
      break
  }
  return { field: pointerToField(path), path, message, keyword: e.keyword }
}

export default fp(errorHandler, { name: 'error-handler' })
