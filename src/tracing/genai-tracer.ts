import {
  context,
  createContextKey,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type Span,
  type Tracer,
} from '@opentelemetry/api'
import { ClientClosedError, type DetailedError } from '../errors.ts'
import type {
  AttemptTarget,
  Attributes,
  BatchTrace,
  CallTracer,
  ModelAnswer,
  ModelCall,
  ModelCallSpan,
} from './model-call.ts'

/** Which resend an HTTP attempt is: read by the undici instrumentation's span hook. */
export const RESEND_COUNT = createContextKey('openai-tasks http.request.resend_count')

/**
 * GenAI CLIENT spans, one per OpenAI call (however many HTTP attempts it takes: each attempt is
 * undici's HTTP span beneath it), children of the active span: the request's or a batch item's.
 */
export interface GenAiTracerOptions {
  captureContent: boolean
  /** Where OpenAI calls go: `server.address` and `server.port`. */
  upstreamBaseUrl: string
}

export class GenAiTracer implements CallTracer {
  readonly captureContent: boolean
  readonly #tracer: Tracer
  readonly #options: GenAiTracerOptions
  readonly #common: Attributes
  readonly #links: Link[] | undefined

  constructor(tracer: Tracer, options: GenAiTracerOptions, links?: Link[], common?: Attributes) {
    this.#tracer = tracer
    this.#options = options
    this.captureContent = options.captureContent
    const url = new URL(options.upstreamBaseUrl)
    this.#common = common ?? {
      'gen_ai.provider.name': 'openai',
      'server.address': url.hostname,
      'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    }
    this.#links = links
  }

  start(call: ModelCall): ModelCallSpan {
    const parent = context.active()
    const span = this.#tracer.startSpan(
      `${call.operation} ${call.model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'gen_ai.operation.name': call.operation,
          ...this.#common,
          'gen_ai.request.model': call.model,
          ...call.attributes,
        },
        ...(this.#links && { links: this.#links }),
      },
      parent,
    )
    return new GenAiSpan(span, trace.setSpan(parent, span))
  }

  annotate(attributes: Attributes): void {
    trace.getActiveSpan()?.setAttributes(attributes as Record<string, string | number | boolean>)
  }

  annotator(): (attributes: Attributes) => void {
    const span = trace.getActiveSpan()
    return (attributes) => span?.setAttributes(attributes as Record<string, string | number | boolean>)
  }

  forCaller(caller: string): GenAiTracer {
    return new GenAiTracer(this.#tracer, this.#options, this.#links, { ...this.#common, 'openai_tasks.caller': caller })
  }

  batch(indexes: number[]): BatchTrace {
    return new BatchItems(this.#tracer, this, indexes)
  }

  /** The same tracer, its spans linked to `links`. */
  linkedTo(links: Link[]): GenAiTracer {
    return new GenAiTracer(this.#tracer, this.#options, links, this.#common)
  }
}

class GenAiSpan implements ModelCallSpan {
  readonly #span: Span
  readonly #context: Context
  readonly #started = performance.now()
  #firstChunk = false
  #ended = false

  constructor(span: Span, spanContext: Context) {
    this.#span = span
    this.#context = spanContext
  }

  attempt<T>(resendCount: number, send: () => T, where?: AttemptTarget): T {
    if (where) {
      this.#span.setAttributes({
        'openai_tasks.deployment': where.deployment,
        'server.address': where.serverAddress,
        'server.port': where.serverPort,
      })
    }
    return context.with(resendCount ? this.#context.setValue(RESEND_COUNT, resendCount) : this.#context, send)
  }

  firstChunk(): void {
    if (this.#firstChunk || this.#ended) return
    this.#firstChunk = true
    this.#span.setAttribute('gen_ai.response.time_to_first_chunk', (performance.now() - this.#started) / 1000)
  }

  end(answer: ModelAnswer): void {
    if (this.#ended) return
    this.#ended = true
    this.#span.setAttributes(answer)
    this.#span.end()
  }

  fail(err: unknown): void {
    if (this.#ended) return
    this.#ended = true
    failSpan(this.#span, err)
    this.#span.end()
  }

  cancelled(): void {
    if (!this.#ended) this.fail(new ClientClosedError())
  }
}

/** A span per batch item; an item's OpenAI calls are its children, or link to it when shared. */
class BatchItems implements BatchTrace {
  readonly #parent: Context
  readonly #calls: GenAiTracer
  readonly #spans: Span[]
  readonly #ended: boolean[]

  constructor(tracer: Tracer, calls: GenAiTracer, indexes: number[]) {
    this.#parent = context.active()
    this.#calls = calls
    this.#spans = indexes.map((index) =>
      tracer.startSpan(
        'batch item',
        { kind: SpanKind.INTERNAL, attributes: { 'openai_tasks.batch.item.index': index } },
        this.#parent,
      ),
    )
    this.#ended = this.#spans.map(() => false)
  }

  async item<T>(k: number, run: () => Promise<T>): Promise<T> {
    let outcome: unknown
    try {
      outcome = await context.with(trace.setSpan(this.#parent, this.#spans[k]!), run)
      return outcome as T
    } catch (err) {
      outcome = err
      throw err
    } finally {
      this.#end(k, outcome)
    }
  }

  group(ks: number[]): CallTracer {
    return this.#calls.linkedTo(ks.map((k) => ({ context: this.#spans[k]!.spanContext() })))
  }

  settle(outcomes: unknown[]): void {
    outcomes.forEach((outcome, k) => this.#end(k, outcome))
  }

  #end(k: number, outcome: unknown): void {
    if (this.#ended[k]) return
    this.#ended[k] = true
    const span = this.#spans[k]!
    if (outcome instanceof Error) failSpan(span, outcome)
    span.end()
  }
}

function failSpan(span: Span, err: unknown): void {
  span.setAttribute('error.type', errorType(err))
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) })
}

/**
 * `error.type`: OpenAI's HTTP status when it answered with an error, the transport's code when
 * the call failed on the way (ECONNRESET, UND_ERR_HEADERS_TIMEOUT), otherwise the service's own
 * error code (ERR_UPSTREAM_BAD_RESPONSE, ERR_CLIENT_CLOSED, …).
 */
export function errorType(err: unknown): string {
  const error = err as Partial<DetailedError> | null | undefined
  const detail = error?.details?.[0]
  if (detail?.['upstream-status'] !== undefined) return String(detail['upstream-status'])
  if (typeof detail?.['transport-code'] === 'string') return detail['transport-code']
  return typeof error?.code === 'string' ? error.code : '_OTHER'
}
