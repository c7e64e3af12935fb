/**
 * The GenAI semantic conventions' attributes of each OpenAI call, read from the request body as
 * sent and from the answer. Prompts and completions only when the caller of these functions
 * passes `content` (the conventions' opt-in), structured in the conventions' message shape.
 */
import type OpenAI from 'openai'
import type { Attributes, ModelAnswer, ModelCall } from './model-call.ts'

type ChatRequest = OpenAI.Chat.ChatCompletionCreateParams
type ChatMessage = OpenAI.Chat.ChatCompletionMessageParam

/** One part of a message in the conventions' shape (`text`, `tool_call`, `uri`, …). */
type MessagePart = Record<string, unknown> & { type: string }

export function chatCall(body: ChatRequest, content: boolean): ModelCall {
  const format = body.response_format?.type
  return {
    operation: 'chat',
    model: body.model,
    attributes: {
      'gen_ai.request.temperature': body.temperature ?? undefined,
      'gen_ai.request.top_p': body.top_p ?? undefined,
      'gen_ai.request.max_tokens': body.max_completion_tokens ?? body.max_tokens ?? undefined,
      'gen_ai.request.frequency_penalty': body.frequency_penalty ?? undefined,
      'gen_ai.request.presence_penalty': body.presence_penalty ?? undefined,
      'gen_ai.request.seed': body.seed ?? undefined,
      'gen_ai.request.stop_sequences': typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined),
      'gen_ai.request.choice.count': body.n ?? undefined,
      'gen_ai.request.stream': body.stream ?? undefined,
      'gen_ai.output.type': format === 'json_object' || format === 'json_schema' ? 'json' : 'text',
      'gen_ai.input.messages': content ? body.messages.map(inputMessage) : undefined,
    },
  }
}

export function chatAnswer(completion: OpenAI.Chat.ChatCompletion, content: boolean): ModelAnswer {
  const choices = completion.choices
  return {
    'gen_ai.response.id': completion.id,
    'gen_ai.response.model': completion.model,
    'gen_ai.response.finish_reasons': choices.map((choice) => choice.finish_reason ?? ''),
    ...chatUsage(completion.usage),
    'gen_ai.output.messages': content
      ? choices.map((choice) =>
          outputMessage(
            choice.message?.content ?? choice.message?.refusal,
            choice.message?.tool_calls ?? [],
            choice.finish_reason,
          ),
        )
      : undefined,
  }
}

/** A streamed choice as the stream relay put it together. */
export interface StreamedChoice {
  text: string
  toolCalls: Array<{ type: string; name: string; arguments: string }>
  finishReason: string | undefined
}

export function chatStreamAnswer(
  stream: {
    id: string | undefined
    model: string | undefined
    usage: OpenAI.CompletionUsage | undefined
    choices: StreamedChoice[]
  },
  content: boolean,
): ModelAnswer {
  return {
    'gen_ai.response.id': stream.id,
    'gen_ai.response.model': stream.model,
    'gen_ai.response.finish_reasons': stream.choices.map((choice) => choice.finishReason ?? ''),
    ...chatUsage(stream.usage),
    'gen_ai.output.messages': content
      ? stream.choices.map((choice) =>
          outputMessage(
            choice.text,
            choice.toolCalls.map((call) => ({
              type: 'function',
              function: { name: call.name, arguments: call.arguments },
            })),
            choice.finishReason,
          ),
        )
      : undefined,
  }
}

function chatUsage(usage: OpenAI.CompletionUsage | null | undefined): Attributes {
  if (!usage) return {}
  return {
    'gen_ai.usage.input_tokens': usage.prompt_tokens,
    'gen_ai.usage.output_tokens': usage.completion_tokens,
    'gen_ai.usage.cache_read.input_tokens': usage.prompt_tokens_details?.cached_tokens,
    'gen_ai.usage.reasoning.output_tokens': usage.completion_tokens_details?.reasoning_tokens,
  }
}

function inputMessage(message: ChatMessage): { role: string; parts: MessagePart[] } {
  const parts = contentParts(message.content)
  if (message.role === 'assistant') {
    for (const call of message.tool_calls ?? []) parts.push(toolCallPart(call))
  }
  if (message.role === 'tool') {
    return { role: 'tool', parts: [{ type: 'tool_call_response', id: message.tool_call_id, response: textOf(parts) }] }
  }
  return { role: message.role, parts }
}

function contentParts(content: ChatMessage['content']): MessagePart[] {
  if (content == null) return []
  if (typeof content === 'string') return [{ type: 'text', content }]
  return content.map((part): MessagePart => {
    if (part.type === 'text') return { type: 'text', content: part.text }
    if (part.type === 'image_url') return imagePart(part.image_url.url)
    return { type: part.type }
  })
}

/** An image by its URL; inline images only by their type: a span is no place for their bytes. */
function imagePart(url: string): MessagePart {
  const inline = /^data:([^;,]+)/.exec(url)
  return inline
    ? { type: 'blob', modality: 'image', mime_type: inline[1] }
    : { type: 'uri', modality: 'image', uri: url }
}

function textOf(parts: MessagePart[]): string {
  return parts.map((part) => (part.type === 'text' ? String(part.content) : '')).join('')
}

type ToolCall = { id?: string; type: string; function?: { name: string; arguments: string } }

function toolCallPart(call: ToolCall): MessagePart {
  return {
    type: 'tool_call',
    ...(call.id && { id: call.id }),
    name: call.function?.name ?? call.type,
    arguments: call.function?.arguments,
  }
}

function outputMessage(
  text: string | null | undefined,
  toolCalls: ToolCall[],
  finishReason: string | null | undefined,
): object {
  const parts: MessagePart[] = text ? [{ type: 'text', content: text }] : []
  for (const call of toolCalls) parts.push(toolCallPart(call))
  return { role: 'assistant', parts, finish_reason: finishReason ?? '' }
}

/** A user turn of plain text, for the operations whose input is one text (speech, images). */
function userText(text: string): object[] {
  return [{ role: 'user', parts: [{ type: 'text', content: text }] }]
}

export function embeddingsCall(body: OpenAI.EmbeddingCreateParams): ModelCall {
  return {
    operation: 'embeddings',
    model: body.model,
    attributes: {
      'gen_ai.request.encoding_formats': body.encoding_format ? [body.encoding_format] : undefined,
      'gen_ai.embeddings.dimension.count': body.dimensions,
    },
  }
}

const RESPONSE_MODEL = /"model"\s*:\s*"([^"\\]*)"/
const PROMPT_TOKENS = /"prompt_tokens"\s*:\s*(\d+)/

/** Read from the answer's text: the embeddings route copies arrays out of it without parsing it. */
export function embeddingsAnswer(text: string): ModelAnswer {
  const tokens = PROMPT_TOKENS.exec(text)?.[1]
  return {
    'gen_ai.response.model': RESPONSE_MODEL.exec(text)?.[1],
    'gen_ai.usage.input_tokens': tokens === undefined ? undefined : Number(tokens),
  }
}

export function transcriptionCall(model: string, temperature: number | undefined, stream?: boolean): ModelCall {
  return {
    operation: 'speech_to_text',
    model,
    attributes: {
      'gen_ai.request.temperature': temperature,
      'gen_ai.request.stream': stream,
      'gen_ai.output.type': 'text',
    },
  }
}

/** A transcript, with the usage OpenAI reports beside JSON answers (tokens for gpt-4o models). */
interface Transcript {
  text: string
  usage?: { type?: string; input_tokens?: number; output_tokens?: number } | undefined
}

export function transcriptionAnswer(transcription: Transcript, content: boolean): ModelAnswer {
  const usage = transcription.usage
  return {
    ...(usage?.type === 'tokens' && {
      'gen_ai.usage.input_tokens': usage.input_tokens,
      'gen_ai.usage.output_tokens': usage.output_tokens,
    }),
    'gen_ai.output.messages': content
      ? [{ role: 'assistant', parts: [{ type: 'text', content: transcription.text }], finish_reason: 'stop' }]
      : undefined,
  }
}

export function speechCall(body: OpenAI.Audio.SpeechCreateParams, content: boolean): ModelCall {
  return {
    operation: 'text_to_speech',
    model: body.model,
    attributes: { 'gen_ai.output.type': 'speech', 'gen_ai.input.messages': content ? userText(body.input) : undefined },
  }
}

/** `model`: the one drawing, OpenAI's default when the request names none. */
export function imageCall(model: string, body: OpenAI.Images.ImageGenerateParams, content: boolean): ModelCall {
  return {
    operation: 'generate_content',
    model,
    attributes: {
      'gen_ai.output.type': 'image',
      'gen_ai.request.choice.count': body.n ?? undefined,
      'gen_ai.input.messages': content ? userText(body.prompt) : undefined,
    },
  }
}

export function imageAnswer(response: OpenAI.Images.ImagesResponse): ModelAnswer {
  return {
    'gen_ai.usage.input_tokens': response.usage?.input_tokens,
    'gen_ai.usage.output_tokens': response.usage?.output_tokens,
  }
}
