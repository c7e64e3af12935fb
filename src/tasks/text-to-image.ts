import type OpenAI from 'openai'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { withDetails } from '../errors.ts'
import { sniffType } from '../media/base64-media.ts'
import { NotAcceptableError, type StreamNegotiation, type StreamResult } from '../streaming/stream-result.ts'
import type { TextToImageInput, TextToImageOutput } from '../generated/task-types.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'
import { imageAnswer, imageCall } from '../tracing/genai-attributes.ts'
import { traceCall } from '../tracing/model-call.ts'

/** libvips is loaded on the first image, not at start-up: it weighs some 20 MB of memory. */
async function loadSharp(): Promise<typeof import('sharp').default> {
  return (await import('sharp')).default
}

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
  const sharp = await loadSharp()
  let webp: Buffer
  try {
    webp = await sharp(Buffer.from(base64, 'base64')).webp().toBuffer()
  } catch (err) {
    throw badUpstreamResponse(`the generated image could not be decoded: ${(err as Error).message}`)
  }
  return `data:image/webp;base64,${webp.toString('base64')}`
}

async function generate(input: TextToImageInput, ctx: TaskContext): Promise<Array<{ b64: string; revisedPrompt: string }>> {
  const body = toImageRequest(input)
  const span = ctx.tracer?.start(imageCall(body, ctx.tracer.captureContent))
  const { images } = await traceCall(
    span,
    async () => {
      const response = await ctx.upstream.postJson<OpenAI.Images.ImagesResponse>({ ...ctx, path: '/images/generations', body, span })
      if (!Array.isArray(response?.data)) throw badUpstreamResponse('image response without data')
      const images = response.data.map((image) => {
        if (typeof image.b64_json !== 'string') throw badUpstreamResponse('image without b64_json')
        return { b64: image.b64_json, revisedPrompt: image.revised_prompt ?? '' }
      })
      return { response, images }
    },
    ({ response }) => imageAnswer(response),
  )
  ctx.usage.images(input.model ?? 'dall-e-2', images.length)
  return images
}

export async function runTextToImage(input: TextToImageInput, ctx: TaskContext): Promise<TextToImageOutput> {
  const images = await generate(input, ctx)
  const results = await Promise.all(
    images.map(async ({ b64, revisedPrompt }) => ({ image: await toWebpDataUri(b64), 'revised-prompt': revisedPrompt })),
  )
  return { results }
}

/**
 * One image as bytes: OpenAI's PNG untouched for image/png, otherwise converted to WebP as a
 * stream (base64 decoded in slices straight into sharp). The revised prompt, percent-encoded,
 * travels in the X-Revised-Prompt header.
 */
export async function streamTextToImage(
  input: TextToImageInput,
  ctx: TaskContext,
  negotiation: StreamNegotiation,
): Promise<StreamResult> {
  if ((input.n ?? 1) !== 1) {
    throw withDetails(new NotAcceptableError('an image body holds one image; ask for n = 1 or for application/json'), [
      { field: 'n', path: '/n', message: 'must be 1 when the answer is the image itself' },
    ])
  }
  const [image] = await generate(input, ctx)
  if (!image) throw badUpstreamResponse('image response with no image')
  const type = await sniffType(image.b64)
  if (type?.mime !== 'image/png') throw badUpstreamResponse(`expected a PNG from OpenAI, got ${type?.mime ?? 'unknown bytes'}`)
  const headers = { 'x-revised-prompt': encodeURIComponent(image.revisedPrompt) }
  const png = Readable.from(base64Slices(image.b64))
  if (negotiation.mediaType === 'image/png') return { contentType: 'image/png', body: png, headers }
  const sharp = await loadSharp()
  const webp = sharp().webp()
  pipeline(png, webp).catch((err: Error) => ctx.log.warn({ err }, 'image conversion failed'))
  return { contentType: 'image/webp', body: webp, headers }
}

/** Decodes base64 a slice at a time, so the whole image never sits decoded in one buffer. */
function* base64Slices(base64: string, sliceChars = 64 * 1024): Generator<Buffer> {
  for (let i = 0; i < base64.length; i += sliceChars) yield Buffer.from(base64.slice(i, i + sliceChars), 'base64')
}
