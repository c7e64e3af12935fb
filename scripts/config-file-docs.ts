import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { CONFIG_FILE_SCHEMA_PATH } from './config-file-types.ts'
import { generatedBanner, markdownTable } from './markdown.ts'

export const CONFIG_FILE_DOCS_PATH = 'docs/config-file.md'

interface Field {
  type?: string
  enum?: string[]
  default?: unknown
  description?: string
  pattern?: string
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  items?: Field
  additionalProperties?: Field | boolean
  properties?: Record<string, Field>
  required?: string[]
}

/** docs/config-file.md: each section of the configuration file and the fields of its entries. */
export async function renderConfigFileDocs(): Promise<string> {
  const schema = parse(await readFile(CONFIG_FILE_SCHEMA_PATH, 'utf8')) as Field
  const sections = Object.entries(schema.properties ?? {}).map(([name, section]) => {
    const entry = section.items ?? section
    const required = new Set(entry.required ?? [])
    const rows = Object.entries(entry.properties ?? {}).map(([field, f]) => [
      `\`${field}\`${required.has(field) ? ' (required)' : ''}`,
      valuesOf(f),
      f.default === undefined ? '' : `\`${JSON.stringify(f.default)}\``,
      (f.description ?? '').replace(/\s+/g, ' ').trim(),
    ])
    return `## \`${name}\`

${(section.description ?? '').replace(/\s+/g, ' ').trim()}

${markdownTable(['field', 'values', 'default', 'meaning'], rows)}
`
  })
  return `${generatedBanner(CONFIG_FILE_SCHEMA_PATH)}

# The configuration file

\`CONFIG_FILE\` names a YAML file, read at start-up and again on \`SIGHUP\`. It is checked against
[${CONFIG_FILE_SCHEMA_PATH}](../${CONFIG_FILE_SCHEMA_PATH}): an unknown field, a value out of range, a
\`\${VARIABLE}\` that is not set or a duplicate name stops the start with the file, the field's path
and line, and what is wrong. Any string may hold \`\${VARIABLE}\` references, replaced from the
environment: write secrets that way, never inline. [Deployments](deployments.md) shows whole files.

${sections.join('\n')}`
}

function valuesOf(f: Field): string {
  if (f.enum) return f.enum.map((e) => `\`${e}\``).join(', ')
  if (f.type === 'array') return `list of ${valuesOf(f.items ?? {})}`
  if (f.type === 'object') {
    const values = typeof f.additionalProperties === 'object' ? valuesOf(f.additionalProperties) : 'values'
    return `map of ${values}`
  }
  if (f.type === 'integer' || f.type === 'number') {
    const low = f.minimum ?? (f.exclusiveMinimum === undefined ? undefined : `> ${f.exclusiveMinimum}`)
    const kind = f.type === 'integer' ? 'integer' : 'number'
    if (low !== undefined && f.maximum !== undefined) {
      return typeof low === 'number' ? `${kind}, ${low} to ${f.maximum}` : `${kind} ${low}, ≤ ${f.maximum}`
    }
    return kind
  }
  if (f.pattern) return `text matching \`${f.pattern}\``
  return f.type ?? 'any'
}
