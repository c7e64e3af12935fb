import { randomUUID } from 'node:crypto'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import {
  LogController,
  type FastifyHttpOptions,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify'
import { clientErrorHandler } from './client-errors.ts'
import { answerFrameworkError } from './framework-errors.ts'
import { BODY_VALIDATION_OPTIONS } from './schemas/ajv-options.ts'
import pino, { type DestinationStream } from 'pino'
import type { Config } from './config.ts'
import { repeatedKind } from './log-summary.ts'
import { earlyCloseCode, endStatus } from './request-end.ts'

const SAFE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/

/**
 * Log paths that may hold a key or token; pino replaces them before anything is written. `req`
 * needs none: Fastify's serializer writes only its method, URL, host and peer, never headers.
 * @fastify/multipart's trace line gives busboy's options, the request's headers among them: all
 * of them go, as any header a proxy adds (a cookie, an identity token) may be a credential.
 * Named paths rather than wildcards: a wildcard, or a path under `req`, which every request's
 * line carries, has every line cloned and searched (bench/README.md, The access log line).
 */
export const REDACTED_PATHS = [
  'headers.authorization',
  'headers["x-openai-api-key"]',
  'headers["openai-organization"]',
  'busboyOptions.headers',
  'config.openai.apiKey',
  'credentials.apiKey',
  'apiKey',
  'api-key',
  'err.apiKey',
  'err.headers.authorization',
]

const UNLOGGED = Symbol('unlogged-reply')

declare module 'node:http' {
  interface ServerResponse {
    [UNLOGGED]?: FastifyReply
  }
}

/**
 * One log line per request, on completion, with the request in it (Fastify writes two), and the
 * error code when the answer is one. Shed requests' lines are debug: the shed is there to spare
 * the process work, and their warnings are counted (log-summary.ts) and in the metrics. Fastify
 * writes no line for a response whose connection closed before it finished: its close does.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    reply.raw[UNLOGGED] = reply
    reply.raw.on('close', logClosedFirst)
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    reply.raw[UNLOGGED] = undefined
    const entry = withSpend(request, { req: request, res: reply, responseTime: reply.elapsedTime })
    const code = request.errorCode
    // Only a failed write to the client or a failing onResponse hook gets here with an error.
    if (error) reply.log.error({ ...entry, err: error }, 'request errored')
    else if (code === undefined) reply.log.info(entry, 'request completed')
    else if (repeatedKind(code, reply.statusCode) === 'shed') reply.log.debug({ ...entry, code }, 'request completed')
    else reply.log.info({ ...entry, code }, 'request completed')
  }

  // A client that hung up mid-stream needs no line of its own: its request's says so (499).
  override streamError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (earlyCloseCode(request) !== 'ERR_CLIENT_CLOSED') super.streamError(error, request, reply)
  }
}

/** The line of a request Fastify wrote none for: its connection closed before the response finished. */
function logClosedFirst(this: ServerResponse): void {
  const reply = this[UNLOGGED]
  // A finished response gets Fastify's line, after any async onResponse hook has run.
  if (!reply || this.writableFinished) return
  this[UNLOGGED] = undefined
  const { request } = reply
  const code = earlyCloseCode(request) || request.errorCode
  const res = { statusCode: endStatus(request, this) }
  reply.log.info(withSpend(request, { req: request, res, responseTime: reply.elapsedTime, code }), 'request completed')
}

/** A task request's line says who spent what: the caller and the cost in dollars (or `unknown`). */
function withSpend<E extends object>(request: FastifyRequest, entry: E): E {
  const bill = request.bill
  return bill ? { ...entry, caller: bill.spender, costUsd: bill.costText } : entry
}

/**
 * Stdout for log lines, written as the previous write completes rather than one blocking write
 * each; bounded, so a stdout that stops draining drops lines rather than filling memory.
 */
export function stdoutDestination(): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: 1, sync: false, maxLength: 16 * 1024 * 1024 })
}

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
          stream: logging.stream ?? stdoutDestination(),
        }
  const options: FastifyHttpOptions<Server> = {
    logger,
    genReqId: requestIdFor,
    logController: new OneLinePerRequest(),
    requestIdHeader: false,
    bodyLimit: config.bodyLimits.json,
    forceCloseConnections: 'idle',
    // A slow client (slow-loris) is cut off: headers and the whole request must arrive in time,
    // checked often enough for those deadlines to mean something (Node checks every 30 s).
    requestTimeout: config.clientTimeouts.requestMs,
    http: {
      headersTimeout: config.clientTimeouts.headersMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.clientTimeouts.headersMs / 4))),
    },
    clientErrorHandler,
    frameworkErrors: answerFrameworkError,
    return503OnClosing: true,
    ajv: { customOptions: BODY_VALIDATION_OPTIONS },
  }
  return options as FastifyServerOptions
}
