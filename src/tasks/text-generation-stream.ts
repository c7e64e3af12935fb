import type OpenAI from 'openai'
import { toErrorResponse, type AnyError } from '../error-response.ts'
import type { StreamResult } from '../streaming/stream-result.ts'
import type { TextGenerationInput, TextGenerationOutput } from '../generated/task-types.ts'
import { sseData, sseEvent, sseStream } from '../streaming/sse.ts'
import { badUpstreamResponse, errorFromTransport, errorFromUpstreamBody } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'
import { fromUsage, recordChatUsage, toChatRequest } from './text-generation.ts'

type Chunk = OpenAI.Chat.ChatCompletionChunk
type ToolCallFragment = NonNullable<Chunk['choices'][number]['delta']['tool_calls']>[number]

/** A `delta` event: new text of one choice, or fragments of its tool calls. */
export interface DeltaEvent {
  index: number
  text?: string
  'tool-calls'?: Array<{ index: number; type?: string; function?: { name?: string; arguments?: string } }>
}

/** Rebuilds the complete output, exactly as the JSON route returns it, from stream chunks. */
export class ChatStreamAccumulator {
  readonly #texts: string[] = []
  readonly #toolCalls: Array<Array<{ type: string; name: string; arguments: string }>> = []
  #usage: OpenAI.CompletionUsage | undefined

  get usage(): OpenAI.CompletionUsage | undefined {
    return this.#usage
  }

  add(chunk: Chunk): DeltaEvent[] {
    if (chunk.usage) this.#usage = chunk.usage
    const events: DeltaEvent[] = []
    for (const choice of chunk.choices ?? []) {
      const { index, delta } = choice
      this.#texts[index] ??= ''
      const event: DeltaEvent = { index }
      const text = delta?.content ?? delta?.refusal
      if (text) {
        this.#texts[index] += text
        event.text = text
      }
      if (delta?.tool_calls?.length) {
        event['tool-calls'] = delta.tool_calls.map((fragment) => this.#addToolCall(index, fragment))
      }
      if (event.text !== undefined || event['tool-calls']) events.push(event)
    }
    return events
  }

  #addToolCall(choice: number, fragment: ToolCallFragment): NonNullable<DeltaEvent['tool-calls']>[number] {
    const calls = (this.#toolCalls[choice] ??= [])
    const call = (calls[fragment.index] ??= { type: 'function', name: '', arguments: '' })
    if (fragment.type) call.type = fragment.type
    if (fragment.function?.name) call.name += fragment.function.name
    if (fragment.function?.arguments) call.arguments += fragment.function.arguments
    return {
      index: fragment.index,
      ...(fragment.type && { type: fragment.type }),
      ...(fragment.function && {
        function: {
          ...(fragment.function.name !== undefined && { name: fragment.function.name }),
          ...(fragment.function.arguments !== undefined && { arguments: fragment.function.arguments }),
        },
      }),
    }
  }

  output(): TextGenerationOutput {
    const output: TextGenerationOutput = { texts: Array.from(this.#texts, (text) => text ?? '') }
    const toolCalls = this.#toolCalls.flatMap((calls) => (calls ?? []).filter(Boolean))
    if (toolCalls.length) {
      output['tool-calls'] = toolCalls.map((c) => ({ type: c.type, function: { name: c.name, arguments: c.arguments } }))
    }
    if (this.#usage) output.usage = fromUsage(this.#usage)
    return output
  }
}

/**
 * Asks OpenAI for a streamed completion. Failures before OpenAI's headers throw (and become an
 * ordinary JSON error); after that, the SSE body carries `delta` events, then `output` (the JSON
 * route's answer) and `done`, or an `error` event — never a silent end.
 */
export async function streamTextGeneration(input: TextGenerationInput, ctx: TaskContext): Promise<StreamResult> {
  const body = { ...(await toChatRequest(input)), stream: true, stream_options: { include_usage: true } }
  const res = await ctx.upstream.post({
    ...ctx,
    path: '/chat/completions',
    body: JSON.stringify(body),
    accept: 'text/event-stream',
  })
  return {
    contentType: 'text/event-stream; charset=utf-8',
    body: sseStream(relay(res.body, ctx, input.model), ctx.settings.sseHeartbeatMs),
    headers: { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
  }
}

/** Our events for OpenAI's, as text: what one upstream read completed comes out as one string. */
async function* relay(upstreamBody: AsyncIterable<Uint8Array>, ctx: TaskContext, model: string): AsyncGenerator<string> {
  const accumulator = new ChatStreamAccumulator()
  let finished = false
  let events = ''
  try {
    // Read to the end rather than break at [DONE]: breaking out destroys the body with an error.
    for await (const batch of sseData(upstreamBody)) {
      for (const data of batch) {
        if (finished) continue
        if (data === '[DONE]') {
          finished = true
          continue
        }
        for (const delta of accumulator.add(parseChunk(data))) events += sseEvent('delta', delta)
      }
      if (events) yield events
      events = ''
    }
    if (!finished) throw badUpstreamResponse('the stream ended before OpenAI finished it')
    recordChatUsage(ctx, model, accumulator.usage)
    yield sseEvent('output', accumulator.output()) + sseEvent('done', {})
  } catch (err) {
    // Deltas taken from the read that failed still go out, before the error.
    if (events) yield events
    if (ctx.signal.aborted) return
    const error = isServiceError(err) ? err : errorFromTransport(err)
    ctx.log.warn({ err: error }, 'stream failed after it started')
    yield sseEvent('error', toErrorResponse(error as AnyError, ctx.requestId).body)
  }
}

function isServiceError(err: unknown): err is Error {
  return err instanceof Error && String((err as { code?: unknown }).code).startsWith('ERR_')
}

function parseChunk(data: string): Chunk {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    throw badUpstreamResponse(`unreadable stream event ${JSON.stringify(data.slice(0, 120))}`)
  }
  if (typeof parsed !== 'object' || parsed === null) throw badUpstreamResponse('stream event is not an object')
  if ('error' in parsed) throw errorFromUpstreamBody(parsed)
  return parsed as Chunk
}
