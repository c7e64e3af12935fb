import { readFileSync } from 'node:fs'
import envSchema from 'env-schema'
import { ConfigFileError, readConfigFile } from './config-file/read-config-file.ts'
import { tokenDigest } from './bearer-token.ts'
import type { Price } from './generated/config-file-types.ts'
import { callersFrom, type CallerSettings } from './spend/callers.ts'
import {
  deploymentFromEnvironment,
  deploymentsFromFile,
  type DeploymentSettings,
} from './routing/deployment-settings.ts'

/** Every environment variable the service reads, with its type and default. */
export const ENV_SCHEMA = {
  type: 'object',
  additionalProperties: true,
  properties: {
    HOST: {
      type: 'string',
      default: '127.0.0.1',
      minLength: 1,
      description:
        'Address to listen on (`0.0.0.0` in the Docker image). Any but a loopback address, with ' +
        '`OPENAI_API_KEY` set, needs `SERVICE_TOKENS` or `ALLOW_UNAUTHENTICATED`.',
    },
    PORT: { type: 'integer', default: 8080, minimum: 0, maximum: 65535, description: 'Port to listen on.' },
    LISTEN_BACKLOG: {
      type: 'integer',
      default: 4096,
      minimum: 1,
      description:
        'Connections the kernel holds for the service before it accepts them (capped by `net.core.somaxconn`). ' +
        "A burst past it waits for the client's SYN retries, one second and more each.",
    },
    PUBLIC_URL: {
      type: 'string',
      default: '',
      pattern: '^(https?://[^?#]+)?$',
      description:
        'Where callers reach the service (such as `https://tasks.example.com` behind an ingress): the ' +
        '`servers` entry of `/openapi.json`. Empty: the origin each request for the document came to.',
    },
    LOG_LEVEL: {
      type: 'string',
      default: 'info',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      description: 'Lowest level of the JSON log lines written to stdout.',
    },
    OPENAI_API_KEY: {
      type: 'string',
      default: '',
      description: "The server's OpenAI key. Empty: each caller sends its own.",
    },
    OPENAI_ORGANIZATION: {
      type: 'string',
      default: '',
      description: "`OpenAI-Organization` sent with the server's key, and with a caller's key that comes without one.",
    },
    OPENAI_PROJECT: {
      type: 'string',
      default: '',
      description: "`OpenAI-Project` sent with the server's key, and with a caller's key that comes without one.",
    },
    OPENAI_BASE_URL: {
      type: 'string',
      default: 'https://api.openai.com/v1',
      pattern: '^https?://',
      description: 'OpenAI, or any OpenAI-compatible server (a gateway, a local model server); no query or fragment.',
    },
    CONFIG_FILE: {
      type: 'string',
      default: '',
      description:
        'A YAML file of deployments (docs/deployments.md, checked against schemas/config-file.yaml at ' +
        'start-up). Empty, or a file without `deployments`: the `OPENAI_*` variables describe the one upstream.',
    },
    ALLOWED_MODELS: {
      type: 'string',
      default: '',
      description:
        'Comma-separated model IDs callers may use; an entry ending in `*` allows a prefix (`gpt-4o*`). ' +
        'Other models get 403 `ERR_MODEL_NOT_ALLOWED`. Empty: any model.',
    },
    UPSTREAM_CONNECTIONS: {
      type: 'integer',
      default: 0,
      minimum: 0,
      maximum: 65535,
      description:
        'HTTP/1.1 connections to the upstream at most; 0: one per concurrent call. An HTTPS upstream ' +
        'that offers HTTP/2 (OpenAI does) carries many calls per connection.',
    },
    UPSTREAM_CONNECT_TIMEOUT_MS: {
      type: 'integer',
      default: 10_000,
      minimum: 1,
      description: 'Time to open a TCP/TLS connection to the upstream.',
    },
    UPSTREAM_HEADERS_TIMEOUT_MS: {
      type: 'integer',
      default: 600_000,
      minimum: 1,
      description: 'Time for the upstream to start answering; long, for slow reasoning models. Then 504.',
    },
    UPSTREAM_BODY_TIMEOUT_MS: {
      type: 'integer',
      default: 120_000,
      minimum: 1,
      description: "Longest silence between two chunks of the upstream's answer; a stream still flowing is never cut.",
    },
    UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: {
      type: 'integer',
      default: 30_000,
      minimum: 1,
      description: 'How long an idle upstream connection is kept open.',
    },
    JSON_BODY_LIMIT_BYTES: {
      type: 'integer',
      default: 1_048_576,
      minimum: 1024,
      description: 'Body limit of the tasks marked `body-limit: json` in schemas/tasks.yaml (no media inputs).',
    },
    MEDIA_BODY_LIMIT_BYTES: {
      type: 'integer',
      default: 36_000_000,
      minimum: 1024,
      description:
        'Body limit of the tasks marked `body-limit: media` (images for text generation, audio for ' +
        'speech recognition: 25 MB as base64).',
    },
    GRACE_PERIOD_MS: {
      type: 'integer',
      default: 10_000,
      minimum: 0,
      description:
        'On SIGTERM/SIGINT, after `SHUTDOWN_DELAY_MS`, time in-flight requests and streams get to finish; then exit 1.',
    },
    SHUTDOWN_DELAY_MS: {
      type: 'integer',
      default: 0,
      minimum: 0,
      description:
        'On SIGTERM/SIGINT, time `/readyz` answers 503 while requests are still served, before the listener closes.',
    },
    REQUEST_TIMEOUT_MS: {
      type: 'integer',
      default: 60_000,
      minimum: 1,
      description: 'Time a client has to send its whole request; then 408.',
    },
    HEADERS_TIMEOUT_MS: {
      type: 'integer',
      default: 20_000,
      minimum: 1,
      description: 'Time a client has to send its request headers (at most `REQUEST_TIMEOUT_MS`); then 408.',
    },
    SERVICE_TOKENS: {
      type: 'string',
      default: '',
      description:
        'Bearer tokens callers must send to /v1/tasks, separated by commas or white space. Set: client ' +
        'authentication is on.',
    },
    SERVICE_TOKENS_FILE: {
      type: 'string',
      default: '',
      description: 'A file with more service tokens, one per line (a mounted Secret).',
    },
    ALLOW_UNAUTHENTICATED: {
      type: 'boolean',
      default: false,
      description:
        'Start with a server key on a non-loopback `HOST` without service tokens, for when something ' +
        'in front already authenticates callers.',
    },
    ALLOW_CALLER_API_KEYS: {
      type: 'boolean',
      default: false,
      description: 'With service tokens on, let a caller spend its own OpenAI key, sent as `X-OpenAI-Api-Key`.',
    },
    RATE_LIMIT_MAX: {
      type: 'integer',
      default: 0,
      minimum: 0,
      description:
        'Requests per window per client (its service token, else its IP); 0: no limit. Behind a load ' +
        'balancer every caller has the same IP: set it with service tokens.',
    },
    RATE_LIMIT_WINDOW_MS: {
      type: 'integer',
      default: 60_000,
      minimum: 1,
      description: 'The rate-limit window.',
    },
    REDIS_URL: {
      type: 'string',
      default: '',
      pattern: '^(rediss?://.*)?$',
      description:
        '`redis://host:6379`: rate-limit counts and the cache shared by every replica. Empty: both per ' +
        'process. While Redis is down requests pass uncounted and the cache misses.',
    },
    REDIS_COMMAND_TIMEOUT_MS: {
      type: 'integer',
      default: 100,
      minimum: 1,
      description:
        'A Redis command not answered in this time gives up: its request passes uncounted, its cache ' +
        'lookup misses, its store is dropped.',
    },
    CACHE: {
      type: 'string',
      default: 'on',
      enum: ['on', 'memory', 'off'],
      description:
        'The cache of text embeddings (docs/cache.md): `on`, in Redis when `REDIS_URL` is set, else in ' +
        'memory; `memory`, in memory even with `REDIS_URL`; `off`, nothing cached.',
    },
    CACHE_TTL_MS: {
      type: 'integer',
      default: 86_400_000,
      minimum: 1,
      description:
        "How long a cached answer is kept; a request's `Cache-Control: max-age` shortens it for what it stores.",
    },
    CACHE_MAX_BYTES: {
      type: 'integer',
      minimum: 1,
      description:
        'Bytes the in-memory cache holds at most, the least recently used going first. Unset: ⅛ of the ' +
        'memory `MAX_CONCURRENT_UPSTREAM` is derived from, within 16 MiB and 1 GiB (`src/cache/cache-size.ts`).',
    },
    CACHE_MAX_ENTRY_BYTES: {
      type: 'integer',
      default: 1_048_576,
      minimum: 1,
      description: 'A single answer larger than this is never cached, in memory or in Redis.',
    },
    UPSTREAM_MAX_RETRIES: {
      type: 'integer',
      default: 2,
      minimum: 0,
      maximum: 10,
      description:
        'Retries of an OpenAI call that got 429, 5xx or a connection failure, while nothing has been sent to the caller.',
    },
    UPSTREAM_RETRY_BASE_DELAY_MS: {
      type: 'integer',
      default: 500,
      minimum: 0,
      description: 'First backoff before a retry; it doubles with each retry, with jitter.',
    },
    UPSTREAM_RETRY_MAX_DELAY_MS: {
      type: 'integer',
      default: 20_000,
      minimum: 0,
      description: 'Longest wait before a retry; an OpenAI `Retry-After` longer than this goes to the caller instead.',
    },
    MAX_CONCURRENT_UPSTREAM: {
      type: 'integer',
      minimum: 0,
      description:
        'OpenAI calls open at once at most, a stream until its end; beyond, 503 `ERR_OVERLOADED`. 0: no cap. ' +
        'Unset: what ¾ of the memory limit (cgroup, else RAM) holds, within the open-files limit ' +
        '(`src/upstream/capacity.ts`); the start-up log gives the figure.',
    },
    MAX_EVENT_LOOP_DELAY_MS: {
      type: 'integer',
      default: 1_000,
      minimum: 0,
      description:
        'Event-loop lag (mean over a second) over which task requests are shed with 503 `ERR_OVERLOADED`, ' +
        'from two seconds after start-up (before, the lag is the boot compiling schemas); 0: never.',
    },
    SSE_HEARTBEAT_MS: {
      type: 'integer',
      default: 15_000,
      minimum: 10,
      description: 'Silence after which a Server-Sent Events stream gets a `: keep-alive` comment.',
    },
    CLIENT_WRITE_TIMEOUT_MS: {
      type: 'integer',
      default: 30_000,
      minimum: 0,
      description:
        'A response its client has not read from for this long is cut off, and its OpenAI call aborted; 0: never.',
    },
    LOG_SUMMARY_INTERVAL_MS: {
      type: 'integer',
      default: 10_000,
      minimum: 0,
      description:
        'Shed requests, upstream failures and retries are logged as one warning with counts per ' +
        'interval; 0: one line each.',
    },
    METRICS_TOKEN: {
      type: 'string',
      default: '',
      description: 'When set, `GET /metrics` needs `Authorization: Bearer <token>`.',
    },
    BATCH_MAX_ITEMS: {
      type: 'integer',
      default: 256,
      minimum: 1,
      description: 'Items per batch request at most.',
    },
    BATCH_CONCURRENCY: {
      type: 'integer',
      default: 8,
      minimum: 1,
      description: 'Items of a batch run at once, and embeddings requests of a batch sent at once.',
    },
    IDLE_MEMORY_RELEASE_MS: {
      type: 'integer',
      default: 60_000,
      minimum: 0,
      description:
        'Quiet time after the last OpenAI call before one full collection gives the memory a burst ' +
        'left behind back to the system; 0: never. The next burst pays for the heap growing back, ' +
        'so traffic with shorter pauses does not trigger it.',
    },
    WARM_UP_CALLS: {
      type: 'integer',
      default: 2_000,
      minimum: 0,
      description:
        'Task calls run at start-up, before the server listens, through a copy of the app against an ' +
        'instant stand-in of OpenAI on loopback (nothing is sent out, counted or billed), so that a ' +
        'process that has just turned ready takes a burst at its warm speed; 0: none.',
    },
    WORKERS: {
      type: 'integer',
      minimum: 1,
      description: '`npm run start:cluster` only: worker processes. Unset: one per CPU.',
    },
  },
} as const

/** What the OpenTelemetry SDK can export with; unset, it uses http/protobuf. */
const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc']
/** The samplers the SDK knows by name; unset, it uses parentbased_always_on. */
const TRACES_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
]

/**
 * OpenTelemetry's standard variables, documented in docs/observability.md rather than the README.
 * The first ones decide whether tracing starts at all; the SDK reads the others itself, and they
 * are checked here only so that a typo stops the boot instead of being ignored with a warning.
 */
export const OTEL_ENV_SCHEMA = {
  type: 'object',
  properties: {
    OTEL_SDK_DISABLED: { type: 'boolean', default: false },
    OTEL_TRACES_EXPORTER: { type: 'string', default: '' },
    OTEL_EXPORTER_OTLP_ENDPOINT: { type: 'string', default: '' },
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: { type: 'string', default: '' },
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: { type: 'string', default: '' },
    OTEL_EXPORTER_OTLP_PROTOCOL: { type: 'string', enum: OTLP_PROTOCOLS },
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: { type: 'string', enum: OTLP_PROTOCOLS },
    OTEL_EXPORTER_OTLP_HEADERS: { type: 'string' },
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: { type: 'string' },
    OTEL_SERVICE_NAME: { type: 'string' },
    OTEL_RESOURCE_ATTRIBUTES: { type: 'string' },
    OTEL_TRACES_SAMPLER: { type: 'string', enum: TRACES_SAMPLERS },
    OTEL_TRACES_SAMPLER_ARG: { type: 'number', minimum: 0, maximum: 1 },
    OTEL_BSP_SCHEDULE_DELAY: { type: 'integer', minimum: 1 },
    OTEL_BSP_EXPORT_TIMEOUT: { type: 'integer', minimum: 1 },
    OTEL_BSP_MAX_QUEUE_SIZE: { type: 'integer', minimum: 1 },
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: { type: 'integer', minimum: 1 },
  },
} as const

/** What loadConfig validates: the service's own variables and OpenTelemetry's. */
const VALIDATED_ENV = { ...ENV_SCHEMA, properties: { ...ENV_SCHEMA.properties, ...OTEL_ENV_SCHEMA.properties } }

export interface CacheSettings {
  store: 'off' | 'memory' | 'redis'
  ttlMs: number
  /** The in-memory store's bound; unset: derived from the memory limit. */
  maxBytes: number | undefined
  maxEntryBytes: number
  redisUrl: string | undefined
  redisCommandTimeoutMs: number
}

export interface Config {
  host: string
  port: number
  listenBacklog: number
  logLevel: string
  openai: {
    apiKey: string | undefined
    organization: string | undefined
    project: string | undefined
    baseUrl: string
  }
  /** The configuration file read, if any. */
  configFile: string | undefined
  /** Where calls go: the file's deployments, or the one the `OPENAI_*` variables describe. */
  deployments: DeploymentSettings[]
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
  /** On shutdown, how long /readyz says 503 while new requests are still served, before closing. */
  shutdownDelayMs: number
  /** Time allowed to receive a whole request, and its headers, from a client. */
  clientTimeouts: { requestMs: number; headersMs: number }
  auth: {
    /** SERVICE_TOKENS: bearer tokens callers must present, besides the file's callers. */
    serviceTokens: string[]
    /** Every caller, the file's and SERVICE_TOKENS'; empty: no client authentication. */
    callers: CallerSettings[]
    /** SHA-256 of the file's `admin-tokens`, which read every caller's usage. */
    adminDigests: Buffer[]
    /** With tokens on, may a caller bill its own OpenAI key via X-OpenAI-Api-Key? */
    allowCallerApiKeys: boolean
  }
  /** Requests per window per client; 0: no limit. Redis commands give up after `redisCommandTimeoutMs`. */
  rateLimit: { max: number; windowMs: number; redisUrl: string | undefined; redisCommandTimeoutMs: number }
  /** The file's `prices:`, over the shipped table (schemas/prices.yaml). */
  prices: Record<string, Price>
  /** The embeddings cache: off, in memory, or in Redis; entries live `ttlMs`, none over `maxEntryBytes`. */
  cache: CacheSettings
  retries: { max: number; baseDelayMs: number; maxDelayMs: number }
  /** OpenAI calls open at most (until their answer's body ends); 0: no cap. Unset: derived from memory. */
  maxConcurrentUpstream: number | undefined
  /** Event-loop delay above which new requests get 503; 0: off. */
  maxEventLoopDelayMs: number
  /** Silence after which an SSE stream gets a keep-alive comment. */
  sseHeartbeatMs: number
  /** A response that cannot write to its client for this long is cut off; 0: never. */
  clientWriteTimeoutMs: number
  /** Repeated warnings (shed requests, upstream failures, retries) are logged as one count per interval; 0: each one. */
  logSummaryIntervalMs: number
  /** When set, GET /metrics needs it as a bearer token. */
  metricsToken: string | undefined
  /** The document's `servers` URL; unset, each request's own origin. */
  publicUrl: string | undefined
  /** Batch routes: items per request at most, and items run at once for tasks without a batch runner. */
  batch: { maxItems: number; concurrency: number }
  /** Quiet time after the last OpenAI call before memory is given back; 0: never. */
  idleMemoryReleaseMs: number
  /** Task calls run through a throwaway copy of the app before listening; 0: none. */
  warmUpCalls: number
  tracing: {
    /** Spans are exported (OTLP unless OTEL_TRACES_EXPORTER says otherwise); off: no SDK loaded. */
    enabled: boolean
    /** Prompts and completions go on the GenAI spans (the conventions' opt-in). */
    captureMessageContent: boolean
  }
}

interface RawEnv {
  HOST: string
  PORT: number
  LISTEN_BACKLOG: number
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
  SHUTDOWN_DELAY_MS: number
  REQUEST_TIMEOUT_MS: number
  HEADERS_TIMEOUT_MS: number
  SERVICE_TOKENS: string
  CONFIG_FILE: string
  SERVICE_TOKENS_FILE: string
  ALLOW_UNAUTHENTICATED: boolean
  ALLOW_CALLER_API_KEYS: boolean
  RATE_LIMIT_MAX: number
  RATE_LIMIT_WINDOW_MS: number
  REDIS_URL: string
  REDIS_COMMAND_TIMEOUT_MS: number
  CACHE: 'on' | 'memory' | 'off'
  CACHE_TTL_MS: number
  CACHE_MAX_BYTES?: number
  CACHE_MAX_ENTRY_BYTES: number
  UPSTREAM_MAX_RETRIES: number
  UPSTREAM_RETRY_BASE_DELAY_MS: number
  UPSTREAM_RETRY_MAX_DELAY_MS: number
  MAX_CONCURRENT_UPSTREAM?: number
  MAX_EVENT_LOOP_DELAY_MS: number
  SSE_HEARTBEAT_MS: number
  CLIENT_WRITE_TIMEOUT_MS: number
  LOG_SUMMARY_INTERVAL_MS: number
  METRICS_TOKEN: string
  PUBLIC_URL: string
  BATCH_MAX_ITEMS: number
  BATCH_CONCURRENCY: number
  IDLE_MEMORY_RELEASE_MS: number
  WARM_UP_CALLS: number
  OTEL_SDK_DISABLED: boolean
  OTEL_TRACES_EXPORTER: string
  OTEL_EXPORTER_OTLP_ENDPOINT: string
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: string
  OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: string
}

/** Reads and validates the configuration; throws with every bad variable named. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw = envSchema<RawEnv>({ schema: VALIDATED_ENV, data: withoutEmptyOtel(env), env: false, dotenv: false })
  const openai = {
    apiKey: raw.OPENAI_API_KEY || undefined,
    organization: raw.OPENAI_ORGANIZATION || undefined,
    project: raw.OPENAI_PROJECT || undefined,
    baseUrl: parseBaseUrl(raw.OPENAI_BASE_URL),
  }
  const allowedModels = raw.ALLOWED_MODELS.split(',')
    .map((m) => m.trim())
    .filter(Boolean)
  const configFile = raw.CONFIG_FILE || undefined
  const file = configFile ? readConfigFile(configFile, env) : undefined
  const tokens = [...new Set(serviceTokens(raw.SERVICE_TOKENS, raw.SERVICE_TOKENS_FILE))]
  const { callers, problems } = callersFrom(file?.callers, tokens)
  if (problems.length) throw new ConfigFileError(configFile ?? 'SERVICE_TOKENS', problems)
  const config: Config = {
    host: raw.HOST,
    port: raw.PORT,
    listenBacklog: raw.LISTEN_BACKLOG,
    logLevel: raw.LOG_LEVEL,
    openai,
    configFile,
    deployments:
      configFile && file?.deployments
        ? deploymentsFromFile(configFile, file.deployments, allowedModels)
        : [deploymentFromEnvironment(openai)],
    allowedModels,
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
    shutdownDelayMs: raw.SHUTDOWN_DELAY_MS,
    clientTimeouts: {
      requestMs: raw.REQUEST_TIMEOUT_MS,
      headersMs: Math.min(raw.HEADERS_TIMEOUT_MS, raw.REQUEST_TIMEOUT_MS),
    },
    auth: {
      serviceTokens: tokens,
      callers,
      adminDigests: (file?.['admin-tokens'] ?? []).map(tokenDigest),
      allowCallerApiKeys: raw.ALLOW_CALLER_API_KEYS,
    },
    rateLimit: {
      max: raw.RATE_LIMIT_MAX,
      windowMs: raw.RATE_LIMIT_WINDOW_MS,
      redisUrl: raw.REDIS_URL || undefined,
      redisCommandTimeoutMs: raw.REDIS_COMMAND_TIMEOUT_MS,
    },
    prices: file?.prices ?? {},
    cache: {
      store: raw.CACHE === 'off' ? 'off' : raw.CACHE === 'on' && raw.REDIS_URL ? 'redis' : 'memory',
      ttlMs: raw.CACHE_TTL_MS,
      maxBytes: raw.CACHE_MAX_BYTES,
      maxEntryBytes: raw.CACHE_MAX_ENTRY_BYTES,
      redisUrl: raw.REDIS_URL || undefined,
      redisCommandTimeoutMs: raw.REDIS_COMMAND_TIMEOUT_MS,
    },
    retries: {
      max: raw.UPSTREAM_MAX_RETRIES,
      baseDelayMs: raw.UPSTREAM_RETRY_BASE_DELAY_MS,
      maxDelayMs: raw.UPSTREAM_RETRY_MAX_DELAY_MS,
    },
    maxConcurrentUpstream: raw.MAX_CONCURRENT_UPSTREAM,
    maxEventLoopDelayMs: raw.MAX_EVENT_LOOP_DELAY_MS,
    sseHeartbeatMs: raw.SSE_HEARTBEAT_MS,
    clientWriteTimeoutMs: raw.CLIENT_WRITE_TIMEOUT_MS,
    logSummaryIntervalMs: raw.LOG_SUMMARY_INTERVAL_MS,
    metricsToken: raw.METRICS_TOKEN || undefined,
    publicUrl: raw.PUBLIC_URL.replace(/\/+$/, '') || undefined,
    batch: { maxItems: raw.BATCH_MAX_ITEMS, concurrency: raw.BATCH_CONCURRENCY },
    idleMemoryReleaseMs: raw.IDLE_MEMORY_RELEASE_MS,
    warmUpCalls: raw.WARM_UP_CALLS,
    tracing: {
      enabled: tracingEnabled(raw),
      captureMessageContent: CAPTURE_CONTENT.test(raw.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.trim()),
    },
  }
  refuseOpenProxy(config, raw.ALLOW_UNAUTHENTICATED)
  return config
}

/** OpenTelemetry's specification reads an empty variable as an unset one; so does the SDK. */
function withoutEmptyOtel(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(([name, value]) => !(name.startsWith('OTEL_') && value?.trim() === '')),
  )
}

/**
 * Off unless asked for: an OTLP endpoint, or an exporter named in OTEL_TRACES_EXPORTER (the SDK
 * would otherwise export to localhost:4318 by default, which nobody asked for).
 */
function tracingEnabled(raw: RawEnv): boolean {
  if (raw.OTEL_SDK_DISABLED) return false
  const exporters = raw.OTEL_TRACES_EXPORTER.split(',')
    .map((name) => name.trim())
    .filter(Boolean)
  if (exporters.includes('none')) return false
  return exporters.length > 0 || Boolean(raw.OTEL_EXPORTER_OTLP_ENDPOINT || raw.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

/** The opt-in values other OpenTelemetry GenAI instrumentations accept for span attributes. */
const CAPTURE_CONTENT = /^(?:true|span_only|span_and_event)$/i

function serviceTokens(inline: string, file: string): string[] {
  let text = inline
  if (file) {
    try {
      text += `\n${readFileSync(file, 'utf8')}`
    } catch (err) {
      throw new Error(`SERVICE_TOKENS_FILE cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`)
    }
  }
  return text.split(/[\s,]+/).filter(Boolean)
}

const LOOPBACK_HOSTS = new Set(['localhost', '::1', '[::1]'])

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127(?:\.\d{1,3}){3}$/.test(host)
}

/**
 * A server that holds an OpenAI key, reachable from other machines and asking callers for
 * nothing, spends its owner's money for anyone who finds it.
 */
function refuseOpenProxy(config: Config, allowUnauthenticated: boolean): void {
  if (!config.openai.apiKey || config.auth.callers.length || isLoopbackHost(config.host) || allowUnauthenticated) {
    return
  }
  throw new Error(
    `HOST=${config.host} exposes the server's OPENAI_API_KEY to anyone who can reach it, with no ` +
      'client authentication. Set SERVICE_TOKENS (or SERVICE_TOKENS_FILE) so callers must send ' +
      '"Authorization: Bearer <token>", listen on a loopback HOST, or set ALLOW_UNAUTHENTICATED=true ' +
      'if something in front of the service already authenticates callers.',
  )
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
