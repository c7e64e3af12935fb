/**
 * What the tasks and the upstream client see of tracing: GenAI spans for OpenAI calls, behind
 * interfaces with no OpenTelemetry import. With tracing off there is no tracer: every use is
 * `ctx.tracer?.…` or `span?.…`, so the attributes below are never even built.
 */
import { finished, type Readable } from 'node:stream'

/**
 * `gen_ai.operation.name`. `chat`, `embeddings` and `generate_content` (images) are the
 * conventions' values; speech and transcription have none yet, so they take the names proposed
 * for them (`text_to_speech`, `speech_to_text`). docs/observability.md lists the choice.
 */
export type GenAiOperation = 'chat' | 'embeddings' | 'generate_content' | 'text_to_speech' | 'speech_to_text'

/** Span attributes; undefined ones are left out, messages (opted in) are structured values. */
export type Attributes = Record<string, unknown>

/** One OpenAI call as the GenAI span starts it: the span is named `{operation} {model}`. */
export interface ModelCall {
  operation: GenAiOperation
  model: string
  attributes: Attributes
}

/** What the answer told: usage, the model that answered, and (opted in) the content. */
export type ModelAnswer = Attributes

/** The HTTP attempts of one call: each runs with the call's span as its parent. */
export interface AttemptScope {
  /** Sends attempt `resendCount` (0 for the first) inside the span, to the deployment named. */
  attempt<T>(resendCount: number, send: () => T, where?: AttemptTarget): T
}

/** Where an attempt goes: the span says where the call was last sent. */
export interface AttemptTarget {
  deployment: string
  serverAddress: string
  serverPort: number
}

/** The GenAI CLIENT span of one OpenAI call; it ends once, by whichever of these comes first. */
export interface ModelCallSpan extends AttemptScope {
  /** A stream's first chunk arrived (`gen_ai.response.time_to_first_chunk`). */
  firstChunk(): void
  end(answer: ModelAnswer): void
  fail(err: unknown): void
  /** The caller went away before the answer's end. */
  cancelled(): void
}

/** Starts GenAI spans under the active span (the request's, or a batch item's). */
export interface CallTracer {
  /** OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT asked for prompts and completions. */
  readonly captureContent: boolean
  start(call: ModelCall): ModelCallSpan
  /** Adds attributes to the active span: the request's (what the cache did, say). */
  annotate(attributes: Attributes): void
  /** Adds attributes to the span active now, whenever called later (a stream's end, say). */
  annotator(): (attributes: Attributes) => void
  /** The same tracer, its GenAI spans naming the caller (`openai_tasks.caller`). */
  forCaller(caller: string): CallTracer
  /** Spans for the items of a batch, `indexes` being their places in the request. */
  batch(indexes: number[]): BatchTrace
}

/** A span per batch item, children of the request's span. */
export interface BatchTrace {
  /** Runs item `k` (of the indexes given) inside its span, which ends with the run. */
  item<T>(k: number, run: () => Promise<T>): Promise<T>
  /** A tracer whose calls serve items `ks` together: their spans link to the items' spans. */
  group(ks: number[]): CallTracer
  /** Ends every item span still open with its outcome: an output, or the Error it met. */
  settle(outcomes: unknown[]): void
}

/**
 * The call `send()` makes, its span (when traced) ending with what `read` finds in the result, or
 * with the error `send` threw. Untraced, it is `send()` itself: no extra promise, no closure kept.
 */
export function traceCall<T>(
  span: ModelCallSpan | undefined,
  send: () => Promise<T>,
  read: (result: T) => ModelAnswer,
): Promise<T> {
  return span ? traced(span, send, read) : send()
}

async function traced<T>(span: ModelCallSpan, send: () => Promise<T>, read?: (result: T) => ModelAnswer): Promise<T> {
  try {
    const result = await send()
    if (read) span.end(read(result))
    return result
  } catch (err) {
    span.fail(err)
    throw err
  }
}

/**
 * For an answer relayed as it comes: the span fails with the error `send()` threw (before
 * OpenAI's headers), and otherwise goes on until the relay ends it.
 */
export function traceHeaders<T>(span: ModelCallSpan | undefined, send: () => Promise<T>): Promise<T> {
  return span ? traced(span, send) : send()
}

/** Ends `span` when an answer's body, relayed as it comes, has ended (or failed, or was dropped). */
export function endWithBody(span: ModelCallSpan, body: Readable, signal: AbortSignal): void {
  finished(body, (err) => {
    if (!err) span.end({})
    else if (signal.aborted) span.cancelled()
    else span.fail(err)
  })
}
