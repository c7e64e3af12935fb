import { finished } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { FormData, Pool, type Dispatcher } from 'undici'
import type { Credentials } from '../credentials.ts'
import type { UpstreamObserver } from '../metrics/service-metrics.ts'
import { ClientClosedError, OverloadedError, withDetails } from '../errors.ts'
import { LogSummary } from '../log-summary.ts'
import type { AttemptScope } from '../tracing/model-call.ts'
import { readBounded, refuseDeclaredOversize } from './bounded-body.ts'
import { retryDelayForResponse, retryDelayForTransport, type RetryOptions } from './retry-policy.ts'
import { upstreamExcerpt } from './redact-secrets.ts'
import { badUpstreamResponse, errorFromTransport, errorFromUpstreamResponse } from './upstream-errors.ts'

export interface UpstreamOptions {
  baseUrl: string
  connections: number
  connectTimeoutMs: number
  headersTimeoutMs: number
  bodyTimeoutMs: number
  keepAliveTimeoutMs: number
  retries: RetryOptions
  /** Calls open at most, until their answer's body ends; 0: no cap. */
  maxConcurrent: number
  observer?: UpstreamObserver
  /** Where retry warnings are counted; without it each is logged. */
  logSummary?: LogSummary
}

export interface UpstreamCall {
  /** Path below the base URL, e.g. `/chat/completions`. */
  path: string
  body: string | FormData
  credentials: Credentials
  signal: AbortSignal
  requestId: string
  log?: FastifyBaseLogger
  accept?: string
  /** The call's GenAI span, when traced: each HTTP attempt is sent inside it. */
  span?: AttemptScope | undefined
}

/** A call whose answer is read whole (or relayed) by the service: at most `maxBytes` of it (answer-limits.ts). */
export type BoundedCall = Omit<UpstreamCall, 'body'> & { body: unknown; maxBytes: number }

const USER_AGENT = 'openai-tasks/0.1'

/**
 * The one HTTP client to OpenAI (or a compatible server): a keep-alive undici Pool bound to the
 * base URL's origin, shared by every route. Non-2xx answers and transport failures come back
 * as the service's own errors, already mapped to the status the caller gets.
 */
export class OpenAIUpstream {
  readonly #pool: Pool
  readonly #basePath: string
  readonly #retries: RetryOptions
  readonly #maxConcurrent: number
  readonly #observer: UpstreamObserver | undefined
  readonly #logSummary: LogSummary
  #inFlight = 0
  #calls = 0

  constructor(options: UpstreamOptions) {
    const url = new URL(options.baseUrl)
    this.#basePath = url.pathname.replace(/\/+$/, '')
    this.#retries = options.retries
    this.#maxConcurrent = options.maxConcurrent
    this.#observer = options.observer
    this.#logSummary = options.logSummary ?? new LogSummary({ intervalMs: 0 })
    this.#pool = new Pool(url.origin, {
      // 0: a connection per concurrent call over HTTP/1.1, however many; HTTP/2 multiplexes.
      connections: options.connections || null,
      // HTTPS origins that offer HTTP/2 (OpenAI does) carry many calls per connection.
      allowH2: true,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      connect: { timeout: options.connectTimeoutMs, preferH2: true },
    })
  }

  /**
   * POSTs and returns the 2xx answer with its body still unread. 429, 5xx and connection
   * failures are retried (nothing has reached the caller yet) with backoff, within the policy.
   * The call counts as open until its answer's body ends: a stream holds its place to the end.
   */
  async post(call: UpstreamCall): Promise<Dispatcher.ResponseData> {
    if (this.#maxConcurrent && this.#inFlight >= this.#maxConcurrent) {
      throw withDetails(new OverloadedError(`${this.#inFlight} OpenAI calls open`), [], { retryAfterSeconds: 1 })
    }
    this.#inFlight++
    this.#calls++
    let res: Dispatcher.ResponseData
    try {
      res = await this.#postWithRetries(call)
    } catch (err) {
      this.#inFlight--
      throw err
    }
    finished(res.body, () => this.#inFlight--)
    return res
  }

  async #postWithRetries(call: UpstreamCall): Promise<Dispatcher.ResponseData> {
    const request = this.#requestOptions(call)
    for (let attempt = 0; ; attempt++) {
      let res: Dispatcher.ResponseData
      const started = process.hrtime.bigint()
      try {
        res = await (call.span
          ? call.span.attempt(attempt, () => this.#pool.request(request))
          : this.#pool.request(request))
      } catch (err) {
        if (call.signal.aborted) throw new ClientClosedError()
        this.#observer?.failure(call.path, (err as { code?: string }).code ?? 'UNKNOWN')
        const delay = retryDelayForTransport(err, attempt, this.#retries)
        if (delay === undefined) throw errorFromTransport(err, call.credentials.apiKey)
        await this.#beforeRetry(call, attempt, delay, { transportCode: (err as { code?: string }).code })
        continue
      }
      this.#observer?.response(call.path, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9)
      if (res.statusCode >= 200 && res.statusCode < 300) return res
      const delay = retryDelayForResponse(res, attempt, this.#retries)
      if (delay === undefined) throw await errorFromUpstreamResponse(res, call.credentials.apiKey)
      await res.body.dump().catch(() => undefined)
      await this.#beforeRetry(call, attempt, delay, { status: res.statusCode })
    }
  }

  async #beforeRetry(
    call: UpstreamCall,
    attempt: number,
    delayMs: number,
    cause: { status?: number; transportCode?: string },
  ): Promise<void> {
    const key = {
      kind: 'retry' as const,
      operation: call.path,
      cause: cause.status ?? cause.transportCode ?? 'UNKNOWN',
    }
    this.#logSummary.warn(
      call.log,
      key,
      { ...cause, path: call.path, attempt: attempt + 1, delayMs },
      'retrying OpenAI request',
    )
    this.#observer?.retry(call.path)
    try {
      await sleep(delayMs, undefined, { signal: call.signal })
    } catch {
      throw new ClientClosedError()
    }
  }

  #requestOptions(call: UpstreamCall): Dispatcher.RequestOptions {
    const headers: Record<string, string> = {
      authorization: `Bearer ${call.credentials.apiKey}`,
      accept: call.accept ?? 'application/json',
      'user-agent': USER_AGENT,
      'x-client-request-id': call.requestId,
    }
    if (typeof call.body === 'string') headers['content-type'] = 'application/json'
    if (call.credentials.organization) headers['openai-organization'] = call.credentials.organization
    if (call.credentials.project) headers['openai-project'] = call.credentials.project
    return { method: 'POST', path: this.#basePath + call.path, headers, body: call.body, signal: call.signal }
  }

  /** POSTs a JSON (or multipart) body and parses the JSON answer. */
  async postJson<T>(call: BoundedCall): Promise<T> {
    return parseUpstreamJson<T>(await this.postForText(call), call.path, call.credentials.apiKey)
  }

  /** POSTs a JSON (or multipart) body and returns the answer's text, unparsed. */
  async postForText(call: BoundedCall): Promise<string> {
    return textOf(await this.#postAndRead(call))
  }

  /** POSTs a JSON body and reads the whole binary answer. */
  async postForBytes(call: BoundedCall): Promise<{ bytes: Buffer; contentType: string | undefined }> {
    const { res, bytes } = await this.#postAndRead(call)
    const contentType = res.headers['content-type']
    return { bytes, contentType: typeof contentType === 'string' ? contentType : undefined }
  }

  /**
   * POSTs for a Server-Sent Events answer and returns it with its body unread. A 2xx that is not
   * an event stream (a proxy's login page, a JSON answer) or says it is over `maxBytes` is a 502
   * here, while the caller's answer can still be a JSON error.
   */
  async postForEvents(call: BoundedCall): Promise<Dispatcher.ResponseData> {
    const res = await this.post({ ...call, body: encode(call.body), accept: 'text/event-stream' })
    const type = res.headers['content-type']
    if (!isEventStreamType(type)) {
      res.body.destroy()
      throw badUpstreamResponse(`the stream answer is ${String(type)}, not text/event-stream`, call.credentials.apiKey)
    }
    refuseDeclaredOversize(res, call.maxBytes, `a stream from ${call.path}`)
    return res
  }

  async #postAndRead(call: BoundedCall): Promise<{ res: Dispatcher.ResponseData; bytes: Buffer }> {
    const res = await this.post({ ...call, body: encode(call.body) })
    try {
      return { res, bytes: await readBounded(res, call.maxBytes, `an answer from ${call.path}`) }
    } catch (err) {
      if (isServiceError(err)) throw err
      throw this.#transportError(err, call)
    }
  }

  /** OpenAI calls open now: awaiting their answer, or still receiving its body. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** OpenAI requests made since start (retries not counted). */
  get calls(): number {
    return this.#calls
  }

  get stats(): Pool['stats'] {
    return this.#pool.stats
  }

  close(): Promise<void> {
    return this.#pool.close()
  }

  #transportError(err: unknown, call: BoundedCall): Error {
    if (call.signal.aborted) return new ClientClosedError()
    return errorFromTransport(err, call.credentials.apiKey)
  }
}

function encode(body: unknown): string | FormData {
  return body instanceof FormData ? body : JSON.stringify(body)
}

/** The answer as text, without the byte order mark some servers start it with. */
function textOf({ bytes }: { bytes: Buffer }): string {
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0
  return bytes.toString('utf8', start)
}

/** An error the service raised on purpose (a bound, a bad answer), rather than the body's own failure. */
function isServiceError(err: unknown): boolean {
  return String((err as { code?: unknown } | null)?.code).startsWith('ERR_')
}

/**
 * Whether a Content-Type may be an event stream: `text/event-stream` with any parameters
 * (compatible servers differ on the charset), or none at all (the events themselves are checked).
 */
function isEventStreamType(contentType: string | string[] | undefined): boolean {
  const type = (Array.isArray(contentType) ? contentType[0] : contentType)?.split(';', 1)[0]!.trim().toLowerCase()
  return !type || type === 'text/event-stream'
}

export function parseUpstreamJson<T>(text: string, path: string, apiKey: string | undefined): T {
  try {
    return JSON.parse(text) as T
  } catch {
    throw badUpstreamResponse(`expected JSON from ${path}, got ${JSON.stringify(upstreamExcerpt(text, apiKey, 120))}`)
  }
}
