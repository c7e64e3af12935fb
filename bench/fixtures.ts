/** Fixed OpenAI-shaped answers of the bench upstream, built once at start-up. */

const CREATED = 1741569952
const CHAT_ID = 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT'
const CHAT_MODEL = 'gpt-4o-mini-2024-07-18'
const FINGERPRINT = 'fp_06737a9306'
const ANSWER_PARTS = [
  'The quick brown fox',
  ' jumps over the lazy dog.',
  ' This sentence contains every letter of the English alphabet,',
  ' which is why it is often used to test typewriters and fonts.',
]

const USAGE = {
  prompt_tokens: 24,
  completion_tokens: 31,
  total_tokens: 55,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: 0,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0,
  },
}

export const CHAT_COMPLETION_JSON = Buffer.from(
  JSON.stringify({
    id: CHAT_ID,
    object: 'chat.completion',
    created: CREATED,
    model: CHAT_MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: ANSWER_PARTS.join(''), refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: USAGE,
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
  }),
)

function chunk(choices: unknown[], usage: unknown = null): Buffer {
  const event = {
    id: CHAT_ID,
    object: 'chat.completion.chunk',
    created: CREATED,
    model: CHAT_MODEL,
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
    choices,
    usage,
  }
  return Buffer.from(`data: ${JSON.stringify(event)}\n\n`)
}

/** One buffer per SSE event, written one by one: role, content deltas, finish, usage, [DONE]. */
export const CHAT_COMPLETION_EVENTS: Buffer[] = [
  chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]),
  ...ANSWER_PARTS.map((content) => chunk([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }])),
  chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]),
  chunk([], USAGE),
  Buffer.from('data: [DONE]\n\n'),
]

export const EMBEDDING_DIMENSIONS = 1536
const EMBEDDING_MODEL = 'text-embedding-3-small'

/** A deterministic 1536-float vector printed the way OpenAI prints float32 values. */
const EMBEDDING_VECTOR = JSON.stringify(
  Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => Number((Math.sin(i * 12.9898) * 0.05).toPrecision(9))),
)

const embeddingBodies = new Map<number, Buffer>()

/** The embeddings answer for `count` inputs (cached per count). */
export function embeddingsJson(count: number): Buffer {
  let body = embeddingBodies.get(count)
  if (!body) {
    const data = Array.from(
      { length: count },
      (_, index) => `{"object":"embedding","index":${index},"embedding":${EMBEDDING_VECTOR}}`,
    )
    const usage = { prompt_tokens: 8 * count, total_tokens: 8 * count }
    body = Buffer.from(
      `{"object":"list","data":[${data.join(',')}],"model":"${EMBEDDING_MODEL}","usage":${JSON.stringify(usage)}}`,
    )
    if (embeddingBodies.size < 64) embeddingBodies.set(count, body)
  }
  return body
}
