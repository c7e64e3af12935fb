import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

export type TokenKind = 'prompt' | 'completion' | 'reasoning' | 'cached'

/** What a task reports about the work it had OpenAI do. */
export interface UsageRecorder {
  tokens(model: string, counts: Partial<Record<TokenKind, number>>): void
  speechCharacters(model: string, characters: number): void
  audioInput(model: string, bytes: number, seconds?: number): void
  images(model: string, count: number): void
}

/** Called by the upstream client for every OpenAI call. */
export interface UpstreamObserver {
  response(operation: string, status: number, seconds: number): void
  failure(operation: string, code: string): void
  retry(operation: string): void
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/**
 * The service's Prometheus metrics, in a registry of its own (several apps can live in one
 * process, as in the tests). Names follow Prometheus conventions: *_total counters, *_seconds.
 */
export class ServiceMetrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'route' | 'method' | 'status'>
  readonly #requestSeconds: Histogram<'route' | 'method' | 'status'>
  readonly #inFlight: Gauge
  readonly #upstreamSeconds: Histogram<'operation' | 'status'>
  readonly #upstreamErrors: Counter<'operation' | 'status'>
  readonly #upstreamRetries: Counter<'operation'>
  readonly #tokens: Counter<'task' | 'model' | 'kind'>
  readonly #speechCharacters: Counter<'model'>
  readonly #audioBytes: Counter<'model'>
  readonly #audioSeconds: Counter<'model'>
  readonly #images: Counter<'model'>
  readonly #clientWriteTimeouts: Counter

  constructor(upstreamInFlight: () => number) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.#requests = new Counter({
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
      help: "Time until OpenAI's response headers, by operation and upstream status",
      labelNames: ['operation', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#upstreamErrors = new Counter({
      name: 'openai_tasks_upstream_errors_total',
      help: 'Failed OpenAI calls, by operation and upstream status (or transport error code)',
      labelNames: ['operation', 'status'],
      registers,
    })
    this.#upstreamRetries = new Counter({
      name: 'openai_tasks_upstream_retries_total',
      help: 'OpenAI calls retried, by operation',
      labelNames: ['operation'],
      registers,
    })
    this.#tokens = new Counter({
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
    const labels = { route, method, status: String(status) }
    this.#requests.inc(labels)
    this.#requestSeconds.observe(labels, seconds)
  }

  readonly upstream: UpstreamObserver = {
    response: (operation, status, seconds) => {
      this.#upstreamSeconds.observe({ operation, status: String(status) }, seconds)
      if (status >= 400) this.#upstreamErrors.inc({ operation, status: String(status) })
    },
    failure: (operation, code) => this.#upstreamErrors.inc({ operation, status: code }),
    retry: (operation) => this.#upstreamRetries.inc({ operation }),
  }

  usageFor(task: string): UsageRecorder {
    return {
      tokens: (model, counts) => {
        for (const [kind, count] of Object.entries(counts)) {
          if (count) this.#tokens.inc({ task, model, kind }, count)
        }
      },
      speechCharacters: (model, characters) => this.#speechCharacters.inc({ model }, characters),
      audioInput: (model, bytes, seconds) => {
        this.#audioBytes.inc({ model }, bytes)
        if (seconds) this.#audioSeconds.inc({ model }, seconds)
      },
      images: (model, count) => this.#images.inc({ model }, count),
    }
  }
}
