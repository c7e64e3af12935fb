// A multipart body as the object the contract's request schema describes, so that Ajv can judge
// an upload the way it judges a JSON body.
import { unescapePointer } from '../../../scripts/json-pointer.ts'
import type { RecordedForm } from './types.ts'
import { loadOpenAIContract, requireOperation } from './contract.ts'

type Schema = Record<string, unknown>

const isSchema = (value: unknown): value is Schema => typeof value === 'object' && value !== null

/** The schema a contract `$ref` points at (after any chain of refs). */
function deref(schema: unknown): unknown {
  const { prepared } = loadOpenAIContract()
  let s = schema
  for (let depth = 0; isSchema(s) && typeof s.$ref === 'string' && depth < 32; depth++) {
    const ref = s.$ref
    if (!ref.startsWith(`${prepared.$id}#/`)) return s
    let node: unknown = prepared
    const path = ref
      .slice(prepared.$id.length + 2)
      .split('/')
      .map(unescapePointer)
    for (const segment of path) node = isSchema(node) ? node[segment] : undefined
    s = node
  }
  return s
}

/** The schema and its anyOf/oneOf/allOf branches, refs resolved. */
function branches(schema: unknown, depth = 0): Schema[] {
  const s = deref(schema)
  if (!isSchema(s) || depth > 8) return []
  const out = [s]
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const list = s[key]
    if (Array.isArray(list)) for (const branch of list as unknown[]) out.push(...branches(branch, depth + 1))
  }
  return out
}

function typesOf(schema: unknown): Set<string> {
  const types = new Set<string>()
  for (const b of branches(schema)) {
    if (typeof b.type === 'string') types.add(b.type)
    else if (Array.isArray(b.type)) for (const t of b.type as string[]) types.add(t)
  }
  return types
}

function itemsOf(schema: unknown): unknown {
  for (const b of branches(schema)) if (b.items && typeof b.items === 'object') return b.items
  return undefined
}

function propertyOf(schema: unknown, name: string): unknown {
  let additional: unknown
  for (const b of branches(schema)) {
    if (isSchema(b.properties) && b.properties[name]) return b.properties[name]
    if (b.additionalProperties && typeof b.additionalProperties === 'object') additional = b.additionalProperties
  }
  return additional
}

const NUMERIC = /^\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/

/** Text form values → the JSON types the schema asks for (numbers, booleans, arrays, objects). */
function coerceFormValue(schema: unknown, value: unknown): unknown {
  if (schema === undefined) return value
  if (Array.isArray(value)) {
    const item = itemsOf(schema)
    return value.map((v: unknown) => coerceFormValue(item, v))
  }
  if (value && typeof value === 'object') {
    const entries: Array<[string, unknown]> = Object.entries(value)
    return Object.fromEntries(entries.map(([k, v]) => [k, coerceFormValue(propertyOf(schema, k), v)]))
  }
  if (typeof value !== 'string') return value
  const types = typesOf(schema)
  if (types.size === 0 || types.has('string')) return value
  if ((types.has('number') || types.has('integer')) && NUMERIC.test(value)) return Number(value)
  if (types.has('boolean') && (value === 'true' || value === 'false')) return value === 'true'
  if (types.has('null') && value === 'null') return null
  // a lone `include=x` for an array field
  if (types.has('array')) return [coerceFormValue(itemsOf(schema), value)]
  return value
}

/** Split 'a[b][]' into ['a', 'b', '']. */
function splitFormKey(key: string): string[] {
  const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key)
  if (!match) return [key]
  const segments = [match[1]!]
  for (const bracket of match[2]!.matchAll(/\[([^[\]]*)\]/g)) segments.push(bracket[1]!)
  return segments
}

/** An array or object a form name builds, e.g. `a[0][b]`. */
type Container = unknown[] | Record<string, unknown>

function assignFormValue(target: Record<string, unknown>, segments: string[], value: unknown): void {
  let node: Container = target
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    const last = i === segments.length - 1
    const nextIsIndex = !last && (segments[i + 1] === '' || /^\d+$/.test(segments[i + 1]!))
    if (Array.isArray(node)) {
      const index = segment === '' ? node.length : Number(segment)
      if (last) node[index] = value
      else node = (node[index] ??= nextIsIndex ? [] : {}) as Container
    } else if (last) {
      // the same plain name more than once is an array, as a form server would see it
      const existing = node[segment]
      if (!(segment in node)) node[segment] = value
      else node[segment] = Array.isArray(existing) ? [...(existing as unknown[]), value] : [existing, value]
    } else node = (node[segment] ??= nextIsIndex ? [] : {}) as Container
  }
}

/**
 * The object a multipart body stands for, as the contract sees it: file parts become a
 * placeholder string (`format: binary`), `a[]` / `a[b]` names become arrays / objects (the way
 * OpenAI's SDKs encode them), and text is turned into numbers/booleans where the schema says so.
 */
export function formToContractObject(operationPath: string, form: RecordedForm): Record<string, unknown> {
  const op = requireOperation(operationPath)
  const obj: Record<string, unknown> = {}
  for (const [name, value] of form.entries) {
    const v = typeof value === 'string' ? value : `<binary ${value.data.length} bytes: ${value.filename}>`
    assignFormValue(obj, splitFormKey(name), v)
  }
  const schema = loadOpenAIContract().prepared.operations[op]!.request
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(obj)) out[k] = coerceFormValue(propertyOf(schema, k), v)
  return out
}
