// POST /embeddings: a deterministic unit vector per input, as floats or base64.
import type OpenAI from 'openai'
import { embeddingFor, tokenCount } from './content.ts'
import { jsonReply, type Reply } from './reply.ts'

/** What each input embeds (its text, or the JSON of its token ids) and how many tokens it counts. */
function inputItems(input: unknown): Array<{ key: string; tokens: number }> {
  // string → 1; string[] → n; number[] (one token list) → 1; number[][] → n
  if (typeof input === 'string') return [{ key: input, tokens: tokenCount(input) }]
  if (!Array.isArray(input)) return []
  if (input.every((x: unknown) => typeof x === 'number')) return [{ key: JSON.stringify(input), tokens: input.length }]
  return input.map((x: unknown) =>
    typeof x === 'string'
      ? { key: x, tokens: tokenCount(x) }
      : { key: JSON.stringify(x), tokens: Array.isArray(x) ? x.length : 1 },
  )
}

export function embeddingsReply(body: OpenAI.EmbeddingCreateParams): Reply {
  const model = body.model
  const dims = typeof body.dimensions === 'number' ? body.dimensions : model === 'text-embedding-3-large' ? 3072 : 1536
  const items = inputItems(body.input)
  const base64 = body.encoding_format === 'base64'
  const data = items.map((it, index) => {
    const v = embeddingFor(model, it.key, dims)
    return {
      object: 'embedding',
      index,
      embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
    }
  })
  const tokens = items.reduce((a, it) => a + it.tokens, 0)
  return jsonReply(200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } })
}
