import type { Deployment } from '../generated/config-file-types.ts'
import { ConfigFileError, fieldPath, type ConfigFile } from '../config-file/read-config-file.ts'
import { modelPatternMatches } from './model-patterns.ts'

export type DeploymentType = NonNullable<Deployment['type']>

/** One place calls can go, as the service runs by it: the file's entry with its defaults. */
export interface DeploymentSettings {
  name: string
  type: DeploymentType
  /** Without a trailing slash. */
  baseUrl: string
  apiKey: string | undefined
  organization: string | undefined
  project: string | undefined
  models: string[]
  modelMap: Readonly<Record<string, string>>
  weight: number
  priority: number
  maxConcurrent: number | undefined
  /** Whether a caller's own key may be sent here. */
  callerKeys: boolean
}

/** What the environment says of the single upstream of a setup without a file. */
export interface SingleUpstream {
  baseUrl: string
  apiKey: string | undefined
  organization: string | undefined
  project: string | undefined
}

/** The one deployment the environment describes, with today's rules: any model, callers' keys too. */
export function deploymentFromEnvironment(upstream: SingleUpstream): DeploymentSettings {
  return {
    name: 'default',
    type: 'openai',
    ...upstream,
    models: ['*'],
    modelMap: {},
    weight: 1,
    priority: 1,
    maxConcurrent: undefined,
    callerKeys: true,
  }
}

/**
 * The deployments of a checked file, with the rules no schema says: unique names, a key or
 * callers' keys for each, `model-map` entries for models it serves, and every ALLOWED_MODELS
 * entry served somewhere.
 */
export function deploymentsFromFile(
  file: string,
  entries: NonNullable<ConfigFile['deployments']>,
  allowedModels: string[],
): DeploymentSettings[] {
  const problems: string[] = []
  const seen = new Map<string, number>()
  const deployments = entries.map((entry, i): DeploymentSettings => {
    const at = (...rest: Array<string | number>): string => fieldPath(['deployments', i, ...rest])
    const earlier = seen.get(entry.name)
    if (earlier !== undefined) {
      problems.push(`${at('name')}: ${entry.name} is already the name of deployments[${earlier}]`)
    }
    seen.set(entry.name, i)
    if (!entry['api-key'] && !entry['caller-keys']) {
      problems.push(`${at()}: has no api-key and takes no caller keys (caller-keys: true), so it can serve no call`)
    }
    const models = entry.models ?? ['*']
    for (const model of Object.keys(entry['model-map'] ?? {})) {
      if (!models.some((pattern) => modelPatternMatches(pattern, model))) {
        problems.push(`${at('model-map', model)}: ${model} is not among the models it serves (${models.join(', ')})`)
      }
    }
    return {
      name: entry.name,
      type: entry.type ?? 'openai',
      baseUrl: entry['base-url'].replace(/\/+$/, ''),
      apiKey: entry['api-key'],
      organization: entry.organization,
      project: entry.project,
      models,
      modelMap: (entry['model-map'] ?? {}) as Record<string, string>,
      weight: entry.weight ?? 1,
      priority: entry.priority ?? 1,
      maxConcurrent: entry['max-concurrent'],
      callerKeys: entry['caller-keys'] ?? false,
    }
  })
  for (const allowed of allowedModels) {
    // A prefix of ALLOWED_MODELS is served when some deployment's pattern takes a model it allows.
    const probe = allowed.endsWith('*') ? allowed.slice(0, -1) : allowed
    const served = deployments.some((d) =>
      d.models.some((pattern) => modelPatternMatches(pattern, probe) || modelPatternMatches(allowed, pattern)),
    )
    if (!served) problems.push(`deployments: no deployment serves ${allowed}, which ALLOWED_MODELS allows`)
  }
  if (problems.length) throw new ConfigFileError(file, problems)
  return deployments
}
