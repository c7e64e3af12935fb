import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.ts'

const SAFE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/

/** Log paths that may hold a key or token; pino replaces them before anything is written. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-openai-api-key"]',
  'req.headers["openai-organization"]',
  'headers.authorization',
  'config.openai.apiKey',
  'credentials.apiKey',
  'apiKey',
  'api-key',
  '*.apiKey',
  '*["api-key"]',
]

/** Honours a sane incoming X-Request-Id, otherwise makes one. */
export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id']
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

export interface LoggingChoice {
  /** Where log lines go (default stdout); tests pass a stream to read them. */
  stream?: DestinationStream
  /** `false` turns logging off entirely. */
  enabled?: boolean
}

export function serverOptions(config: Config, logging: LoggingChoice = {}): FastifyServerOptions {
  const logger =
    logging.enabled === false
      ? false
      : {
          level: config.logLevel,
          redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
          ...(logging.stream && { stream: logging.stream }),
        }
  return {
    logger,
    genReqId: requestIdFor,
    // One log line per request (written by the app on response) instead of Fastify's two.
    disableRequestLogging: true,
    requestIdHeader: false,
    bodyLimit: config.bodyLimits.json,
    forceCloseConnections: 'idle',
    // A slow client (slow-loris) is cut off: the whole request must arrive in time.
    requestTimeout: config.clientTimeouts.requestMs,
    return503OnClosing: true,
    ajv: {
      customOptions: {
        allErrors: true,
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        // OpenAPI-only annotation on the route body schemas.
        keywords: ['x-examples'],
        // A multipart file field: its bytes are never in the validated body.
        formats: { binary: true },
      },
    },
  }
}
