import type OpenAI from 'openai'
import { invalidField } from '../errors.ts'
import { BODY_BOUNDS, pathDeeperThan, TOO_DEEP } from '../schemas/body-validator.ts'
import type { TextGenerationInput, TextGenerationOutput } from '../generated/task-types.ts'
import type { TaskContext } from './task-context.ts'
import { toMessages } from './chat-messages.ts'
import { assertModelTakesFields } from './chat-model-fields.ts'
import { isReasoningModel } from './model-families.ts'
import { countOf } from './upstream-counts.ts'
import { CHAT_ANSWER_BYTES } from '../upstream/answer-limits.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import { chatAnswer, chatCall } from '../tracing/genai-attributes.ts'
import { traceCall } from '../tracing/model-call.ts'

type ChatRequest = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming
type ResponseFormat = NonNullable<TextGenerationInput['response-format']>

/** Fields OpenAI takes as they are, under its own name; each goes out only when given. */
const AS_GIVEN = [
  ['temperature', 'temperature'],
  ['top-p', 'top_p'],
  ['presence-penalty', 'presence_penalty'],
  ['frequency-penalty', 'frequency_penalty'],
  ['n', 'n'],
  ['reasoning-effort', 'reasoning_effort'],
  ['verbosity', 'verbosity'],
  ['stop', 'stop'],
  ['seed', 'seed'],
  ['parallel-tool-calls', 'parallel_tool_calls'],
] as const satisfies ReadonlyArray<readonly [keyof TextGenerationInput, keyof ChatRequest]>

export async function toChatRequest(input: TextGenerationInput): Promise<ChatRequest> {
  assertModelTakesFields(input)
  const reasoning = isReasoningModel(input.model)
  const request: ChatRequest = { model: input.model, messages: await toMessages(input, reasoning) }
  const fields = request as unknown as Record<string, unknown>
  for (const [field, param] of AS_GIVEN) {
    if (input[field] !== undefined) fields[param] = input[field]
  }
  if (input['max-tokens'] !== undefined) {
    if (reasoning) request.max_completion_tokens = input['max-tokens']
    else request.max_tokens = input['max-tokens']
  }
  const format = responseFormat(input)
  if (format) request.response_format = format
  if (input.prediction) request.prediction = { type: 'content', content: input.prediction.content }
  if (input.tools) {
    request.tools = input.tools.map(({ function: fn }) => ({
      type: 'function' as const,
      function: {
        name: fn.name,
        ...(fn.description !== undefined && { description: fn.description }),
        ...(fn.parameters !== undefined && { parameters: fn.parameters }),
        ...(fn.strict !== undefined && { strict: fn.strict }),
      },
    }))
  }
  const toolChoice = input['tool-choice']
  if (toolChoice !== undefined) {
    request.tool_choice =
      typeof toolChoice === 'string' ? toolChoice : { type: 'function', function: { name: toolChoice.function.name } }
  }
  return request
}

function responseFormat(input: TextGenerationInput): ChatRequest['response_format'] {
  const [field, format] = pickResponseFormat(input)
  if (!format) return undefined
  if (format.type !== 'json_schema') return { type: format.type }
  const path = `/${field}/json-schema`
  let parsed: unknown
  try {
    parsed = JSON.parse(format['json-schema'] ?? '')
  } catch (err) {
    throw invalidField(path, `is not valid JSON: ${(err as Error).message}`)
  }
  if (!isObject(parsed)) throw invalidField(path, 'must be a JSON object')
  if (pathDeeperThan(parsed, BODY_BOUNDS.maxDepth) !== undefined) {
    throw invalidField(path, TOO_DEEP)
  }
  // OpenAI's own wrapper {name, schema, strict, description}, or the bare schema.
  const wrapped = isObject(parsed.schema) && typeof parsed.name === 'string'
  const name = format.name ?? (wrapped ? parsed.name : 'response')
  const strict = format.strict ?? (wrapped ? parsed.strict : undefined)
  const description = wrapped ? parsed.description : undefined
  if (typeof name !== 'string' || !SCHEMA_NAME.test(name)) {
    throw invalidField(path, 'name must be 1 to 64 letters, digits, _ or -')
  }
  if (strict != null && typeof strict !== 'boolean') throw invalidField(path, 'strict must be a boolean')
  if (description != null && typeof description !== 'string') throw invalidField(path, 'description must be a string')
  return {
    type: 'json_schema',
    json_schema: {
      name,
      schema: (wrapped ? parsed.schema : parsed) as Record<string, unknown>,
      ...(typeof strict === 'boolean' && { strict }),
      ...(typeof description === 'string' && { description }),
    },
  }
}

const SCHEMA_NAME = /^[a-zA-Z0-9_-]{1,64}$/

/** The format under whichever of its two names was given; the schema refuses both at once. */
function pickResponseFormat(input: TextGenerationInput): [string, ResponseFormat | undefined] {
  const viaType = input['response-type']
  return viaType ? ['response-type', viaType] : ['response-format', input['response-format']]
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function fromChatCompletion(completion: OpenAI.Chat.ChatCompletion): TextGenerationOutput {
  // A refusal is the model's reply too; the streamed output carries it the same way.
  const output: TextGenerationOutput = {
    texts: completion.choices.map((c) => c.message?.content ?? c.message?.refusal ?? ''),
  }
  const toolCalls = completion.choices.flatMap((c) => c.message?.tool_calls ?? []).flatMap(functionCall)
  if (toolCalls.length) output['tool-calls'] = toolCalls
  if (completion.usage) output.usage = fromUsage(completion.usage)
  return output
}

type ToolCall = NonNullable<TextGenerationOutput['tool-calls']>[number]

/** A function call as the output lists it; OpenAI-compatible servers may leave out its `type`. */
function functionCall(call: OpenAI.Chat.ChatCompletionMessageToolCall): ToolCall[] {
  if ((call.type ?? 'function') !== 'function' || !('function' in call)) return []
  const { id, function: fn } = call
  return [{ ...(id != null && { id }), type: 'function', function: { name: fn.name, arguments: fn.arguments } }]
}

/** The usage as the output gives it; a count that is not a whole number is left out (a detail: 0). */
export function fromUsage(usage: OpenAI.CompletionUsage): NonNullable<TextGenerationOutput['usage']> {
  const result: NonNullable<TextGenerationOutput['usage']> = {
    'total-tokens': countOf(usage.total_tokens),
    'prompt-tokens': countOf(usage.prompt_tokens),
    'completion-tokens': countOf(usage.completion_tokens),
  }
  const prompt = usage.prompt_tokens_details
  if (prompt) {
    result['prompt-token-details'] = {
      'audio-tokens': countOf(prompt.audio_tokens) ?? 0,
      'cached-tokens': countOf(prompt.cached_tokens) ?? 0,
    }
  }
  const completion = usage.completion_tokens_details
  if (completion) {
    result['completion-token-details'] = {
      'accepted-prediction-tokens': countOf(completion.accepted_prediction_tokens) ?? 0,
      'audio-tokens': countOf(completion.audio_tokens) ?? 0,
      'reasoning-tokens': countOf(completion.reasoning_tokens) ?? 0,
      'rejected-prediction-tokens': countOf(completion.rejected_prediction_tokens) ?? 0,
    }
  }
  return result
}

/** A chat answer: from the cache when the caller asked for one (`max-age`) and it is there, else from OpenAI. */
export async function runTextGeneration(input: TextGenerationInput, ctx: TaskContext): Promise<TextGenerationOutput> {
  const body = await toChatRequest(input)
  const lookup = await ctx.cache?.lookup([body])
  const hit = lookup?.hits[0]
  // A hit cost nothing this time; its usage says what the answer took when it was made.
  if (hit !== undefined) return withCost(JSON.parse(hit.toString()) as TextGenerationOutput, 0)
  const span = ctx.tracer?.start(chatCall(body, ctx.tracer.captureContent))
  const completion = await traceCall(
    span,
    async () => {
      const completion = await ctx.upstream.postJson<OpenAI.Chat.ChatCompletion>({
        ...ctx,
        path: '/chat/completions',
        model: input.model,
        body,
        maxBytes: CHAT_ANSWER_BYTES,
        span,
      })
      assertReadable(completion)
      return completion
    },
    (completion) => chatAnswer(completion, ctx.tracer?.captureContent === true),
  )
  const cost = recordChatUsage(ctx, input.model, completion.usage)
  const output = fromChatCompletion(completion)
  await lookup?.keep([finishedAnswer(completion) ? JSON.stringify(output) : undefined])
  return withCost(output, cost)
}

/** An answer worth giving again: every choice ended by itself or with tool calls; no refusal, no cut. */
function finishedAnswer(completion: OpenAI.Chat.ChatCompletion): boolean {
  return (
    completion.choices.length > 0 &&
    completion.choices.every(
      (choice) =>
        (choice.finish_reason === 'stop' || choice.finish_reason === 'tool_calls') && !choice.message?.refusal,
    )
  )
}

/** The call's cost in dollars in its usage, where the model has a price; the stream's `output` says it too. */
export function withCost(output: TextGenerationOutput, costUsd: number | undefined): TextGenerationOutput {
  if (output.usage && costUsd !== undefined) output.usage['cost-usd'] = costUsd
  return output
}

/** The shape the mapping reads; anything else from OpenAI or a compatible server is a 502, not a crash. */
function assertReadable(completion: OpenAI.Chat.ChatCompletion): void {
  if (!Array.isArray(completion?.choices)) throw badUpstreamResponse('chat completion without choices')
  for (const choice of completion.choices as unknown[]) {
    if (!isObject(choice)) throw badUpstreamResponse('a chat completion choice that is not an object')
    const message = choice.message
    if (message == null) continue
    if (!isObject(message)) throw badUpstreamResponse('a chat completion message that is not an object')
    const calls = message.tool_calls
    if (calls != null && !(Array.isArray(calls) && calls.every((call) => isObject(call) && isObject(call.function)))) {
      throw badUpstreamResponse('chat completion tool calls that are not function calls')
    }
  }
}

export function recordChatUsage(
  ctx: TaskContext,
  model: string,
  usage: OpenAI.CompletionUsage | null | undefined,
): number | undefined {
  // No usage is counted too: the call's cost is then unknown, not nothing.
  return ctx.usage.tokens(model, {
    prompt: countOf(usage?.prompt_tokens),
    completion: countOf(usage?.completion_tokens),
    reasoning: countOf(usage?.completion_tokens_details?.reasoning_tokens),
    cached: countOf(usage?.prompt_tokens_details?.cached_tokens),
  })
}
