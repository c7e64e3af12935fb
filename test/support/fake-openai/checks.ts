// The checks of a POST to an operation: a bearer key (the contract's security), the body against the contract.
import { formToContractObject } from './contract-form.ts'
import { describeContractErrors, loadOpenAIContract, validateAgainstOpenAIContract } from './contract.ts'
import { errorReply, NO_KEY_ERROR } from './errors.ts'
import type { Reply } from './reply.ts'
import type { RecordedRequest } from './types.ts'

/** A breach of the contract: the errors recorded as a violation, and OpenAI's answer to it. */
export interface Breach {
  errors: unknown[]
  reply: Reply
}

function invalidKey(message: string): Reply {
  return errorReply(401, message, 'invalid_request_error', 'invalid_api_key')
}

/** A missing or malformed `Authorization: Bearer` header, or a key other than `apiKey` when one is set. */
export function authBreach(rec: RecordedRequest, apiKey: string | undefined): Breach | undefined {
  const auth = rec.headers.authorization
  const m = typeof auth === 'string' ? /^Bearer\s+(\S.*)$/i.exec(auth) : null
  if (!m) {
    const message = auth
      ? `malformed Authorization header: ${auth.slice(0, 20)}`
      : 'missing Authorization: Bearer header'
    return {
      errors: [{ keyword: 'security', message }],
      reply: invalidKey(auth ? `Incorrect API key provided: ${auth.slice(0, 12)}***.` : NO_KEY_ERROR),
    }
  }
  const key = m[1]!
  if (apiKey === undefined || key === apiKey) return undefined
  return {
    errors: [{ keyword: 'security', message: 'API key does not match the one the stand-in was started with' }],
    reply: invalidKey(`Incorrect API key provided: ${key.slice(0, 3)}***${key.slice(-4)}.`),
  }
}

/**
 * A body that did not parse, is not of the operation's media type, or breaks its request schema.
 * `model` stands in for a `model` the body leaves out (an Azure path naming its deployment says it).
 */
export function bodyBreach(
  rec: RecordedRequest,
  op: string,
  bodyProblem: string | undefined,
  model?: string,
): Breach | undefined {
  if (bodyProblem) return { errors: [{ keyword: 'body', message: bodyProblem }], reply: errorReply(400, bodyProblem) }
  const wantType = loadOpenAIContract().prepared.operations[op]!.requestMediaType
  let candidate: unknown
  if (wantType === 'application/json' && rec.json !== undefined) candidate = rec.json
  else if (wantType === 'multipart/form-data' && rec.form) candidate = formToContractObject(op, rec.form)
  else {
    const contentType = String(rec.headers['content-type'] ?? '')
    const message = `Expected a ${wantType} body for POST ${op}, got content-type '${contentType || '(none)'}'.`
    return { errors: [{ keyword: 'content-type', message }], reply: errorReply(400, message) }
  }
  if (model !== undefined && typeof candidate === 'object' && candidate !== null && !('model' in candidate)) {
    candidate = { model, ...candidate }
  }
  const errors = validateAgainstOpenAIContract(op, candidate)
  return errors ? { errors, reply: errorReply(400, describeContractErrors(errors)) } : undefined
}
