import type { OpenAPIV3_1 as OpenApi } from 'openapi-types'
import type { Config } from '../config.ts'

/** One way to authenticate: the names of the schemes it sends together; `{}` is "none". */
export type SecurityRequirement = Record<string, string[]>

/** Who may call what, as the service enforces it with this configuration. */
export interface DocumentedSecurity {
  /** The schemes the requirements below name, for `components.securitySchemes`. */
  schemes: Record<string, OpenApi.SecuritySchemeObject>
  /** The task and batch routes. */
  tasks: SecurityRequirement[]
  /** The catalogue, GET /v1/tasks: behind the service tokens, when they are on. */
  catalogue: SecurityRequirement[]
  /** GET /metrics, with METRICS_TOKEN. */
  metrics: SecurityRequirement[]
}

const SCHEMES = {
  serviceToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'A service token of the server (SERVICE_TOKENS), as `Authorization: Bearer <token>`.',
  },
  openaiKey: {
    type: 'http',
    scheme: 'bearer',
    description: 'Your own OpenAI API key, as `Authorization: Bearer <key>` (the server holds none).',
  },
  openaiApiKey: {
    type: 'apiKey',
    in: 'header',
    name: 'X-OpenAI-Api-Key',
    description: 'Your own OpenAI API key in a header of its own.',
  },
  metricsToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'The scrape token of the server (METRICS_TOKEN), as `Authorization: Bearer <token>`.',
  },
} as const

type SchemeName = keyof typeof SCHEMES

/**
 * The security requirements of each kind of route, from the rules of src/credentials.ts: with
 * service tokens, the token (and the caller's own key beside it where ALLOW_CALLER_API_KEYS);
 * without, the caller's own key when the server holds none, and nothing when it does (a caller's
 * key is then not used). `[]` says a route is open.
 */
export function documentedSecurity(
  config: Pick<Config, 'auth' | 'metricsToken'>,
  serverKeys: boolean,
): DocumentedSecurity {
  const { callers, allowCallerApiKeys } = config.auth
  const tokensOn = callers.length > 0
  let tasks: Array<Partial<Record<SchemeName, string[]>>>
  if (tokensOn) {
    tasks = allowCallerApiKeys ? [{ serviceToken: [] }, { serviceToken: [], openaiApiKey: [] }] : [{ serviceToken: [] }]
  } else {
    tasks = serverKeys ? [] : [{ openaiKey: [] }, { openaiApiKey: [] }]
  }
  const catalogue = tokensOn ? [{ serviceToken: [] }] : []
  const metrics = config.metricsToken ? [{ metricsToken: [] }] : []
  const used = new Set([...tasks, ...catalogue, ...metrics].flatMap((requirement) => Object.keys(requirement)))
  const schemes: Record<string, OpenApi.SecuritySchemeObject> = Object.fromEntries(
    Object.entries(SCHEMES).filter(([name]) => used.has(name)),
  )
  return { schemes, tasks: tasks as SecurityRequirement[], catalogue, metrics }
}
