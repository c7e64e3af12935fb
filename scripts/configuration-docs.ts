import { ENV_SCHEMA } from '../src/config.ts'
import { generatedBanner, markdownTable } from './markdown.ts'

export const CONFIGURATION_DOCS_PATH = 'docs/configuration.md'

interface Variable {
  type: string
  description: string
  default?: string | number | boolean
  minimum?: number
  maximum?: number
  minLength?: number
  enum?: readonly string[]
  pattern?: string
}

/** docs/configuration.md: every environment variable of ENV_SCHEMA, its default, values and meaning. */
export function renderConfigurationDocs(): string {
  const variables = Object.entries(ENV_SCHEMA.properties as Record<string, Variable>)
  const rows = variables.map(([name, v]) => [`\`${name}\``, defaultOf(v), valuesOf(v), v.description])
  return `${generatedBanner('`ENV_SCHEMA` in src/config.ts')}

# Configuration

Everything is set with environment variables, read and checked once at start-up: a value of the
wrong type or out of range stops the process with a message naming the variable, before it
listens. Times are in milliseconds, sizes in bytes. Set the variables in the shell, the container
or the Kubernetes manifest (\`deploy/kubernetes/\`); there is no \`.env\` loading. Several
upstreams (keys, Azure OpenAI, compatible servers) are described in the YAML file that
\`CONFIG_FILE\` names, checked as strictly ([config-file.md](config-file.md)).

${markdownTable(['variable', 'default', 'values', 'meaning'], rows)}
`
}

function defaultOf(v: Variable): string {
  if (v.default === undefined) return 'unset'
  if (v.default === '') return 'empty'
  return `\`${v.default}\``
}

function valuesOf(v: Variable): string {
  if (v.enum) return v.enum.map((e) => `\`${e}\``).join(', ')
  if (v.type === 'boolean') return '`true`, `false`'
  if (v.type === 'integer') {
    if (v.maximum !== undefined) return `integer, ${v.minimum ?? 0} to ${v.maximum}`
    return v.minimum === undefined ? 'integer' : `integer ≥ ${v.minimum}`
  }
  if (v.pattern) return `text matching \`${v.pattern}\``
  return v.minLength ? 'text, not empty' : 'text'
}
