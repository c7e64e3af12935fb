// A small value satisfying a (user-supplied) JSON schema: tool arguments, json_schema answers.
import { unescapePointer } from '../../../scripts/json-pointer.ts'

type Schema = Record<string, unknown>

const isSchema = (value: unknown): value is Schema => typeof value === 'object' && value !== null

/** The node a local `$ref` ('#/$defs/Point') points at in `root`. */
function resolveRef(ref: string, root: unknown): unknown {
  let node = root
  for (const segment of ref.slice(2).split('/').map(unescapePointer)) node = isSchema(node) ? node[segment] : undefined
  return node
}

function sampleOfType(type: unknown, schema: Schema, root: unknown, depth: number): unknown {
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      const properties = isSchema(schema.properties) ? schema.properties : {}
      for (const [k, v] of Object.entries(properties)) out[k] = sampleFromSchema(v, root, depth + 1)
      return out
    }
    case 'array': {
      const n = Math.max(1, Number(schema.minItems ?? 1))
      return Array.from({ length: n }, () => sampleFromSchema(schema.items, root, depth + 1))
    }
    case 'string':
      return schema.format === 'date'
        ? '2024-01-01'
        : schema.format === 'date-time'
          ? '2024-01-01T00:00:00Z'
          : 'example'
    case 'integer':
      return typeof schema.minimum === 'number' ? Math.ceil(schema.minimum) : 1
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1.5
    case 'boolean':
      return true
    case 'null':
      return null
    default:
      return {}
  }
}

/** `const`, the first of `enum`, `default`, the first non-null branch, or a value of the schema's type. */
export function sampleFromSchema(schema: unknown, root: unknown = schema, depth = 0): unknown {
  if (!isSchema(schema) || depth > 8) return null
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')) {
    return sampleFromSchema(resolveRef(schema.$ref, root), root, depth + 1)
  }
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0] as unknown
  if (schema.default !== undefined) return schema.default
  for (const branches of [schema.anyOf, schema.oneOf]) {
    if (Array.isArray(branches) && branches.length) {
      const nonNull = branches.find((b: unknown) => !(isSchema(b) && b.type === 'null')) as unknown
      return sampleFromSchema(nonNull ?? branches[0], root, depth + 1)
    }
  }
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...schema.allOf.map((b: unknown) => sampleFromSchema(b, root, depth + 1)))
  }
  const type = Array.isArray(schema.type) ? (schema.type.find((t: unknown) => t !== 'null') as unknown) : schema.type
  return sampleOfType(type ?? (schema.properties ? 'object' : undefined), schema, root, depth)
}
