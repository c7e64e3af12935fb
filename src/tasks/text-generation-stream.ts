import type { KeysInUse } from '../upstream/redact-secrets.ts'
import { Readable } from 'node:stream'
import type OpenAI from 'openai'
import type { CacheLookup } from '../cache/task-cache.ts'
import type { StreamResult } from '../streaming/stream-result.ts'
import type { TextGenerationInput, TextGenerationOutput } from '../generated/task-types.ts'
import { EVENT_STREAM_HEADERS, EVENT_STREAM_TYPE, relaySse, sseEvent, type SseRelay } from '../streaming/sse.ts'
import { chatCall, chatStreamAnswer, type StreamedChoice } from '../tracing/genai-attributes.ts'
import { traceHeaders, type ModelCallSpan } from '../tracing/model-call.ts'
import { CHAT_STREAM_BYTES, TOOL_CALLS_PER_CHOICE } from '../upstream/answer-limits.ts'
import { badUpstreamResponse, parseStreamEvent } from '../upstream/upstream-errors.ts'
import { streamFailureEvent } from './stream-failure.ts'
import type { TaskContext } from './task-context.ts'
import { fromUsage, recordChatUsage, toChatRequest, withCost } from './text-generation.ts'

type Chunk = OpenAI.Chat.ChatCompletionChunk
type ToolCallFragment = NonNullable<Chunk['choices'][number]['delta']['tool_calls']>[number]

/** A `delta` event: new text of one choice, or fragments of its tool calls. */
export interface DeltaEvent {
  index: number
  text?: string
  'tool-calls'?: ToolCallDelta[]
}

type ToolCallDelta = { index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }
type ToolCall = { id: string | undefined; type: string; name: string; arguments: string }

/** `sseEvent('delta', { index, text })`, written without serialising an object per token. */
function textDelta(index: number, text: string): string {
  return `event: delta\ndata: {"index":${index},"text":${JSON.stringify(text)}}\n\n`
}

/** Whether `index` is a whole number from 0 to `bound` - 1 (`>>> 0` leaves only those unchanged). */
function isIndexBelow(index: unknown, bound: number): index is number {
  return (index as number) >>> 0 === index && index < bound
}

/** An index as an error message shows it: a number as is, anything else by its type alone. */
function shownIndex(index: unknown): string {
  return typeof index === 'number' ? String(index) : `of type ${typeof index}`
}

/**
 * Rebuilds the complete output, exactly as the JSON route returns it, from stream chunks. The
 * indexes come from the upstream and size its arrays: a choice index must be one of the `choices`
 * asked for and a tool call's below TOOL_CALLS_PER_CHOICE, or the chunk is a 502.
 */
export class ChatStreamAccumulator {
  readonly #choices: number
  readonly #texts: string[] = []
  readonly #toolCalls: ToolCall[][] = []
  /** Per choice: whether its `finish_reason` came. */
  readonly #finished: boolean[] = []
  readonly #finishReasons: string[] = []
  #refused = false
  #usage: OpenAI.CompletionUsage | undefined
  #id: string | undefined
  #model: string | undefined

  constructor(choices: number) {
    this.#choices = choices
  }

  get usage(): OpenAI.CompletionUsage | undefined {
    return this.#usage
  }

  /** Whether each of the choices asked for has finished. */
  finished(): boolean {
    for (let i = 0; i < this.#choices; i++) if (!this.#finished[i]) return false
    return true
  }

  /** Takes one chunk; returns its `delta` events as SSE text ('' when it has none). */
  add(chunk: Chunk): string {
    if (chunk.usage) this.#usage = chunk.usage
    this.#id ??= chunk.id
    this.#model ??= chunk.model
    let events = ''
    for (const choice of chunk.choices ?? []) {
      // OpenAI-compatible servers that only ever make one choice may leave out its index.
      const index = choice.index ?? 0
      if (!isIndexBelow(index, this.#choices)) {
        throw badUpstreamResponse(`a choice index ${shownIndex(index)}, not one of the ${this.#choices} asked for`)
      }
      const { delta } = choice
      this.#texts[index] ??= ''
      this.#finished[index] ||= choice.finish_reason != null
      if (choice.finish_reason) this.#finishReasons[index] = choice.finish_reason
      const text = delta?.content ?? delta?.refusal
      if (delta?.refusal) this.#refused = true
      if (text) this.#texts[index] += text
      if (delta?.tool_calls?.length) {
        const event: DeltaEvent = { index }
        if (text) event.text = text
        event['tool-calls'] = delta.tool_calls.map((fragment) => this.#addToolCall(index, fragment))
        events += sseEvent('delta', event)
      } else if (text) {
        events += textDelta(index, text)
      }
    }
    return events
  }

  #addToolCall(choice: number, fragment: ToolCallFragment): ToolCallDelta {
    const calls = (this.#toolCalls[choice] ??= [])
    const position = fragment.index ?? positionOf(calls, fragment.id)
    if (!isIndexBelow(position, TOOL_CALLS_PER_CHOICE)) {
      throw badUpstreamResponse(`a tool call index ${shownIndex(position)}, not one below ${TOOL_CALLS_PER_CHOICE}`)
    }
    const call = (calls[position] ??= { id: undefined, type: 'function', name: '', arguments: '' })
    if (fragment.id) call.id = fragment.id
    if (fragment.type) call.type = fragment.type
    if (fragment.function?.name) call.name += fragment.function.name
    if (fragment.function?.arguments) call.arguments += fragment.function.arguments
    // Assigned in the order the event lists them, rather than spread: a fragment per token.
    const event: ToolCallDelta = { index: position }
    if (fragment.id) event.id = fragment.id
    if (fragment.type) event.type = fragment.type
    if (fragment.function) {
      const fn: NonNullable<ToolCallDelta['function']> = {}
      if (fragment.function.name !== undefined) fn.name = fragment.function.name
      if (fragment.function.arguments !== undefined) fn.arguments = fragment.function.arguments
      event.function = fn
    }
    return event
  }

  /** An answer worth giving again, as the JSON route's cache has it: every choice stopped by itself or with tool calls, none refused. */
  givesAgain(): boolean {
    if (this.#refused || !this.finished()) return false
    for (let i = 0; i < this.#choices; i++) {
      const reason = this.#finishReasons[i]
      if (reason !== 'stop' && reason !== 'tool_calls') return false
    }
    return true
  }

  /** What the GenAI span records of the whole stream. */
  streamed(): {
    id: string | undefined
    model: string | undefined
    usage: OpenAI.CompletionUsage | undefined
    choices: StreamedChoice[]
  } {
    const choices = Array.from(this.#texts, (text, index) => ({
      text: text ?? '',
      toolCalls: (this.#toolCalls[index] ?? []).filter(Boolean),
      finishReason: this.#finishReasons[index],
    }))
    return { id: this.#id, model: this.#model, usage: this.#usage, choices }
  }

  output(): TextGenerationOutput {
    const output: TextGenerationOutput = { texts: Array.from(this.#texts, (text) => text ?? '') }
    // Function calls only, as the JSON answer lists them.
    const toolCalls = this.#toolCalls.flatMap((calls) => (calls ?? []).filter((call) => call?.type === 'function'))
    if (toolCalls.length) {
      output['tool-calls'] = toolCalls.map(({ id, name, arguments: args }) => ({
        ...(id !== undefined && { id }),
        type: 'function',
        function: { name, arguments: args },
      }))
    }
    if (this.#usage) output.usage = fromUsage(this.#usage)
    return output
  }
}

/**
 * Where a tool call fragment without an `index` (some OpenAI-compatible servers) belongs: a new
 * `id` starts a new call, anything else continues the last one.
 */
function positionOf(calls: ToolCall[], id: string | undefined): number {
  if (id && !calls.some((call) => call?.id === id)) return calls.length
  return Math.max(0, calls.length - 1)
}

/**
 * Asks OpenAI for a streamed completion. Failures before OpenAI's headers throw (and become an
 * ordinary JSON error); after that, the SSE body carries `delta` events, then `output` (the JSON
 * route's answer) and `done`, or an `error` event — never a silent end.
 */
export async function streamTextGeneration(input: TextGenerationInput, ctx: TaskContext): Promise<StreamResult> {
  const request = await toChatRequest(input)
  // The JSON route's key: a stream and a JSON answer to one chat request share their entry.
  const lookup = await ctx.cache?.lookup([request])
  const hit = lookup?.hits[0]
  if (hit !== undefined) return replayed(JSON.parse(hit.toString()) as TextGenerationOutput)
  const body = { ...request, stream: true, stream_options: { include_usage: true } }
  const span = ctx.tracer?.start(chatCall(body, ctx.tracer.captureContent))
  const res = await traceHeaders(span, () =>
    ctx.upstream.postForEvents({
      ...ctx,
      path: '/chat/completions',
      model: input.model,
      body,
      maxBytes: CHAT_STREAM_BYTES,
      span,
    }),
  )
  // The relay ends the span with the stream: with its usage, or with what failed it.
  const relay = chatRelay(ctx, input.model, input.n ?? 1, span, () => estimatedTokens(body.messages), lookup)
  const relayed = relaySse(res.body, relay, {
    heartbeatMs: ctx.settings.sseHeartbeatMs,
    maxBytes: CHAT_STREAM_BYTES,
  })
  // Neither ended nor failed when the caller hung up: the span ends then, and what arrived is counted.
  relayed.onClose(() => {
    relay.count()
    span?.cancelled()
  })
  return { contentType: EVENT_STREAM_TYPE, body: relayed, headers: EVENT_STREAM_HEADERS }
}

/**
 * A cached answer as the stream OpenAI's would have become: one `delta` per choice with its whole
 * text, the function calls in one `delta` of choice 0 (the answer lists them without their
 * choice), then `output` at no cost and `done`.
 */
function replayed(output: TextGenerationOutput): StreamResult {
  let events = ''
  output.texts.forEach((text, index) => {
    if (text) events += textDelta(index, text)
  })
  const calls = output['tool-calls']
  if (calls?.length) {
    const fragments = calls.map((call, index) => ({ index, ...call }))
    events += sseEvent('delta', { index: 0, 'tool-calls': fragments })
  }
  events += sseEvent('output', withCost(output, 0)) + sseEvent('done', {})
  return { contentType: EVENT_STREAM_TYPE, body: Readable.from([events]), headers: EVENT_STREAM_HEADERS }
}

/**
 * Our events for OpenAI's: deltas, then `output` and `done` once OpenAI sent [DONE], or once its
 * body ended cleanly after every choice finished (OpenAI-compatible servers may send no [DONE]);
 * `error` otherwise.
 */
function chatRelay(
  ctx: TaskContext,
  model: string,
  choices: number,
  span: ModelCallSpan | undefined,
  promptTokens: () => number,
  lookup: CacheLookup | undefined,
): SseRelay & { count(): void } {
  const accumulator = new ChatStreamAccumulator(choices)
  const secrets = ctx.upstream.secretsOf(ctx)
  let finished = false
  let chunks = 0
  let counted = false
  // Once: OpenAI's usage when it came; for a stream cut short, the prompt estimated and a token per chunk.
  const count = () => {
    if (counted) return
    counted = true
    if (accumulator.usage) recordChatUsage(ctx, model, accumulator.usage)
    else if (chunks) ctx.usage.tokens(model, { prompt: promptTokens(), completion: chunks })
  }
  return {
    count,
    data(data) {
      // Read to the end after [DONE] rather than stop: stopping destroys the body with an error.
      if (finished) return ''
      span?.firstChunk()
      if (data === '[DONE]') {
        finished = true
        return ''
      }
      chunks++
      return accumulator.add(parseChunk(data, secrets))
    },
    end() {
      if (!finished && !accumulator.finished()) {
        throw badUpstreamResponse('the stream ended before OpenAI finished it')
      }
      counted = true
      const cost = recordChatUsage(ctx, model, accumulator.usage)
      span?.end({
        ...chatStreamAnswer(accumulator.streamed(), ctx.tracer?.captureContent === true),
        // The request's span has ended when a stream starts: its call's span says what it cost.
        'openai_tasks.cost_usd': cost,
      })
      const output = accumulator.output()
      // Kept only whole: a stream cut short never gets here.
      if (lookup && accumulator.givesAgain()) lookup.keep([JSON.stringify(output)]).catch(() => undefined)
      return sseEvent('output', withCost(output, cost)) + sseEvent('done', {})
    },
    fail(err) {
      count()
      return streamFailureEvent(ctx, span, err)
    },
  }
}

/** About four characters a token: what a stream cut short before OpenAI's usage is counted with. */
function estimatedTokens(messages: unknown): number {
  return Math.ceil(JSON.stringify(messages ?? '').length / 4)
}

function parseChunk(data: string, apiKey: KeysInUse): Chunk {
  const parsed = parseStreamEvent(data, apiKey)
  const { choices } = parsed as { choices?: unknown }
  if (choices != null && !(Array.isArray(choices) && choices.every(isChoice))) {
    throw badUpstreamResponse('stream event with choices that are not objects')
  }
  return parsed as Chunk
}

function isChoice(choice: unknown): boolean {
  if (typeof choice !== 'object' || choice === null) return false
  const { delta } = choice as { delta?: unknown }
  if (delta == null) return true
  if (typeof delta !== 'object') return false
  const calls = (delta as { tool_calls?: unknown }).tool_calls
  return calls == null || (Array.isArray(calls) && calls.every((call) => typeof call === 'object' && call !== null))
}
