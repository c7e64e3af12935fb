// OpenAI-compatible servers (vLLM, Ollama, LM Studio): the stand-in's chat answers, reshaped as they answer.
import { chatReply } from './chat.ts'
import type { CustomHandler } from './types.ts'

/** How an OpenAI-compatible server's chat answer departs from OpenAI's. */
export interface CompatibleChatOptions {
  /** End a stream without `data: [DONE]` (the connection still closes cleanly). */
  noDone?: boolean
  /** Leave `index` out of every choice of every stream chunk. */
  noChoiceIndex?: boolean
  /** Leave `type` out of every tool call, answered whole or in fragments. */
  noToolType?: boolean
  /** `content: null` wherever a message or delta has no text. */
  nullContent?: boolean
  /** No `usage` anywhere, even when the request asked for it. */
  noUsage?: boolean
  /** Stream only the first this many events ([DONE] counted), then end cleanly: a cut-short answer. */
  events?: number
}

/** The parts of a chat completion or chunk that get reshaped. */
interface ChatAnswer {
  choices: Array<{ index?: number; delta?: ChatMessage; message?: ChatMessage }>
  usage?: unknown
}
interface ChatMessage {
  content?: string | null
  tool_calls?: Array<{ type?: string }>
}

/**
 * A custom handler answering /chat/completions as the stand-in does, reshaped the way some
 * OpenAI-compatible servers answer: `fake.enqueue({ kind: 'custom', handler: openAICompatibleChat({...}) })`.
 */
export function openAICompatibleChat(options: CompatibleChatOptions): CustomHandler {
  return (_req, res, recorded) => {
    const reply = chatReply(recorded.json ?? {})
    const reshaped = reply.streamed
      ? compatibleStream(reply.chunks, options)
      : [compatibleJson(reply.chunks[0]!, options)]
    const headers: Record<string, string> = { ...reply.headers }
    if (!reply.streamed) headers['content-length'] = String(reshaped[0]!.length)
    recorded.responseStatus = reply.status
    recorded.responseHeaders = headers
    recorded.responseBody = Buffer.concat(reshaped)
    res.writeHead(reply.status, headers)
    for (const chunk of reshaped) res.write(chunk)
    res.end()
  }
}

function compatibleStream(chunks: Buffer[], options: CompatibleChatOptions): Buffer[] {
  const out: Buffer[] = []
  for (const chunk of chunks) {
    const data = chunk
      .toString('utf8')
      .replace(/^data: /, '')
      .trimEnd()
    if (data === '[DONE]') {
      if (!options.noDone) out.push(chunk)
      continue
    }
    const event = JSON.parse(data) as ChatAnswer
    reshapeChoices(event, options, 'delta')
    if (options.noUsage) {
      delete event.usage
      if (!event.choices.length) continue
    }
    out.push(Buffer.from(`data: ${JSON.stringify(event)}\n\n`))
  }
  return options.events === undefined ? out : out.slice(0, options.events)
}

function compatibleJson(body: Buffer, options: CompatibleChatOptions): Buffer {
  const completion = JSON.parse(body.toString('utf8')) as ChatAnswer
  reshapeChoices(completion, options, 'message')
  if (options.noUsage) delete completion.usage
  return Buffer.from(JSON.stringify(completion))
}

function reshapeChoices(answer: ChatAnswer, options: CompatibleChatOptions, key: 'delta' | 'message'): void {
  for (const choice of answer.choices) {
    if (options.noChoiceIndex && key === 'delta') delete choice.index
    const message = choice[key] ?? {}
    if (options.nullContent && !message.content) message.content = null
    if (options.noToolType) for (const call of message.tool_calls ?? []) delete call.type
  }
}
