import type OpenAI from 'openai'
import { invalidFields } from '../errors.ts'
import type { TextGenerationInput } from '../generated/task-types.ts'
import { toImageUrl } from './image-url.ts'

type ChatMessage = OpenAI.Chat.ChatCompletionMessageParam
type ContentPart = OpenAI.Chat.ChatCompletionContentPart
type HistoryTurn = NonNullable<TextGenerationInput['chat-history']>[number]
type TurnPart = Extract<HistoryTurn['content'], unknown[]>[number]
type InstructionRole = 'system' | 'developer'

/** Where an image input sits (its JSON pointer) and what the caller gave. */
type ImageInput = [path: string, value: string]

const NO_IMAGES: ReadonlyMap<string, string> = new Map()

/** The JSON pointers of image inputs: the keys of the resolved URLs, and where errors point. */
const historyImagePath = (turn: number, part: number): string => `/chat-history/${turn}/content/${part}/image_url/url`
const imagePath = (index: number): string => `/images/${index}`

/**
 * The conversation OpenAI gets: the history (or the system message), then the prompt as the
 * user's turn. `reasoning` models take system instructions as developer turns.
 */
export async function toMessages(input: TextGenerationInput, reasoning: boolean): Promise<ChatMessage[]> {
  const history = input['chat-history'] ?? []
  if (history.length) assertToolCallsAnswered(history)
  // Image inputs are checked (and base64 sniffed) up front; the rest is built synchronously.
  const images = imageInputs(input)
  const urls = images.length ? await resolveImageUrls(images) : NO_IMAGES
  const systemRole: InstructionRole = reasoning ? 'developer' : 'system'
  const messages = history.length
    ? history.map((turn, t) => historyTurn(turn, t, systemRole, urls))
    : systemMessage(input, systemRole)
  // After tool results, an empty prompt would be an empty user turn: the model answers them instead.
  const answersTools = history.at(-1)?.role === 'tool' && input.prompt === '' && !input.images?.length
  if (!answersTools) messages.push(userTurn(input, urls))
  return messages
}

function systemMessage(input: TextGenerationInput, role: InstructionRole): ChatMessage[] {
  const system = input['system-message']
  return system === undefined ? [] : [{ role, content: system }]
}

function imageInputs(input: TextGenerationInput): ImageInput[] {
  const found: ImageInput[] = []
  input['chat-history']?.forEach((turn, t) => {
    if (turn.role !== 'user' || !Array.isArray(turn.content)) return
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

function historyTurn(
  turn: HistoryTurn,
  t: number,
  systemRole: InstructionRole,
  urls: ReadonlyMap<string, string>,
): ChatMessage {
  const { content } = turn
  switch (turn.role) {
    case 'user':
      return { role: 'user', content: typeof content === 'string' ? content : userParts(content ?? [], t, urls) }
    case 'assistant': {
      const calls = turn['tool-calls']
      if (!calls) return { role: 'assistant', content: textOf(content) ?? '' }
      return {
        role: 'assistant',
        content: textOf(content) ?? null,
        tool_calls: calls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.function.name, arguments: call.function.arguments },
        })),
      }
    }
    case 'tool':
      return { role: 'tool', tool_call_id: turn['tool-call-id']!, content: textOf(content) ?? '' }
    case 'developer':
      return { role: 'developer', content: textOf(content) ?? '' }
    case 'system':
      return { role: systemRole, content: textOf(content) ?? '' }
  }
}

function userParts(parts: readonly TurnPart[], t: number, urls: ReadonlyMap<string, string>): ContentPart[] {
  return parts.map((part, i): ContentPart =>
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
}

/** The text of a turn of a role that takes text only: its text parts, one per line. */
function textOf(content: HistoryTurn['content']): string | undefined {
  if (content == null || typeof content === 'string') return content ?? undefined
  return content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n')
}

function userTurn(input: TextGenerationInput, urls: ReadonlyMap<string, string>): ChatMessage {
  const images = (input.images ?? []).map((_image, i): ContentPart => ({
    type: 'image_url',
    image_url: { url: urls.get(imagePath(i))! },
  }))
  return { role: 'user', content: [{ type: 'text', text: input.prompt }, ...images] }
}

/**
 * OpenAI refuses a tool turn that answers no call of the assistant turn right before it, and an
 * assistant turn whose calls are not each answered by the tool turns that follow it.
 */
function assertToolCallsAnswered(history: HistoryTurn[]): void {
  const problems: Array<[string, string]> = []
  // The calls of the last assistant turn still waiting for their tool turn: id → pointer.
  let waiting = new Map<string, string>()
  let caller = -1
  const closeCalls = (): void => {
    for (const path of waiting.values()) problems.push([path, 'has no tool turn answering it'])
    waiting = new Map()
    caller = -1
  }
  history.forEach((turn, t) => {
    if (turn.role === 'tool') {
      const id = turn['tool-call-id']!
      if (waiting.delete(id)) return
      const where =
        caller < 0
          ? 'a call of an assistant turn right before it'
          : `one of the unanswered tool-calls of chat-history ${caller}`
      problems.push([`/chat-history/${t}/tool-call-id`, `must answer ${where}`])
      return
    }
    closeCalls()
    const calls = turn.role === 'assistant' ? turn['tool-calls'] : undefined
    if (!calls) return
    caller = t
    calls.forEach((call, i) => waiting.set(call.id, `/chat-history/${t}/tool-calls/${i}/id`))
  })
  closeCalls()
  if (problems.length) throw invalidFields(problems)
}
