// A multipart body as the object the contract's request schema describes, so that Ajv can judge
// an upload the way it judges a JSON body.
import { unescapePointer } from '../../../scripts/json-pointer.ts'
import type { RecordedForm } from './types.ts'
import { loadOpenAIContract, requireOperation } from './contract.ts'

/** The schema a contract `$ref` points at (after any chain of refs). */
function deref(schema: any): any {
  const { prepared } = loadOpenAIContract()
  let s = schema
  for (let depth = 0; s && typeof s === 'object' && typeof s.$ref === 'string' && depth < 32; depth++) {
    const ref: string = s.$ref
    if (!ref.startsWith(`${prepared.$id}#/`)) return s
    let node: any = prepared
    for (const segment of ref.slice(prepared.$id.length + 2).split('/').map(unescapePointer)) node = node?.[segment]
    s = node
  }
  return s
}

/** The schema and its anyOf/oneOf/allOf branches, refs resolved. */
function branches(schema: any, depth = 0): any[] {
  const s = deref(schema)
  if (!s || typeof s !== 'object' || depth > 8) return []
  const out = [s]
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    if (Array.isArray(s[key])) for (const branch of s[key]) out.push(...branches(branch, depth + 1))
  }
  return out
}

function typesOf(schema: any): Set<string> {
  const types = new Set<string>()
  for (const b of branches(schema)) {
    if (typeof b.type === 'string') types.add(b.type)
    else if (Array.isArray(b.type)) for (const t of b.type) types.add(t)
  }
  return types
}

function itemsOf(schema: any): any {
  for (const b of branches(schema)) if (b.items && typeof b.items === 'object') return b.items
  return undefined
}

function propertyOf(schema: any, name: string): any {
  let additional: any
  for (const b of branches(schema)) {
    if (b.properties?.[name]) return b.properties[name]
    if (b.additionalProperties && typeof b.additionalProperties === 'object') additional = b.additionalProperties
  }
  return additional
}

const NUMERIC = /^\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/

/** Text form values → the JSON types the schema asks for (numbers, booleans, arrays, objects). */
function coerceFormValue(schema: any, value: unknown): unknown {
  if (schema === undefined) return value
  if (Array.isArray(value)) {
    const item = itemsOf(schema)
    return value.map((v) => coerceFormValue(item, v))
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, coerceFormValue(propertyOf(schema, k), v)]))
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

function assignFormValue(target: Record<string, any>, segments: string[], value: unknown): void {
  let node: any = target
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    const last = i === segments.length - 1
    const nextIsIndex = !last && (segments[i + 1] === '' || /^\d+$/.test(segments[i + 1]!))
    if (Array.isArray(node)) {
      const index = segment === '' ? node.length : Number(segment)
      if (last) node[index] = value
      else node = node[index] ??= nextIsIndex ? [] : {}
    } else if (last) {
      // the same plain name more than once is an array, as a form server would see it
      if (segment in node) node[segment] = Array.isArray(node[segment]) ? [...node[segment], value] : [node[segment], value]
      else node[segment] = value
    } else node = node[segment] ??= nextIsIndex ? [] : {}
  }
}

/**
 * The object a multipart body stands for, as the contract sees it: file parts become a
 * placeholder string (`format: binary`), `a[]` / `a[b]` names become arrays / objects (the way
 * OpenAI's SDKs encode them), and text is turned into numbers/booleans where the schema says so.
 */
export function formToContractObject(operationPath: string, form: RecordedForm): Record<string, unknown> {
  const op = requireOperation(operationPath)
  const obj: Record<string, any> = {}
  for (const [name, value] of form.entries) {
    const v = typeof value === 'string' ? value : `<binary ${value.data.length} bytes: ${value.filename}>`
    assignFormValue(obj, splitFormKey(name), v)
  }
  const schema = loadOpenAIContract().prepared.operations[op]!.request
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(obj)) out[k] = coerceFormValue(propertyOf(schema, k), v)
  return out
}
