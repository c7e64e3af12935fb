// OpenAPI 3.0 leftovers in OpenAI's document rewritten as JSON Schema 2020-12, which Ajv compiles.

// Keywords whose values are schemas: only these are walked, so a property named `nullable`
// or `$ref`, and enum or example values, are left alone.
const SUBSCHEMA = new Set([
  'items',
  'additionalItems',
  'additionalProperties',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
  'unevaluatedItems',
  'unevaluatedProperties',
  'contentSchema',
])
const SUBSCHEMA_ARRAY = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems'])
const SUBSCHEMA_MAP = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'])

/**
 * - `nullable: true` beside a `type`: "null" joins `type`, and `null` joins `enum` when there is
 *   one (the enum would reject the null the document means to allow);
 * - `nullable` without a `type` (beside `$ref`/`anyOf`/`oneOf`): dropped, as OpenAI's README says;
 * - `$ref: '#/...'` → `<baseId>#/...`, so the refs resolve against the components registered there.
 */
export function convertSchema(schema: unknown, baseId: string): unknown {
  // draft-4 style tuple `items`
  if (Array.isArray(schema)) return schema.map((s) => convertSchema(s, baseId))
  if (!schema || typeof schema !== 'object') return schema
  const src = schema as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(src)) {
    if (key === 'nullable') continue
    if (key === '$ref' && typeof value === 'string' && value.startsWith('#/')) out[key] = baseId + value
    else if (SUBSCHEMA.has(key)) out[key] = convertSchema(value, baseId)
    else if (SUBSCHEMA_ARRAY.has(key) && Array.isArray(value)) out[key] = value.map((s) => convertSchema(s, baseId))
    else if (SUBSCHEMA_MAP.has(key) && value && typeof value === 'object') {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, convertSchema(s, baseId)]))
    } else out[key] = value
  }
  if (src.nullable === true && 'type' in src) {
    const types = Array.isArray(src.type) ? [...(src.type as string[])] : [src.type as string]
    if (!types.includes('null')) types.push('null')
    out.type = types
    if (Array.isArray(src.enum) && !src.enum.includes(null)) out.enum = [...src.enum, null]
  }
  return out
}

/** Every `$ref` under `node` that starts with `prefix`. */
export function collectRefs(node: unknown, prefix: string, into: Set<string>): void {
  if (Array.isArray(node)) for (const item of node) collectRefs(item, prefix, into)
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && value.startsWith(prefix)) into.add(value)
      else collectRefs(value, prefix, into)
    }
  }
}

/** Every `format` named under `node`. */
export function collectFormats(node: unknown, into: Set<string>): void {
  if (Array.isArray(node)) for (const item of node) collectFormats(item, into)
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'format' && typeof value === 'string') into.add(value)
      else collectFormats(value, into)
    }
  }
}
