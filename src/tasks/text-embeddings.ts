import type OpenAI from 'openai'
import type { TextEmbeddingsInput, TextEmbeddingsOutput } from '../generated/task-types.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'

export function toEmbeddingRequest(input: TextEmbeddingsInput): OpenAI.EmbeddingCreateParams {
  return {
    model: input.model,
    input: input.text,
    encoding_format: 'float',
    ...(input.dimensions !== undefined && { dimensions: input.dimensions }),
  }
}

export async function runTextEmbeddings(input: TextEmbeddingsInput, ctx: TaskContext): Promise<TextEmbeddingsOutput> {
  const response = await ctx.upstream.postJson<OpenAI.CreateEmbeddingResponse>({
    ...ctx,
    path: '/embeddings',
    body: toEmbeddingRequest(input),
  })
  const embedding = response?.data?.[0]?.embedding
  if (!Array.isArray(embedding)) throw badUpstreamResponse('embedding response without data[0].embedding')
  ctx.usage.tokens(input.model, { prompt: response.usage?.prompt_tokens })
  return { embedding }
}
