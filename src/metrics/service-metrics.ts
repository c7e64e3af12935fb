import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { TaskName } from '../generated/task-types.ts'
import { TASK_FAMILIES } from '../tasks/model-families.ts'
import { ANONYMOUS } from '../spend/callers.ts'
import type { UnitCounts } from '../spend/spend-units.ts'
import { BoundedLabel, OTHER, type KnownValue } from './bounded-label.ts'
import { SummedCounter } from './summed-counter.ts'

/** `audio` and `image` are the parts of `prompt` that were audio or images; `reasoning` is part of `completion`. */
export type TokenKind = 'prompt' | 'completion' | 'reasoning' | 'cached' | 'audio' | 'image'

export type TokenCounts = Partial<Record<TokenKind, number | undefined>>

/** How images were drawn, for their price: the size and quality used, the tokens where reported. */
export interface ImageSettings {
  size: string
  quality: string | undefined
  tokens?: TokenCounts | undefined
}

/** What a task reports about the work it had OpenAI do, once per OpenAI call. */
export interface UsageRecorder {
  tokens(model: string, counts: TokenCounts): void
  /** Text spoken; the tokens where the answer reports them. */
  speechCharacters(model: string, characters: number, tokens?: TokenCounts): void
  /** Audio transcribed: its seconds and tokens where the answer reports them. */
  audioInput(model: string, bytes: number, seconds?: number, tokens?: TokenCounts): void
  images(model: string, count: number, settings?: ImageSettings): void
}

/** Called by the upstream client for every OpenAI call, with the deployment it went to. */
export interface UpstreamObserver {
  response(operation: string, status: number, seconds: number, deployment: string): void
  failure(operation: string, code: string, deployment: string): void
  retry(operation: string, deployment: string): void
  /** A deployment stopped taking calls: a rate limit's cool-down, or an open circuit. */
  unavailable(deployment: string, why: 'cool-down' | 'circuit-open'): void
}

/** Each deployment's state now, read at every scrape. */
export interface DeploymentGauges {
  name: string
  inFlight: number
  available: boolean
  circuitOpen: boolean
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/** Distinct models a task's metrics name at most; more (a compatible server takes any name) are `other`. */
export const MAX_MODELS_PER_TASK = 100
/** Distinct callers the spend metrics name at most; callers paying with their own keys past it are `other`. */
const MAX_CALLERS = 1_100
/** Distinct transport error codes named at most: Node's and undici's are a few dozen. */
const MAX_TRANSPORT_CODES = 50
// Node's and undici's error codes (ECONNRESET, EAI_AGAIN, UND_ERR_SOCKET, ERR_INVALID_URL, ABORT_ERR).
const TRANSPORT_CODE = /^(?:E[A-Z0-9_]{2,30}|UND_ERR_[A-Z_]{1,40}|ERR_[A-Z0-9_]{1,60}|ABORT_ERR|UNKNOWN)$/
// HTTP's usual methods; WebDAV's and made-up ones (Node parses some thirty) are `other`.
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
// OpenAI's usual statuses, those upstream-errors.ts tells apart among them; others by class.
const NAMED_UPSTREAM_STATUSES = new Map(
  [200, 201, 204, 400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 500, 501, 502, 503, 504].map((s) => [s, String(s)]),
)

/** An upstream's status as a label: a named one, else its class (`4xx` matches `4..` too). */
function upstreamStatusLabel(status: number): string {
  const named = NAMED_UPSTREAM_STATUSES.get(status)
  if (named) return named
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : OTHER
}

export interface ServiceMetricsOptions {
  /** OpenAI calls open now. */
  upstreamInFlight: () => number
  /** The deployments' state now. */
  deployments?: () => DeploymentGauges[]
  /** Models named besides each task's families (src/tasks/model-families.ts): ALLOWED_MODELS' entries. */
  knownModels?: KnownValue[]
  /** The callers the configuration names. */
  knownCallers?: string[]
}

/** Counts one call's spend: `nanoUsd` undefined when its cost is unknown. */
export type SpendObserver = (spender: string, model: string, units: UnitCounts, nanoUsd: number | undefined) => void

/**
 * The service's Prometheus metrics, in a registry of its own (several apps can live in one
 * process, as in the tests). Names follow Prometheus conventions: *_total counters, *_seconds.
 */
export class ServiceMetrics {
  readonly registry = new Registry()
  readonly #requests: SummedCounter<'route' | 'method' | 'status'>
  readonly #requestSeconds: Histogram<'route' | 'method' | 'status'>
  readonly #inFlight: Gauge
  readonly #upstreamSeconds: Histogram<'operation' | 'status' | 'deployment'>
  readonly #upstreamErrors: Counter<'operation' | 'status' | 'deployment'>
  readonly #upstreamRetries: Counter<'operation' | 'deployment'>
  readonly #unavailable: Counter<'deployment' | 'reason'>
  readonly #tokens: SummedCounter<'task' | 'model' | 'kind'>
  readonly #speechCharacters: Counter<'model'>
  readonly #audioBytes: Counter<'model'>
  readonly #audioSeconds: Counter<'model'>
  readonly #images: Counter<'model'>
  readonly #clientWriteTimeouts: Counter
  readonly #knownModels: KnownValue[]
  readonly #spenders: BoundedLabel
  readonly #costNanoUsd: SummedCounter<'caller' | 'task' | 'model'>
  readonly #usage: SummedCounter<'caller' | 'task' | 'model' | 'unit'>
  readonly #unpricedCalls: SummedCounter<'caller' | 'task' | 'model'>
  readonly #modelLabels = new Map<TaskName, BoundedLabel>()
  // Values from callers and from the upstream, bounded (bounded-label.ts).
  readonly #methods = new BoundedLabel(HTTP_METHODS, HTTP_METHODS.length)
  readonly #transportCodes = new BoundedLabel([(code) => TRANSPORT_CODE.test(code)], MAX_TRANSPORT_CODES)

  constructor({
    upstreamInFlight,
    deployments = () => [],
    knownModels = [],
    knownCallers = [],
  }: ServiceMetricsOptions) {
    this.#knownModels = knownModels
    // Named callers are bounded by the configuration; callers paying with their own keys are not.
    this.#spenders = new BoundedLabel([...knownCallers, ANONYMOUS, (name) => name.startsWith('own-key:')], MAX_CALLERS)
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.#requests = new SummedCounter({
      name: 'openai_tasks_http_requests_total',
      help: 'HTTP requests answered, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    })
    this.#requestSeconds = new Histogram({
      name: 'openai_tasks_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (for streams: to the end of the stream)',
      labelNames: ['route', 'method', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#inFlight = new Gauge({
      name: 'openai_tasks_http_requests_in_flight',
      help: 'HTTP requests being answered now',
      registers,
    })
    // eslint-disable-next-line no-new -- registers itself; read through the registry only
    new Gauge({
      name: 'openai_tasks_upstream_requests_in_flight',
      help: 'OpenAI calls open now (a stream until its end)',
      registers,
      collect() {
        this.set(upstreamInFlight())
      },
    })
    this.#upstreamSeconds = new Histogram({
      name: 'openai_tasks_upstream_request_duration_seconds',
      help: "Time until OpenAI's response headers, by operation, upstream status and deployment",
      labelNames: ['operation', 'status', 'deployment'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#upstreamErrors = new Counter({
      name: 'openai_tasks_upstream_errors_total',
      help: 'Failed OpenAI calls, by operation, upstream status (or transport error code) and deployment',
      labelNames: ['operation', 'status', 'deployment'],
      registers,
    })
    this.#upstreamRetries = new Counter({
      name: 'openai_tasks_upstream_retries_total',
      help: 'OpenAI calls sent again, to another deployment or after a wait, by operation and the deployment that failed',
      labelNames: ['operation', 'deployment'],
      registers,
    })
    this.#unavailable = new Counter({
      name: 'openai_tasks_deployment_unavailable_total',
      help: 'Times a deployment stopped taking calls, by reason: cool-down (a rate limit) or circuit-open (failures)',
      labelNames: ['deployment', 'reason'],
      registers,
    })
    const gauge = (name: string, help: string, value: (d: DeploymentGauges) => number): void => {
      // eslint-disable-next-line no-new -- registers itself; read through the registry only
      new Gauge({
        name,
        help,
        labelNames: ['deployment'],
        registers,
        collect() {
          this.reset()
          for (const d of deployments()) this.set({ deployment: d.name }, value(d))
        },
      })
    }
    gauge('openai_tasks_deployment_requests_in_flight', 'Calls open on each deployment now', (d) => d.inFlight)
    gauge(
      'openai_tasks_deployment_available',
      'Whether a deployment takes calls now (1) or is in cool-down, open circuit or at its max-concurrent (0)',
      (d) => Number(d.available),
    )
    gauge(
      'openai_tasks_deployment_circuit_open',
      "Whether a deployment's circuit is open (1) after consecutive failures",
      (d) => Number(d.circuitOpen),
    )
    this.#tokens = new SummedCounter({
      name: 'openai_tasks_tokens_total',
      help: 'Tokens OpenAI reported, by task, model and kind (prompt, completion, reasoning, cached)',
      labelNames: ['task', 'model', 'kind'],
      registers,
    })
    this.#speechCharacters = new Counter({
      name: 'openai_tasks_speech_characters_total',
      help: 'Characters sent to text to speech, by model',
      labelNames: ['model'],
      registers,
    })
    this.#audioBytes = new Counter({
      name: 'openai_tasks_audio_input_bytes_total',
      help: 'Audio bytes sent for speech recognition, by model',
      labelNames: ['model'],
      registers,
    })
    this.#audioSeconds = new Counter({
      name: 'openai_tasks_audio_input_seconds_total',
      help: 'Seconds of audio transcribed, where OpenAI reports them, by model',
      labelNames: ['model'],
      registers,
    })
    this.#clientWriteTimeouts = new Counter({
      name: 'openai_tasks_client_write_timeouts_total',
      help: 'Connections cut off because their client stopped reading for CLIENT_WRITE_TIMEOUT_MS',
      registers,
    })
    // Summed in integer nano-dollars, as the bills count them; dollars when scraped.
    this.#costNanoUsd = new SummedCounter({
      name: 'openai_tasks_cost_usd_total',
      help: 'What OpenAI calls cost, in US dollars, by caller, task and model (calls of unpriced models not included)',
      labelNames: ['caller', 'task', 'model'],
      registers,
      divisor: 1e9,
    })
    this.#usage = new SummedCounter({
      name: 'openai_tasks_usage_total',
      help: 'What OpenAI calls used, by caller, task, model and unit (input_tokens include cached ones, output_tokens reasoning ones)',
      labelNames: ['caller', 'task', 'model', 'unit'],
      registers,
    })
    this.#unpricedCalls = new SummedCounter({
      name: 'openai_tasks_unpriced_calls_total',
      help: 'OpenAI calls whose cost is unknown (the model has no price, or the answer did not say what it used)',
      labelNames: ['caller', 'task', 'model'],
      registers,
    })
    this.#images = new Counter({
      name: 'openai_tasks_images_generated_total',
      help: 'Images generated, by model',
      labelNames: ['model'],
      registers,
    })
  }

  clientWriteTimedOut(): void {
    this.#clientWriteTimeouts.inc()
  }

  requestStarted(): void {
    this.#inFlight.inc()
  }

  requestFinished(route: string, method: string, status: number, seconds: number): void {
    this.#inFlight.dec()
    const labels = { route, method: this.#methods.of(method), status: String(status) }
    this.#requests.add(`${route}\n${labels.method}\n${status}`, 1, () => labels)
    this.#requestSeconds.observe(labels, seconds)
  }

  // Deployment names come from the configuration: bounded by it.
  readonly upstream: UpstreamObserver = {
    response: (operation, status, seconds, deployment) => {
      const labels = { operation, status: upstreamStatusLabel(status), deployment }
      this.#upstreamSeconds.observe(labels, seconds)
      if (status >= 400) this.#upstreamErrors.inc(labels)
    },
    failure: (operation, code, deployment) =>
      this.#upstreamErrors.inc({ operation, status: this.#transportCodes.of(code), deployment }),
    retry: (operation, deployment) => this.#upstreamRetries.inc({ operation, deployment }),
    unavailable: (deployment, reason) => this.#unavailable.inc({ deployment, reason }),
  }

  /** Where a task counts its usage; models outside its families and `knownModels` are `other`. */
  usageFor(task: TaskName): UsageRecorder {
    const models = this.#modelsOf(task)
    const tokens = (model: string, counts: TokenCounts) => {
      const label = models.of(model)
      for (const kind in counts) {
        const count = counts[kind as TokenKind]
        if (count) this.#tokens.add(`${label}\n${kind}`, count, () => ({ task, model: label, kind }))
      }
    }
    return {
      tokens,
      speechCharacters: (model, characters, counts) => {
        this.#speechCharacters.inc({ model: models.of(model) }, characters)
        if (counts) tokens(model, counts)
      },
      audioInput: (model, bytes, seconds, counts) => {
        const labels = { model: models.of(model) }
        this.#audioBytes.inc(labels, bytes)
        if (seconds) this.#audioSeconds.inc(labels, seconds)
        if (counts) tokens(model, counts)
      },
      images: (model, count, settings) => {
        this.#images.inc({ model: models.of(model) }, count)
        if (settings?.tokens) tokens(model, settings.tokens)
      },
    }
  }

  #modelsOf(task: TaskName): BoundedLabel {
    let models = this.#modelLabels.get(task)
    if (!models) {
      models = new BoundedLabel([TASK_FAMILIES[task], ...this.#knownModels], MAX_MODELS_PER_TASK)
      this.#modelLabels.set(task, models)
    }
    return models
  }

  /** Where a task's spend is counted: by caller (bounded), model (as its usage) and unit. */
  spendFor(task: TaskName): SpendObserver {
    const models = this.#modelsOf(task)
    return (spender, model, units, nanoUsd) => {
      const caller = this.#spenders.of(spender)
      const label = models.of(model)
      const key = `${caller}\n${label}`
      const labels = () => ({ caller, task, model: label })
      if (nanoUsd === undefined) this.#unpricedCalls.add(key, 1, labels)
      else if (nanoUsd > 0) this.#costNanoUsd.add(key, nanoUsd, labels)
      for (const unit in units) {
        const value = units[unit as keyof UnitCounts]
        if (value) this.#usage.add(`${key}\n${unit}`, value, () => ({ caller, task, model: label, unit }))
      }
    }
  }
}
