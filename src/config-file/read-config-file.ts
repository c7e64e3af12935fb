import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { isMap, isSeq, LineCounter, parse, parseDocument, type Document } from 'yaml'
import type { ConfigFile } from '../generated/config-file-types.ts'

export type { ConfigFile }

const SCHEMA_URL = new URL('../../schemas/config-file.yaml', import.meta.url)

/** A configuration file that cannot be used, with every problem named by its field. */
export class ConfigFileError extends Error {
  readonly file: string
  readonly problems: string[]

  constructor(file: string, problems: string[]) {
    super(`CONFIG_FILE ${file}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join('\n  ')}`}`)
    this.name = 'ConfigFileError'
    this.file = file
    this.problems = problems
  }
}

// Defaults are filled in: the document the service runs by is the file as the schema reads it.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true })
let validate: ValidateFunction<ConfigFile> | undefined

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/**
 * Reads the YAML file, replaces each `${VARIABLE}` from `env`, and checks it against
 * schemas/config-file.yaml; throws ConfigFileError naming the file, and each field by its path
 * and line, when anything is wrong.
 */
export function readConfigFile(file: string, env: NodeJS.ProcessEnv): ConfigFile {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigFileError(file, [`cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`])
  }
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true })
  if (doc.errors.length) {
    throw new ConfigFileError(
      file,
      doc.errors.map((e) => {
        const what = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
        return e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ${what}` : what
      }),
    )
  }
  const where = (path: Array<string | number>): string => locate(doc, lines, path)
  const data: unknown = doc.toJS() ?? {}
  const problems: string[] = []
  const expanded = expandReferences(data, [], env, (path, message) => problems.push(`${where(path)}: ${message}`))
  if (problems.length) throw new ConfigFileError(file, problems)
  const check = (validate ??= ajv.compile<ConfigFile>(parse(readFileSync(SCHEMA_URL, 'utf8')) as object))
  if (!check(expanded)) {
    throw new ConfigFileError(
      file,
      (check.errors ?? []).map((e) => describe(e, where)),
    )
  }
  return expanded
}

/** Each string with its `${VARIABLE}` references replaced; an unset variable is a problem. */
function expandReferences(
  value: unknown,
  path: Array<string | number>,
  env: NodeJS.ProcessEnv,
  problem: (path: Array<string | number>, message: string) => void,
): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (reference, name: string) => {
      const set = env[name]
      if (set === undefined || set === '') problem(path, `${reference} is not set in the environment`)
      return set ?? ''
    })
  }
  if (Array.isArray(value)) return value.map((item, i) => expandReferences(item, [...path, i], env, problem))
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, expandReferences(item, [...path, key], env, problem)]),
    )
  }
  return value
}

function describe(e: ErrorObject, where: (path: Array<string | number>) => string): string {
  const path = pointerSegments(e.instancePath)
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where([...path, String(params.additionalProperty)])}: is not a known field`
    case 'required':
      return `${where(path)}: ${String(params.missingProperty)} is required`
    case 'enum':
      return `${where(path)}: must be one of ${(params.allowedValues as unknown[]).join(', ')}`
    default:
      return `${where(path)}: ${e.message ?? 'is invalid'}`
  }
}

function pointerSegments(pointer: string): Array<string | number> {
  if (!pointer) return []
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

/** `deployments[1].api-key (line 7)`: the field's path, and its line when the file has it. */
function locate(doc: Document, lines: LineCounter, path: Array<string | number>): string {
  const name = fieldPath(path)
  let node: unknown = doc.contents
  for (const segment of path) {
    if (isMap(node)) node = node.get(segment, true)
    else if (isSeq(node) && typeof segment === 'number') node = node.items[segment]
    else {
      node = undefined
      break
    }
  }
  const range = (node as { range?: [number, number, number] } | undefined)?.range
  return range ? `${name} (line ${lines.linePos(range[0]).line})` : name
}

export function fieldPath(path: Array<string | number>): string {
  if (!path.length) return '(the file)'
  return path.reduce<string>(
    (text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : text ? `${text}.${segment}` : segment),
    '',
  )
}
