import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { Pool } from 'undici'
import type { DeploymentGauges, UpstreamObserver } from '../metrics/service-metrics.ts'
import {
  ClientClosedError,
  ModelNotServedError,
  NoDeploymentAvailableError,
  OverloadedError,
  UpstreamRateLimitedError,
  withDetails,
  type DetailedError,
} from '../errors.ts'
import { LogSummary } from '../log-summary.ts'
import { chooseDeployment, earliestReturn } from '../routing/choose-deployment.ts'
import { Deployment, type CircuitPolicy, type DeploymentEvents } from '../routing/deployment.ts'
import { credentialsFor, requestOn, type OutgoingCall } from '../routing/deployment-request.ts'
import type { DeploymentSettings } from '../routing/deployment-settings.ts'
import { exhaustedForMs, rateLimitedForMs } from '../routing/rate-limit-headers.ts'
import type { AttemptScope, AttemptTarget } from '../tracing/model-call.ts'
import { readBounded, refuseDeclaredOversize } from './bounded-body.ts'
import { backoff, isRetryableTransport, type RetryOptions } from './retry-policy.ts'
import { upstreamExcerpt, type KeysInUse } from './redact-secrets.ts'
import { dispatchAnswer, type UpstreamAnswer } from './upstream-answer.ts'
import { badUpstreamResponse, errorFromTransport, errorFromUpstreamResponse } from './upstream-errors.ts'

export interface UpstreamOptions {
  /** Where calls go (config.ts): the file's deployments, or the one of the environment. */
  deployments: DeploymentSettings[]
  connections: number
  connectTimeoutMs: number
  headersTimeoutMs: number
  bodyTimeoutMs: number
  keepAliveTimeoutMs: number
  retries: RetryOptions
  /** When failures open a deployment's circuit. */
  circuit: CircuitPolicy
  /** Calls open at most, until their answer's body ends; 0: no cap. */
  maxConcurrent: number
  observer?: UpstreamObserver
  /** Where retry warnings are counted; without it each is logged. */
  logSummary?: LogSummary
  /** Where a deployment's going out and coming back are said, once each. */
  log?: FastifyBaseLogger
}

/** A call as a task makes it: what it sends (deployment-request.ts), and what watches it. */
export interface UpstreamCall extends OutgoingCall {
  log?: FastifyBaseLogger
  /** The call's GenAI span, when traced: each HTTP attempt is sent inside it. */
  span?: AttemptScope | undefined
  /** Told the deployment whose answer the call got. */
  served?: ((deployment: string) => void) | undefined
}

/** A call whose answer is read whole (or relayed) by the service: at most `maxBytes` of it (answer-limits.ts). */
export type BoundedCall = UpstreamCall & { maxBytes: number }

/** An error that came from a deployment (its answer, or failing to reach it) names it. */
export interface DeploymentError extends DetailedError {
  deployment?: string
}

// A connect or headers timeout ends the attempt, not the call: another deployment may answer.
const FAILOVER_ONLY_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT'])

/**
 * The HTTP client to OpenAI and its peers: one keep-alive undici Pool per origin, shared by
 * every route, and the deployments a call may go to. A call goes to one that serves its model
 * (choose-deployment.ts); a 429, a 5xx or a connection failure sends it at once to another, and
 * when none is left it waits, within the retry policy, for the first to come back. Non-2xx
 * answers and transport failures come back as the service's own errors, already mapped to the
 * status the caller gets.
 */
export class OpenAIUpstream {
  readonly #pools = new Map<string, Pool>()
  readonly #poolOptions: Pool.Options
  readonly #retries: RetryOptions
  readonly #circuit: CircuitPolicy
  readonly #maxConcurrent: number
  readonly #observer: UpstreamObserver | undefined
  readonly #logSummary: LogSummary
  readonly #events: DeploymentEvents
  #deployments: Deployment[] = []
  /** Every key a deployment holds, to keep out of text the upstreams send back. */
  #serverKeys: readonly string[] = []
  #targets = new Map<Deployment, Target>()
  /** The candidates by kind of key, when every deployment serves every model. */
  #anyModel: { callerKey: readonly Deployment[]; serverKey: readonly Deployment[] } | undefined
  #inFlight = 0
  #calls = 0

  constructor(options: UpstreamOptions) {
    this.#retries = options.retries
    this.#circuit = options.circuit
    this.#maxConcurrent = options.maxConcurrent
    this.#observer = options.observer
    this.#logSummary = options.logSummary ?? new LogSummary({ intervalMs: 0 })
    this.#events = deploymentEvents(options.log, options.observer)
    this.#poolOptions = {
      // 0: a connection per concurrent call over HTTP/1.1, however many; HTTP/2 multiplexes.
      connections: options.connections || null,
      // HTTPS origins that offer HTTP/2 (OpenAI does) carry many calls per connection.
      allowH2: true,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      connect: { timeout: options.connectTimeoutMs, preferH2: true },
    }
    this.configure(options.deployments)
  }

  /**
   * Takes a new set of deployments (a reloaded file): calls start on them from now on, while
   * calls in flight finish on the deployment they started on.
   */
  configure(settings: DeploymentSettings[]): void {
    const previous = this.#deployments
    this.#deployments = settings.map((s) => new Deployment(s, this.#circuit, this.#events))
    this.#targets = new Map(this.#deployments.map((d) => [d, this.#targetFor(d)]))
    this.#serverKeys = settings.flatMap((s) => (s.apiKey ? [s.apiKey] : []))
    // Every deployment of the environment's setup serves any model: its candidates are fixed.
    this.#anyModel = this.#deployments.every((d) => d.settings.models.includes('*'))
      ? {
          callerKey: this.#deployments.filter((d) => takesKey(d, true)),
          serverKey: this.#deployments.filter((d) => takesKey(d, false)),
        }
      : undefined
    for (const d of previous) d.close()
  }

  #targetFor(deployment: Deployment): Target {
    const url = new URL(deployment.settings.baseUrl)
    let pool = this.#pools.get(url.origin)
    if (!pool) {
      pool = new Pool(url.origin, this.#poolOptions)
      this.#pools.set(url.origin, pool)
    }
    const serverPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
    return {
      pool,
      basePath: url.pathname.replace(/\/+$/, ''),
      where: { deployment: deployment.name, serverAddress: url.hostname, serverPort },
    }
  }

  /** The deployments now, for the metrics. */
  get deployments(): readonly Deployment[] {
    return this.#deployments
  }

  /** Each deployment's state now, for the metrics. */
  deploymentGauges(): DeploymentGauges[] {
    const now = Date.now()
    return this.#deployments.map((d) => ({
      name: d.name,
      inFlight: d.inFlight,
      available: d.available(now),
      circuitOpen: d.circuitOpen(),
    }))
  }

  /** The deployments that can take a call for the model with these credentials. */
  candidates(model: string, callerKey: boolean): readonly Deployment[] {
    if (this.#anyModel) return callerKey ? this.#anyModel.callerKey : this.#anyModel.serverKey
    return this.#deployments.filter((d) => d.serves(model) && takesKey(d, callerKey))
  }

  /**
   * POSTs and returns the 2xx answer with its body still unread, after failing over or waiting
   * as the class says (nothing has reached the caller yet). The call counts as open until its
   * answer's body ends: a stream holds its place to the end.
   */
  async post(call: UpstreamCall): Promise<UpstreamAnswer> {
    const candidates = this.candidates(call.model, call.credentials !== undefined)
    if (!candidates.length) throw modelNotServed(call)
    if (this.#maxConcurrent && this.#inFlight >= this.#maxConcurrent) {
      throw withDetails(new OverloadedError(`${this.#inFlight} OpenAI calls open`), [], { retryAfterSeconds: 1 })
    }
    this.#inFlight++
    this.#calls++
    let answered: Answered
    try {
      answered = await this.#postWithFailover(call, candidates)
    } catch (err) {
      this.#inFlight--
      throw err
    }
    const { res, deployment } = answered
    res.body.onSettled(() => {
      deployment.release()
      this.#inFlight--
    })
    call.served?.(deployment.name)
    return res
  }

  /** The 2xx answer and the deployment that gave it, which holds the call until its body ends. */
  async #postWithFailover(call: UpstreamCall, candidates: readonly Deployment[]): Promise<Answered> {
    // The deployments this round has tried: a few at most, where an array costs less than a Set.
    const tried: Deployment[] = []
    let failure: DeploymentError | undefined
    // How long the last 429 asked this call to wait (deployments that do not cool down).
    let askedWait: number | undefined
    let waits = 0
    // Sends so far: the resend count of the next one.
    let attempt = 0
    for (;;) {
      const now = Date.now()
      const deployment = chooseDeployment(candidates, tried, now)
      if (!deployment) {
        const delay = this.#waitBeforeRound(candidates, now, waits, failure, askedWait)
        await this.#beforeRetry(call, attempt, delay, failure)
        waits++
        tried.length = 0
        continue
      }
      // Sent again, elsewhere at once or after a wait: counted against the deployment that failed.
      if (failure) this.#observer?.retry(call.path, failure.deployment ?? deployment.name)
      tried.push(deployment)
      const target = this.#targets.get(deployment)!
      const credentials = credentialsFor(call, deployment)
      const request = requestOn(deployment, target.basePath, call, credentials)
      deployment.acquire(now)
      let res: UpstreamAnswer
      const started = process.hrtime.bigint()
      const resendCount = attempt++
      const send = (): Promise<UpstreamAnswer> => dispatchAnswer(target.pool, request, call.signal)
      try {
        res = await (call.span ? call.span.attempt(resendCount, send, target.where) : send())
      } catch (err) {
        deployment.release()
        if (call.signal.aborted) {
          deployment.abandoned()
          throw new ClientClosedError()
        }
        const code = (err as { code?: string }).code ?? 'UNKNOWN'
        this.#observer?.failure(call.path, code, deployment.name)
        failure = named(errorFromTransport(err, credentials.apiKey), deployment)
        const retryable = isRetryableTransport(err)
        if (!retryable && !FAILOVER_ONLY_CODES.has(code)) throw failure
        deployment.failed(Date.now(), code)
        // A timeout is waited out once: another deployment may answer, this one is not tried again.
        if (!retryable && !candidates.some((d) => !tried.includes(d) && d.available(Date.now()))) throw failure
        continue
      }
      this.#observer?.response(
        call.path,
        res.statusCode,
        Number(process.hrtime.bigint() - started) / 1e9,
        deployment.name,
      )
      const status = res.statusCode
      if (status >= 200 && status < 300) {
        deployment.succeeded()
        const exhausted = exhaustedForMs(res.headers)
        if (exhausted !== undefined) deployment.rateLimited(Date.now(), exhausted, 'nothing left in its window')
        return { res, deployment }
      }
      deployment.release()
      const verdict = retryVerdict(res)
      if (status === 429) {
        deployment.succeeded()
        const coolDown = rateLimitedForMs(res.headers) ?? backoff(resendCount, this.#retries)
        askedWait = coolDown
        deployment.rateLimited(Date.now(), coolDown, '429')
      } else if (verdict === 'retry') deployment.failed(Date.now(), String(status))
      else deployment.succeeded()
      failure = named(await errorFromUpstreamResponse(res, credentials.apiKey), deployment)
      if (verdict !== 'retry') throw failure
    }
  }

  /**
   * How long to wait before trying again when every candidate is tried or unavailable: until
   * the first comes back (a cool-down, a circuit), or a backoff when they merely failed; the
   * last failure, or a 429/503 naming the wait, when that is past the retry policy.
   */
  #waitBeforeRound(
    candidates: readonly Deployment[],
    now: number,
    waits: number,
    failure: DeploymentError | undefined,
    askedWait: number | undefined,
  ): number {
    const back = earliestReturn(candidates, now)
    let delay = backoff(waits, this.#retries)
    if (back) delay = back.at - now
    else if (askedWait !== undefined) delay = askedWait
    if (waits < this.#retries.max && delay <= this.#retries.maxDelayMs) return delay
    const retryAfterSeconds = back ? Math.max(1, Math.ceil((back.at - now) / 1000)) : undefined
    if (failure) {
      if (retryAfterSeconds !== undefined && failure.statusCode === 429) failure.retryAfterSeconds = retryAfterSeconds
      throw failure
    }
    throw noDeploymentAvailable(candidates, back, retryAfterSeconds)
  }

  async #beforeRetry(
    call: UpstreamCall,
    attempt: number,
    delayMs: number,
    failure: DeploymentError | undefined,
  ): Promise<void> {
    const detail = failure?.details?.[0]
    const status = detail?.['upstream-status'] as number | undefined
    const transportCode = detail?.['transport-code'] as string | undefined
    const key = { kind: 'retry' as const, operation: call.path, cause: status ?? transportCode ?? 'unavailable' }
    this.#logSummary.warn(
      call.log,
      key,
      { status, transportCode, path: call.path, attempt, delayMs, deployment: failure?.deployment },
      'retrying OpenAI request',
    )
    try {
      await sleep(delayMs, undefined, { signal: call.signal })
    } catch {
      throw new ClientClosedError()
    }
  }

  /** POSTs a JSON (or multipart) body and parses the JSON answer. */
  async postJson<T>(call: BoundedCall): Promise<T> {
    return parseUpstreamJson<T>(await this.postForText(call), call.path, this.secretsOf(call))
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
  async postForEvents(call: BoundedCall): Promise<UpstreamAnswer> {
    const res = await this.post({ ...call, accept: 'text/event-stream' })
    const type = res.headers['content-type']
    if (!isEventStreamType(type)) {
      res.body.destroy()
      throw badUpstreamResponse(`the stream answer is ${String(type)}, not text/event-stream`, this.secretsOf(call))
    }
    refuseDeclaredOversize(res, call.maxBytes, `a stream from ${call.path}`)
    return res
  }

  async #postAndRead(call: BoundedCall): Promise<{ res: UpstreamAnswer; bytes: Buffer }> {
    const res = await this.post(call)
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

  /** The pools' requests running and waiting, all origins together. */
  get stats(): { running: number; pending: number; connected: number } {
    const stats = { running: 0, pending: 0, connected: 0 }
    for (const pool of this.#pools.values()) {
      stats.running += pool.stats.running
      stats.pending += pool.stats.pending
      stats.connected += pool.stats.connected
    }
    return stats
  }

  /** Whether some deployment holds a key of its own, to spend for callers who send none. */
  get hasServerKeys(): boolean {
    return this.#serverKeys.length > 0
  }

  /** The keys a call's answer may echo: the caller's, and every deployment's. */
  secretsOf(call: Pick<UpstreamCall, 'credentials'>): readonly string[] {
    return call.credentials ? [call.credentials.apiKey, ...this.#serverKeys] : this.#serverKeys
  }

  async close(): Promise<void> {
    for (const d of this.#deployments) d.close()
    await Promise.all([...this.#pools.values()].map((pool) => pool.close()))
  }

  #transportError(err: unknown, call: BoundedCall): Error {
    if (call.signal.aborted) return new ClientClosedError()
    return errorFromTransport(err, this.secretsOf(call))
  }
}

interface Answered {
  res: UpstreamAnswer
  deployment: Deployment
}

interface Target {
  pool: Pool
  basePath: string
  /** What the call's span says of an attempt there. */
  where: AttemptTarget
}

/** Whether a call spending the caller's key (or else the deployment's own) may go there. */
function takesKey(d: Deployment, callerKey: boolean): boolean {
  return callerKey ? d.settings.callerKeys : d.settings.apiKey !== undefined
}

function named(error: DetailedError, deployment: Deployment): DeploymentError {
  return Object.assign(error, { deployment: deployment.name })
}

/** 429 and 5xx are tried again, elsewhere or later; OpenAI's `x-should-retry` decides when present. */
function retryVerdict(res: UpstreamAnswer): 'retry' | 'answer' {
  const shouldRetry = res.headers['x-should-retry']
  if (shouldRetry === 'false') return 'answer'
  if (shouldRetry === 'true' || res.statusCode === 429 || res.statusCode >= 500) return 'retry'
  return 'answer'
}

function modelNotServed(call: UpstreamCall): DetailedError {
  const whose = call.credentials ? ' for a caller who sends its own key' : ''
  return withDetails(new ModelNotServedError(call.model, whose), [
    { field: 'model', path: '/model', message: `is served by no deployment${whose}` },
  ])
}

/** Every candidate is out (cool-down, open circuit, at its max-concurrent) past the wait allowed. */
function noDeploymentAvailable(
  candidates: readonly Deployment[],
  back: { at: number; rateLimited: boolean } | undefined,
  retryAfterSeconds: number | undefined,
): DetailedError {
  const names = candidates.map((d) => d.name).join(', ')
  const extra = retryAfterSeconds === undefined ? {} : { retryAfterSeconds }
  if (back?.rateLimited) {
    return withDetails(
      new UpstreamRateLimitedError(`every deployment serving it is rate limited (${names})`),
      [],
      extra,
    )
  }
  return withDetails(new NoDeploymentAvailableError(names), [], extra)
}

/** A deployment's going out and coming back, logged once each and counted. */
function deploymentEvents(
  log: FastifyBaseLogger | undefined,
  observer: UpstreamObserver | undefined,
): DeploymentEvents {
  return {
    unavailable(deployment, why, forMs, cause) {
      observer?.unavailable(deployment.name, why)
      log?.warn({ deployment: deployment.name, why, forMs: Math.round(forMs), cause }, 'deployment takes no calls')
    },
    available(deployment, after) {
      log?.warn({ deployment: deployment.name, after }, 'deployment takes calls again')
    },
  }
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

export function parseUpstreamJson<T>(text: string, path: string, apiKey: KeysInUse): T {
  try {
    return JSON.parse(text) as T
  } catch {
    throw badUpstreamResponse(`expected JSON from ${path}, got ${JSON.stringify(upstreamExcerpt(text, apiKey, 120))}`)
  }
}
