// POST /chat/completions: an echo of the last user message (or a forced tool call), whole or streamed.
import type OpenAI from 'openai'
import { nextId, splitText, tokenCount, unixNow } from './content.ts'
import { jsonReply, sseReply, type Reply } from './reply.ts'
import { sampleFromSchema } from './schema-sample.ts'

/** The request body; read defensively, as a stand-in started with `validate: false` gets anything. */
type ChatRequest = OpenAI.Chat.ChatCompletionCreateParams
type FunctionTool = OpenAI.Chat.ChatCompletionFunctionTool

/** One choice of the answer: its text (null for a tool call) and why it ended. */
interface Choice {
  content: string | null
  toolCall?: { id: string; name: string; arguments: string }
  finish: string
}

function partText(part: unknown): unknown {
  if (typeof part === 'string') return part
  if (typeof part !== 'object' || part === null) return ''
  const { type, text } = part as { type?: unknown; text?: unknown }
  return type === 'text' || typeof text === 'string' ? text : ''
}

/** The text of a message's content: a string, or its text parts joined by spaces. */
function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content
  if (Array.isArray(content)) return content.map(partText).filter(Boolean).join(' ')
  return ''
}

/** The tool the request forces a call of (`tool_choice` 'required' or a named function), if any. */
function forcedTool(body: ChatRequest): FunctionTool | undefined {
  const tools = Array.isArray(body.tools)
    ? body.tools.filter((t): t is FunctionTool => t?.type === 'function' && Boolean(t.function))
    : []
  const choice = body.tool_choice
  if (tools.length && choice === 'required') return tools[0]
  if (tools.length && choice && typeof choice === 'object' && choice.type === 'function') {
    return tools.find((t) => t.function.name === choice.function?.name)
  }
  return undefined
}

/** The `n` choices: echoes (as JSON when a response_format asks), cut at max tokens, or tool calls. */
function answerChoices(body: ChatRequest, userText: string): Choice[] {
  const n = typeof body.n === 'number' && body.n > 0 ? body.n : 1
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined
  const tool = forcedTool(body)
  const rf = body.response_format
  const contentFor = (i: number): string => {
    const suffix = i === 0 ? '' : ` (#${i + 1})`
    if (rf?.type === 'json_object') return JSON.stringify({ echo: userText + suffix })
    const schema = rf?.type === 'json_schema' ? rf.json_schema?.schema : undefined
    if (schema) return JSON.stringify(sampleFromSchema(schema))
    return `echo: ${userText}${suffix}`
  }
  const choices: Choice[] = []
  for (let i = 0; i < n; i++) {
    if (tool) {
      const args = JSON.stringify(sampleFromSchema(tool.function.parameters ?? { type: 'object', properties: {} }))
      choices.push({
        content: null,
        toolCall: { id: nextId('call_'), name: tool.function.name, arguments: args },
        finish: 'tool_calls',
      })
    } else {
      let content = contentFor(i)
      let finish = 'stop'
      if (typeof maxTokens === 'number' && tokenCount(content) > maxTokens) {
        content = content.slice(0, Math.max(0, maxTokens * 4))
        finish = 'length'
      }
      choices.push({ content, finish })
    }
  }
  return choices
}

export function chatReply(body: ChatRequest): Reply {
  const messages = Array.isArray(body.messages) ? body.messages : []
  const lastUser = [...messages].reverse().find((m) => m?.role === 'user')
  const choices = answerChoices(body, textOfContent(lastUser?.content))
  const promptTokens = messages.reduce((acc, m) => acc + 4 + tokenCount(textOfContent(m?.content)), 3)
  const completionTokens = choices.reduce(
    (acc, c) => acc + tokenCount(c.content ?? '') + (c.toolCall ? tokenCount(c.toolCall.arguments) + 5 : 0),
    0,
  )
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  }
  const id = nextId('chatcmpl-')
  const created = unixNow()
  const common = (object: string): Record<string, unknown> => ({
    id,
    object,
    created,
    model: body.model,
    service_tier: 'default',
    system_fingerprint: 'fp_fake0openai',
  })
  if (body.stream === true) {
    const includeUsage = body.stream_options?.include_usage === true
    return chatStream(
      { ...common('chat.completion.chunk'), ...(includeUsage ? { usage: null } : {}) },
      choices,
      includeUsage ? usage : undefined,
    )
  }
  return jsonReply(200, { ...common('chat.completion'), choices: choices.map(completionChoice), usage })
}

function completionChoice(c: Choice, index: number): object {
  const toolCalls = c.toolCall
    ? {
        tool_calls: [
          { id: c.toolCall.id, type: 'function', function: { name: c.toolCall.name, arguments: c.toolCall.arguments } },
        ],
      }
    : {}
  return {
    index,
    message: { role: 'assistant', content: c.content, refusal: null, annotations: [], ...toolCalls },
    logprobs: null,
    finish_reason: c.finish,
  }
}

/** The chunks of a stream: per choice a role delta, the text (or tool arguments) in pieces, the finish; then usage. */
function chatStream(base: Record<string, unknown>, choices: Choice[], usage: object | undefined): Reply {
  const chunk = (index: number, delta: object, finish: string | null = null): object => ({
    ...base,
    choices: [{ index, delta, logprobs: null, finish_reason: finish }],
  })
  const events: object[] = []
  choices.forEach((c, index) => {
    if (c.toolCall) {
      const { id: callId, name, arguments: args } = c.toolCall
      events.push(
        chunk(index, {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [{ index: 0, id: callId, type: 'function', function: { name, arguments: '' } }],
        }),
      )
      const half = Math.ceil(args.length / 2)
      const pieces = args.length > 2 ? [args.slice(0, half), args.slice(half)] : [args]
      for (const piece of pieces) {
        events.push(chunk(index, { tool_calls: [{ index: 0, function: { arguments: piece } }] }))
      }
    } else {
      events.push(chunk(index, { role: 'assistant', content: '', refusal: null }))
      for (const piece of splitText(c.content ?? '')) events.push(chunk(index, { content: piece }))
    }
    events.push(chunk(index, {}, c.finish))
  })
  if (usage) events.push({ ...base, choices: [], usage })
  return sseReply(events)
}
