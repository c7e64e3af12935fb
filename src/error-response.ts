import type { FastifyError } from 'fastify'
import type { ErrorObject } from 'ajv'
import { pointerToField, validationFailure, type DetailedError, type ErrorCode, type ErrorDetail } from './errors.ts'

interface ServiceCode {
  code: ErrorCode
  message?: string
  status?: number
}

/**
 * Fastify's own client errors (and its plugins'), renamed to the service's stable codes with a
 * clearer message: no `FST_` code ever reaches a caller.
 */
const FASTIFY_ERRORS: Record<string, ServiceCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
    message: 'Unsupported Content-Type: send the task input as application/json',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'ERR_PAYLOAD_TOO_LARGE', message: 'The body is larger than this route accepts' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'ERR_INVALID_JSON', message: 'The body is empty; send the task input as JSON' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'ERR_INVALID_JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'ERR_INVALID_CONTENT_LENGTH' },
  FST_ERR_BAD_URL: { code: 'ERR_BAD_HTTP_REQUEST' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'ERR_BAD_HTTP_REQUEST' },
  FST_ERR_NOT_FOUND: { code: 'ERR_NOT_FOUND' },
  // @fastify/multipart
  FST_PARTS_LIMIT: { code: 'ERR_PAYLOAD_TOO_LARGE', message: 'The multipart body has too many parts' },
  FST_FILES_LIMIT: { code: 'ERR_PAYLOAD_TOO_LARGE', message: 'The multipart body has too many files' },
  FST_FIELDS_LIMIT: { code: 'ERR_PAYLOAD_TOO_LARGE', message: 'The multipart body has too many fields' },
  FST_REQ_FILE_TOO_LARGE: { code: 'ERR_MEDIA_TOO_LARGE', message: 'An uploaded file is larger than its field accepts' },
  FST_PROTO_VIOLATION: { code: 'ERR_INVALID_MULTIPART' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { code: 'ERR_INVALID_MULTIPART', status: 400 },
  FST_INVALID_JSON_FIELD_ERROR: { code: 'ERR_INVALID_MULTIPART', status: 400 },
  FST_MP_PREMATURE_CLOSE: { code: 'ERR_INVALID_MULTIPART' },
  FST_UNDER_PRESSURE: { code: 'ERR_OVERLOADED' },
}

/** The service code for a Fastify error not listed above, by its status. */
const FASTIFY_ERRORS_BY_STATUS: Record<number, ServiceCode> = {
  404: { code: 'ERR_NOT_FOUND' },
  405: { code: 'ERR_METHOD_NOT_ALLOWED' },
  413: { code: 'ERR_PAYLOAD_TOO_LARGE' },
  415: { code: 'ERR_UNSUPPORTED_MEDIA_TYPE' },
  503: { code: 'ERR_OVERLOADED' },
}

function serviceCodeOf(code: string | undefined, status: number): ServiceCode | undefined {
  if (!code?.startsWith('FST_')) return undefined
  if (FASTIFY_ERRORS[code]) return FASTIFY_ERRORS[code]
  if (status >= 500) return { code: 'ERR_INTERNAL', message: 'Internal server error' }
  return FASTIFY_ERRORS_BY_STATUS[status] ?? { code: 'ERR_BAD_HTTP_REQUEST' }
}

export type AnyError = FastifyError & Partial<DetailedError> & { deployment?: unknown }

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[]; 'omitted-details'?: number; 'request-id': string }
}

/** The status and body the caller gets for an error; also used for SSE `error` events. */
export function toErrorResponse(error: AnyError, requestId: string): { status: number; body: ErrorBody } {
  const known = serviceCodeOf(error.code, statusOf(error))
  const status = known?.status ?? statusOf(error)
  let code = known?.code ?? error.code ?? 'ERR_INTERNAL'
  let message = known?.message ?? error.message
  let details = error.details
  let omitted = error.omittedDetails
  if (error.validation) {
    const failure = validationFailure(validationDetails(error.validation, error.validationContext ?? 'body'))
    code = 'ERR_VALIDATION'
    details = failure.details
    message = failure.message
    omitted = failure.omittedDetails
  } else if (error instanceof SyntaxError && status === 400) {
    code = 'ERR_INVALID_JSON'
    message = `The body is not valid JSON: ${error.message}`
  } else if (status >= 500 && !(known?.code ?? error.code)?.startsWith('ERR_')) {
    // Anything not raised on purpose by the service is a bug: say nothing about its insides.
    code = 'ERR_INTERNAL'
    message = 'Internal server error'
  }
  const body: ErrorBody['error'] = { code, message, details: details ?? [], 'request-id': requestId }
  if (omitted) body['omitted-details'] = omitted
  return { status, body: { error: body } }
}

function statusOf(error: AnyError): number {
  const status = error.statusCode
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500
}

export function validationDetails(errors: FastifyError['validation'] & object, context: string): ErrorDetail[] {
  const details: ErrorDetail[] = []
  const seen = new Set<string>()
  for (const e of errors as ErrorObject[]) {
    // An if/then failure is reported by the `then` branch's own errors, with their paths.
    if (e.keyword === 'if') continue
    // `not: {required: [..]}` also fails for any value that is not an object: its type error says it.
    if (e.keyword === 'not' && requiredFields(e) && !isObject(e.data)) continue
    const detail = describe(e)
    const key = `${detail.path}\u0000${detail.message}`
    if (seen.has(key)) continue
    seen.add(key)
    details.push({ ...detail, field: detail.field || `(${context})` })
  }
  return details
}

/** The fields a failed `not: {required: [..]}` names (Ajv gives its schema with `verbose`). */
function requiredFields(e: ErrorObject): string[] | undefined {
  const fields = (e.schema as { required?: unknown } | undefined)?.required
  return Array.isArray(fields) && fields.length ? fields.map(String) : undefined
}

/** The fields of a failed `not: {required: [..]}` when the value holds them all: alternatives. */
function alternativesGiven(e: ErrorObject): string[] | undefined {
  const fields = requiredFields(e)
  return fields && isObject(e.data) && fields.every((field) => Object.hasOwn(e.data as object, field))
    ? fields
    : undefined
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
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
    case 'dependentRequired':
      path += `/${String(params.missingProperty)}`
      message = `is required when ${String(params.property)} is given`
      break
    case 'additionalProperties':
      path += `/${String(params.additionalProperty)}`
      message = 'is not a known field'
      break
    case 'type':
      message = `must be ${[params.type].flat().join(' or ')}`
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
    case 'not': {
      // `not: {required: [a, b]}`: fields that are alternatives, named by the last one.
      const fields = alternativesGiven(e)
      if (fields) {
        path += `/${fields.at(-1)}`
        message = `cannot be combined with ${fields.slice(0, -1).join(', ')}; give one`
      } else if ((e.schema as { type?: unknown } | undefined)?.type === 'null') {
        message = 'must not be null'
      }
      break
    }
  }
  return { field: pointerToField(path), path, message, keyword: e.keyword }
}
