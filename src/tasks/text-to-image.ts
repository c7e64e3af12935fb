import type OpenAI from 'openai'
import sharp from 'sharp'
import type { TextToImageInput, TextToImageOutput } from '../generated/task-types.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'

/** GPT image models always answer in base64 and reject `response_format`. */
const ALWAYS_BASE64_MODEL = /^gpt-image/

export function toImageRequest(input: TextToImageInput): OpenAI.Images.ImageGenerateParams {
  const model = input.model ?? 'dall-e-2'
  return {
    model,
    prompt: input.prompt,
    ...(input.n !== undefined && { n: input.n }),
    ...(input.quality !== undefined && { quality: input.quality }),
    ...(input.size !== undefined && { size: input.size }),
    ...(input.style !== undefined && { style: input.style }),
    ...(!ALWAYS_BASE64_MODEL.test(model) && { response_format: 'b64_json' as const }),
  }
}

export async function toWebpDataUri(base64: string): Promise<string> {
  let webp: Buffer
  try {
    webp = await sharp(Buffer.from(base64, 'base64')).webp().toBuffer()
  } catch (err) {
    throw badUpstreamResponse(`the generated image could not be decoded: ${(err as Error).message}`)
  }
  return `data:image/webp;base64,${webp.toString('base64')}`
}

export async function runTextToImage(input: TextToImageInput, ctx: TaskContext): Promise<TextToImageOutput> {
  const response = await ctx.upstream.postJson<OpenAI.Images.ImagesResponse>({
    ...ctx,
    path: '/images/generations',
    body: toImageRequest(input),
  })
  if (!Array.isArray(response?.data)) throw badUpstreamResponse('image response without data')
  const results = await Promise.all(
    response.data.map(async (image) => {
      if (typeof image.b64_json !== 'string') throw badUpstreamResponse('image without b64_json')
      return { image: await toWebpDataUri(image.b64_json), 'revised-prompt': image.revised_prompt ?? '' }
    }),
  )
  return { results }
}
