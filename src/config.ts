import envSchema from 'env-schema'

const ENV_SCHEMA = {
  type: 'object',
  additionalProperties: true,
  properties: {
    HOST: { type: 'string', default: '127.0.0.1', minLength: 1 },
    PORT: { type: 'integer', default: 8080, minimum: 0, maximum: 65535 },
    LOG_LEVEL: {
      type: 'string',
      default: 'info',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    },
    OPENAI_API_KEY: { type: 'string', default: '' },
    OPENAI_ORGANIZATION: { type: 'string', default: '' },
    OPENAI_PROJECT: { type: 'string', default: '' },
    OPENAI_BASE_URL: { type: 'string', default: 'https://api.openai.com/v1', pattern: '^https?://' },
    ALLOWED_MODELS: { type: 'string', default: '' },
    UPSTREAM_CONNECTIONS: { type: 'integer', default: 128, minimum: 1, maximum: 65535 },
    UPSTREAM_CONNECT_TIMEOUT_MS: { type: 'integer', default: 10_000, minimum: 1 },
    UPSTREAM_HEADERS_TIMEOUT_MS: { type: 'integer', default: 600_000, minimum: 1 },
    UPSTREAM_BODY_TIMEOUT_MS: { type: 'integer', default: 120_000, minimum: 1 },
    UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: { type: 'integer', default: 30_000, minimum: 1 },
    JSON_BODY_LIMIT_BYTES: { type: 'integer', default: 1_048_576, minimum: 1024 },
    MEDIA_BODY_LIMIT_BYTES: { type: 'integer', default: 36_000_000, minimum: 1024 },
    GRACE_PERIOD_MS: { type: 'integer', default: 10_000, minimum: 0 },
  },
} as const

export interface Config {
  host: string
  port: number
  logLevel: string
  openai: {
    apiKey: string | undefined
    organization: string | undefined
    project: string | undefined
    baseUrl: string
  }
  /** Model IDs the operator allows; an entry ending in `*` allows a prefix. Empty: any model. */
  allowedModels: string[]
  upstream: {
    connections: number
    connectTimeoutMs: number
    headersTimeoutMs: number
    bodyTimeoutMs: number
    keepAliveTimeoutMs: number
  }
  bodyLimits: {
    json: number
    media: number
  }
  gracePeriodMs: number
}

interface RawEnv {
  HOST: string
  PORT: number
  LOG_LEVEL: string
  OPENAI_API_KEY: string
  OPENAI_ORGANIZATION: string
  OPENAI_PROJECT: string
  OPENAI_BASE_URL: string
  ALLOWED_MODELS: string
  UPSTREAM_CONNECTIONS: number
  UPSTREAM_CONNECT_TIMEOUT_MS: number
  UPSTREAM_HEADERS_TIMEOUT_MS: number
  UPSTREAM_BODY_TIMEOUT_MS: number
  UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: number
  JSON_BODY_LIMIT_BYTES: number
  MEDIA_BODY_LIMIT_BYTES: number
  GRACE_PERIOD_MS: number
}

/** Reads and validates the configuration; throws with every bad variable named. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw = envSchema<RawEnv>({ schema: ENV_SCHEMA, data: { ...env }, env: false, dotenv: false })
  return {
    host: raw.HOST,
    port: raw.PORT,
    logLevel: raw.LOG_LEVEL,
    openai: {
      apiKey: raw.OPENAI_API_KEY || undefined,
      organization: raw.OPENAI_ORGANIZATION || undefined,
      project: raw.OPENAI_PROJECT || undefined,
      baseUrl: parseBaseUrl(raw.OPENAI_BASE_URL),
    },
    allowedModels: raw.ALLOWED_MODELS.split(',').map((m) => m.trim()).filter(Boolean),
    upstream: {
      connections: raw.UPSTREAM_CONNECTIONS,
      connectTimeoutMs: raw.UPSTREAM_CONNECT_TIMEOUT_MS,
      headersTimeoutMs: raw.UPSTREAM_HEADERS_TIMEOUT_MS,
      bodyTimeoutMs: raw.UPSTREAM_BODY_TIMEOUT_MS,
      keepAliveTimeoutMs: raw.UPSTREAM_KEEP_ALIVE_TIMEOUT_MS,
    },
    bodyLimits: {
      json: raw.JSON_BODY_LIMIT_BYTES,
      media: raw.MEDIA_BODY_LIMIT_BYTES,
    },
    gracePeriodMs: raw.GRACE_PERIOD_MS,
  }
}

function parseBaseUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new Error(`OPENAI_BASE_URL is not a valid URL: ${JSON.stringify(value)}`)
  }
  if (url.search || url.hash) throw new Error('OPENAI_BASE_URL must not carry a query or fragment')
  return url.href.replace(/\/+$/, '')
}
