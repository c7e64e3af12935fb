import type OpenAI from 'openai'
import { invalidField } from '../errors.ts'
import type { TextGenerationInput, TextGenerationOutput } from '../generated/task-types.ts'
import type { TaskContext } from './task-context.ts'
import { toImageUrl } from './image-url.ts'
import { isReasoningModel } from './model-families.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import { chatAnswer, chatCall } from '../tracing/genai-attributes.ts'
import { traceCall } from '../tracing/model-call.ts'

type ChatRequest = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming
type ChatMessage = OpenAI.Chat.ChatCompletionMessageParam
type ContentPart = OpenAI.Chat.ChatCompletionContentPart
type HistoryTurn = NonNullable<TextGenerationInput['chat-history']>[number]
type ResponseFormat = NonNullable<TextGenerationInput['response-format']>

/**
 * Sampling settings reasoning models reject; they run at these values anyway, so the schema
 * defaults are left out for them rather than failing the request.
 */
const FIXED_FOR_REASONING = [
  ['temperature', 'temperature', 1],
  ['top-p', 'top_p', 1],
  ['presence-penalty', 'presence_penalty', 0],
  ['frequency-penalty', 'frequency_penalty', 0],
] as const

export async function toChatRequest(input: TextGenerationInput): Promise<ChatRequest> {
  // Image inputs are checked (and base64 sniffed) up front; the rest is built synchronously.
  const images = imageInputs(input)
  const urls = images.length ? await resolveImageUrls(images) : NO_IMAGES
  const reasoning = isReasoningModel(input.model)
  const request: ChatRequest = {
    model: input.model,
    messages: [...historyOrSystem(input, reasoning, urls), userTurn(input, urls)],
  }
  for (const [field, param, fixed] of FIXED_FOR_REASONING) {
    const value = input[field]
    if (value !== undefined && !(reasoning && value === fixed)) request[param] = value
  }
  if (input.n !== undefined) request.n = input.n
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

/** Where an image input sits (its JSON pointer) and what the caller gave. */
type ImageInput = [path: string, value: string]

const NO_IMAGES: ReadonlyMap<string, string> = new Map()

/** The JSON pointers of image inputs: the keys of the resolved URLs, and where errors point. */
const historyImagePath = (turn: number, part: number): string => `/chat-history/${turn}/content/${part}/image_url/url`
const imagePath = (index: number): string => `/images/${index}`

function imageInputs(input: TextGenerationInput): ImageInput[] {
  const found: ImageInput[] = []
  input['chat-history']?.forEach((turn, t) => {
    if (turn.role !== 'user' || typeof turn.content === 'string') return
    turn.content.forEach((part, i) => {
      if (part.type !== 'text') found.push([historyImagePath(t, i), part.image_url.url])
    })
  })
  input.images?.forEach((image, i) => found.push([imagePath(i), image]))
  return found
}

/** Each image input's `url` for OpenAI, by its path. */
async function resolveImageUrls(images: ImageInput[]): Promise<ReadonlyMap<string, string>> {
  const urls = await Promise.all(images.map(([path, value]) => toImageUrl(value, path)))
  return new Map(images.map(([path], k) => [path, urls[k]!]))
}

function historyOrSystem(input: TextGenerationInput, reasoning: boolean, urls: ReadonlyMap<string, string>): ChatMessage[] {
  const history = input['chat-history']
  const systemRole = reasoning ? 'developer' : 'system'
  if (!history?.length) {
    const system = input['system-message']
    return system === undefined ? [] : [{ role: systemRole, content: system }]
  }
  return history.map((turn, t) => historyTurn(turn, t, systemRole, urls))
}

function historyTurn(turn: HistoryTurn, t: number, systemRole: 'system' | 'developer', urls: ReadonlyMap<string, string>): ChatMessage {
  const { content } = turn
  if (turn.role === 'user') {
    if (typeof content === 'string') return { role: 'user', content }
    const parts = content.map(
      (part, i): ContentPart =>
        part.type === 'text'
          ? { type: 'text', text: part.text }
          : {
              type: 'image_url',
              image_url: {
                url: urls.get(historyImagePath(t, i))!,
                ...(part.image_url.detail && { detail: part.image_url.detail }),
              },
            },
    )
    return { role: 'user', content: parts }
  }
  const text =
    typeof content === 'string'
      ? content
      : content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n')
  return turn.role === 'assistant' ? { role: 'assistant', content: text } : { role: systemRole, content: text }
}

function userTurn(input: TextGenerationInput, urls: ReadonlyMap<string, string>): ChatMessage {
  const images = (input.images ?? []).map(
    (_image, i): ContentPart => ({ type: 'image_url', image_url: { url: urls.get(imagePath(i))! } }),
  )
  return { role: 'user', content: [{ type: 'text', text: input.prompt }, ...images] }
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
  // OpenAI's own wrapper {name, schema, strict, description}, or the bare schema.
  const wrapped = isObject(parsed.schema) && typeof parsed.name === 'string'
  const name = format.name ?? (wrapped ? parsed.name : 'response')
  const strict = format.strict ?? (wrapped ? parsed.strict : undefined)
  const description = wrapped ? parsed.description : undefined
  if (typeof name !== 'string' || !SCHEMA_NAME.test(name)) throw invalidField(path, 'name must be 1 to 64 letters, digits, _ or -')
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

function pickResponseFormat(input: TextGenerationInput): [string, ResponseFormat | undefined] {
  const viaFormat = input['response-format']
  const viaType = input['response-type']
  if (viaFormat && viaType) throw invalidField('/response-type', 'cannot be combined with response-format; give one')
  return viaType ? ['response-type', viaType] : ['response-format', viaFormat]
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function fromChatCompletion(completion: OpenAI.Chat.ChatCompletion): TextGenerationOutput {
  // A refusal is the model's reply too; the streamed output carries it the same way.
  const output: TextGenerationOutput = {
    texts: completion.choices.map((c) => c.message?.content ?? c.message?.refusal ?? ''),
  }
  const toolCalls = completion.choices.flatMap((c) => c.message?.tool_calls ?? [])
  if (toolCalls.length) {
    output['tool-calls'] = toolCalls.flatMap((call) =>
      call.type === 'function'
        ? [{ type: call.type, function: { name: call.function.name, arguments: call.function.arguments } }]
        : [],
    )
  }
  if (completion.usage) output.usage = fromUsage(completion.usage)
  return output
}

export function fromUsage(usage: OpenAI.CompletionUsage): NonNullable<TextGenerationOutput['usage']> {
  const result: NonNullable<TextGenerationOutput['usage']> = {
    'total-tokens': usage.total_tokens,
    'prompt-tokens': usage.prompt_tokens,
    'completion-tokens': usage.completion_tokens,
  }
  const prompt = usage.prompt_tokens_details
  if (prompt) {
    result['prompt-token-details'] = {
      'audio-tokens': prompt.audio_tokens ?? 0,
      'cached-tokens': prompt.cached_tokens ?? 0,
    }
  }
  const completion = usage.completion_tokens_details
  if (completion) {
    result['completion-token-details'] = {
      'accepted-prediction-tokens': completion.accepted_prediction_tokens ?? 0,
      'audio-tokens': completion.audio_tokens ?? 0,
      'reasoning-tokens': completion.reasoning_tokens ?? 0,
      'rejected-prediction-tokens': completion.rejected_prediction_tokens ?? 0,
    }
  }
  return result
}

export async function runTextGeneration(input: TextGenerationInput, ctx: TaskContext): Promise<TextGenerationOutput> {
  const body = await toChatRequest(input)
  const span = ctx.tracer?.start(chatCall(body, ctx.tracer.captureContent))
  const completion = await traceCall(
    span,
    async () => {
      const completion = await ctx.upstream.postJson<OpenAI.Chat.ChatCompletion>({ ...ctx, path: '/chat/completions', body, span })
      if (!Array.isArray(completion?.choices)) throw badUpstreamResponse('chat completion without choices')
      return completion
    },
    (completion) => chatAnswer(completion, ctx.tracer?.captureContent === true),
  )
  recordChatUsage(ctx, input.model, completion.usage)
  return fromChatCompletion(completion)
}

export function recordChatUsage(ctx: TaskContext, model: string, usage: OpenAI.CompletionUsage | null | undefined): void {
  if (!usage) return
  ctx.usage.tokens(model, {
    prompt: usage.prompt_tokens,
    completion: usage.completion_tokens,
    reasoning: usage.completion_tokens_details?.reasoning_tokens,
    cached: usage.prompt_tokens_details?.cached_tokens,
  })
}
