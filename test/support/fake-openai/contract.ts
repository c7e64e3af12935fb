// OpenAI's contract for the operations the service calls (test/contract/, cut from OpenAI's
// document by `npm run generate`), compiled with Ajv's 2020-12 build once per process.
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { ErrorObject, ValidateFunction } from 'ajv'
import type { OpenAIContract } from '../../../scripts/openai-contract.ts'
import { unescapePointer } from '../../../scripts/json-pointer.ts'

const CONTRACT_FILE = new URL('../../contract/openai-contract.json', import.meta.url)

export interface ContractStats {
  /** The document the contract was cut from, e.g. 'OpenAI API 2.3.0'. */
  source: string
  /** Reading and parsing the committed JSON, ms. */
  loadMs: number
  /** Ajv setup and compiling the request validators, ms. */
  compileMs: number
  componentsKept: number
}

interface LoadedContract {
  prepared: OpenAIContract
  ajv: Ajv2020
  requestValidators: Map<string, ValidateFunction>
  responseValidators: Map<string, ValidateFunction>
  stats: ContractStats
}

let document: OpenAIContract | undefined
let loaded: LoadedContract | undefined

/** The committed JSON, parsed (a stand-in that does not validate still needs the operation names). */
function contractDocument(): OpenAIContract {
  return (document ??= JSON.parse(readFileSync(CONTRACT_FILE, 'utf8')) as OpenAIContract)
}

/** Load and compile the contract (once per process; later calls return the same). */
export function loadOpenAIContract(): LoadedContract {
  if (loaded) return loaded
  const t0 = performance.now()
  const prepared = contractDocument()
  const t1 = performance.now()
  const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false })
  addFormatsModule.default(ajv)
  // Formats the document uses that ajv-formats lacks (e.g. 'unixtime') are annotations only.
  for (const format of prepared.formats) if (!ajv.formats[format]) ajv.addFormat(format, true)
  ajv.addSchema({ $id: prepared.$id, components: prepared.components })
  const requestValidators = new Map<string, ValidateFunction>()
  for (const [op, o] of Object.entries(prepared.operations)) requestValidators.set(op, ajv.compile(o.request))
  const t2 = performance.now()
  let componentsKept = 0
  for (const section of Object.values(prepared.components)) componentsKept += Object.keys(section).length
  loaded = {
    prepared,
    ajv,
    requestValidators,
    responseValidators: new Map(),
    stats: {
      source: `${prepared.source.title} ${prepared.source.version}`,
      loadMs: t1 - t0,
      compileMs: t2 - t1,
      componentsKept,
    },
  }
  return loaded
}

export function contractStats(): ContractStats {
  return loadOpenAIContract().stats
}

/** The contract operation a request path stands for ('/v1/embeddings/' → '/embeddings'), if any. */
export function operationOf(path: string): string | undefined {
  let p = path.split('?')[0]!
  if (!p.startsWith('/')) p = '/' + p
  if (p.startsWith('/v1/')) p = p.slice(3)
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1)
  return Object.hasOwn(contractDocument().operations, p) ? p : undefined
}

export function requireOperation(path: string): string {
  const op = operationOf(path)
  if (op) return op
  const known = Object.keys(contractDocument().operations).join(', ')
  throw new Error(`fake-openai: not a contract operation: ${path} (known: ${known})`)
}

/**
 * Validate a request body against the contract's request schema of `operationPath`
 * ('/v1/chat/completions' or '/chat/completions'). Returns null when valid, else Ajv's errors.
 * For '/audio/transcriptions' pass the object form of the multipart body (see formToContractObject).
 */
export function validateAgainstOpenAIContract(operationPath: string, body: unknown): unknown[] | null {
  const validate = loadOpenAIContract().requestValidators.get(requireOperation(operationPath))!
  return validate(body) ? null : [...(validate.errors ?? [])]
}

/** Validate a 200 answer body against the contract's response schema (used to check the stand-in itself). */
export function validateOpenAIResponse(
  operationPath: string,
  body: unknown,
  mediaType = 'application/json',
): unknown[] | null {
  const op = requireOperation(operationPath)
  const contract = loadOpenAIContract()
  const key = `${op} ${mediaType}`
  let validate = contract.responseValidators.get(key)
  if (!validate) {
    const schema = contract.prepared.operations[op]!.responses[mediaType]
    if (!schema) throw new Error(`fake-openai: contract has no ${mediaType} 200 response for ${op}`)
    validate = contract.ajv.compile(schema)
    contract.responseValidators.set(key, validate)
  }
  return validate(body) ? null : [...(validate.errors ?? [])]
}

/** Validate data against a component schema of the contract, e.g. 'ErrorResponse'. */
export function validateOpenAIComponent(schemaName: string, data: unknown): unknown[] | null {
  const contract = loadOpenAIContract()
  if (!contract.prepared.components.schemas?.[schemaName]) {
    throw new Error(`fake-openai: component ${schemaName} not kept (only those the five operations use)`)
  }
  const validate = contract.ajv.getSchema(`${contract.prepared.$id}#/components/schemas/${schemaName}`)!
  return validate(data) ? null : [...(validate.errors ?? [])]
}

/** OpenAI-like wording for the first contract error. */
export function describeContractErrors(errors: unknown[]): string {
  const errs = errors as ErrorObject[]
  const param = (e: ErrorObject, extra?: string): string => {
    const segs = e.instancePath.split('/').slice(1).map(unescapePointer)
    if (extra) segs.push(extra)
    return segs.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '')
  }
  const required = errs.find((e) => e.keyword === 'required')
  if (required) return `Missing required parameter: '${param(required, String(required.params.missingProperty))}'.`
  const extra = errs.find((e) => e.keyword === 'additionalProperties')
  if (extra) return `Unrecognized request argument supplied: ${param(extra, String(extra.params.additionalProperty))}`
  const specific = errs.filter((e) => !['anyOf', 'oneOf', 'allOf', 'if'].includes(e.keyword))
  const pick = (specific.length ? specific : errs).reduce((a, b) =>
    b.instancePath.length > a.instancePath.length ? b : a,
  )
  if (!pick) return 'Invalid request body.'
  const p = param(pick)
  return p ? `Invalid value for '${p}': ${pick.message ?? 'invalid'}.` : `Invalid request body: ${pick.message}.`
}
