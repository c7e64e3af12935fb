import type OpenAI from 'openai'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { withDetails } from '../errors.ts'
import { sniffType } from '../media/base64-media.ts'
import { NotAcceptableError, type StreamNegotiation, type StreamResult } from '../streaming/stream-result.ts'
import type { TextToImageInput, TextToImageOutput } from '../generated/task-types.ts'
import { imagesAnswerBytes } from '../upstream/answer-limits.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import { refuseProblems } from './field-problems.ts'
import type { ImageSettings } from '../metrics/service-metrics.ts'
import { isDallE3, isGptImageModel } from './model-families.ts'
import { countOf } from './upstream-counts.ts'
import type { TaskContext } from './task-context.ts'
import { imageInputProblems, imageModelOf } from './text-to-image-checks.ts'
import { imageAnswer, imageCall } from '../tracing/genai-attributes.ts'
import { traceCall } from '../tracing/model-call.ts'

/** libvips is loaded on the first image, not at start-up: it weighs some 20 MB of memory. */
async function loadSharp(): Promise<typeof import('sharp').default> {
  return (await import('sharp')).default
}

type ImageFormat = NonNullable<TextToImageInput['output-format']>

const IMAGE_MIME: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' }

export function toImageRequest(input: TextToImageInput): OpenAI.Images.ImageGenerateParams {
  return {
    ...(input.model !== undefined && { model: input.model }),
    prompt: input.prompt,
    ...(input.n !== undefined && { n: input.n }),
    ...(input.quality !== undefined && { quality: input.quality }),
    ...(input.size !== undefined && { size: input.size }),
    ...(input.style !== undefined && { style: input.style }),
    ...(input.background !== undefined && { background: input.background }),
    ...(input['output-format'] !== undefined && { output_format: input['output-format'] }),
    ...(input['output-compression'] !== undefined && { output_compression: input['output-compression'] }),
    ...(input.moderation !== undefined && { moderation: input.moderation }),
    // GPT image models always answer in base64 and refuse `response_format`.
    ...(!isGptImageModel(imageModelOf(input)) && { response_format: 'b64_json' as const }),
  }
}

interface GeneratedImage {
  b64: string
  /** Empty when the model did not rewrite the prompt (all but dall-e-3); always well-formed UTF-16. */
  revisedPrompt: string
}

/**
 * The most X-Revised-Prompt holds, percent-encoded: Node's clients refuse response headers over
 * 16 KB in all. A longer prompt leaves the header out (a cut one would pass for the whole); the
 * JSON answer has it whole.
 */
const MAX_REVISED_PROMPT_HEADER_BYTES = 8 * 1024

/**
 * OpenAI's images for the input: from the cache when the caller asked for them (`max-age`) and
 * they are there, else drawn by OpenAI. Both routes keep and read the same entries: OpenAI's
 * base64 and revised prompts, before any conversion, so a JSON answer and an image body share them.
 */
async function generate(input: TextToImageInput, ctx: TaskContext): Promise<GeneratedImage[]> {
  const body = toImageRequest(input)
  const lookup = await ctx.cache?.lookup([body])
  const hit = lookup?.hits[0]
  // A hit cost nothing this time: no images are counted.
  if (hit !== undefined) return JSON.parse(hit.toString('utf8')) as GeneratedImage[]
  const images = await draw(input, body, ctx)
  await lookup?.keep([JSON.stringify(images)])
  return images
}

async function draw(
  input: TextToImageInput,
  body: OpenAI.Images.ImageGenerateParams,
  ctx: TaskContext,
): Promise<GeneratedImage[]> {
  const span = ctx.tracer?.start(imageCall(imageModelOf(input), body, ctx.tracer.captureContent))
  const { response, images } = await traceCall(
    span,
    async () => {
      const response = await ctx.upstream.postJson<OpenAI.Images.ImagesResponse>({
        ...ctx,
        path: '/images/generations',
        model: imageModelOf(input),
        body,
        maxBytes: imagesAnswerBytes(body.n ?? 1),
        span,
      })
      if (!Array.isArray(response?.data)) throw badUpstreamResponse('image response without data')
      const images = response.data.map((image): GeneratedImage => {
        if (typeof image?.b64_json !== 'string') throw badUpstreamResponse('image without b64_json')
        return { b64: image.b64_json, revisedPrompt: revisedPromptOf(image.revised_prompt) }
      })
      return { response, images }
    },
    ({ response }) => imageAnswer(response),
  )
  ctx.usage.images(imageModelOf(input), images.length, drawnWith(input, response))
  return images
}

/** The size and quality the images were drawn at (the answer says for GPT image models), and their tokens. */
function drawnWith(input: TextToImageInput, response: OpenAI.Images.ImagesResponse): ImageSettings {
  const model = imageModelOf(input)
  const usage = response.usage
  return {
    size: stringOr(response.size, input.size ?? '1024x1024'),
    // dall-e-3 draws `standard` unless told; dall-e-2 has one quality.
    quality: stringOr(response.quality, input.quality ?? (isDallE3(model) ? 'standard' : undefined)),
    tokens: usage && {
      prompt: countOf(usage.input_tokens),
      image: countOf(usage.input_tokens_details?.image_tokens),
      completion: countOf(usage.output_tokens),
    },
  }
}

function stringOr<T extends string | undefined>(value: unknown, fallback: T): string | T {
  return typeof value === 'string' && value !== 'auto' ? value : fallback
}

/** OpenAI's revised prompt as text the header and the JSON answer can carry: lone surrogates become U+FFFD. */
function revisedPromptOf(value: unknown): string {
  return typeof value === 'string' ? value.toWellFormed() : ''
}

/** X-Revised-Prompt, percent-encoded, unless it is over MAX_REVISED_PROMPT_HEADER_BYTES. */
function revisedPromptHeader(prompt: string): Record<string, string> {
  // Every UTF-16 unit encodes to one byte or more: a longer prompt is over without encoding it.
  if (prompt.length > MAX_REVISED_PROMPT_HEADER_BYTES) return {}
  const encoded = encodeURIComponent(prompt)
  return encoded.length > MAX_REVISED_PROMPT_HEADER_BYTES ? {} : { 'x-revised-prompt': encoded }
}

/** The image's type from its leading bytes; a 502 when they are no image OpenAI makes. */
async function drawnType(b64: string): Promise<string> {
  const type = await sniffType(b64)
  if (!type || !Object.values(IMAGE_MIME).includes(type.mime)) {
    throw badUpstreamResponse(`the generated image is ${type?.mime ?? 'not a recognisable image'}`)
  }
  return type.mime
}

/** A sharp pipeline to `mime`; JPEG has no alpha, so transparent areas become white, not libvips' black. */
async function converterTo(mime: string): Promise<import('sharp').Sharp> {
  const sharp = await loadSharp()
  if (mime === 'image/jpeg') return sharp().flatten({ background: '#ffffff' }).jpeg()
  return mime === 'image/png' ? sharp().png() : sharp().webp()
}

/** The image as a data URI of `mime`: OpenAI's bytes when they already are, converted otherwise. */
async function toDataUri(b64: string, mime: string): Promise<string> {
  if ((await drawnType(b64)) === mime) return `data:${mime};base64,${b64}`
  let converted: Buffer
  try {
    converted = await (await converterTo(mime)).end(Buffer.from(b64, 'base64')).toBuffer()
  } catch (err) {
    throw badUpstreamResponse(`the generated image could not be decoded: ${(err as Error).message}`)
  }
  return `data:${mime};base64,${converted.toString('base64')}`
}

/** The type an image is answered in: the `output-format` asked of OpenAI, else WebP or what Accept chose. */
function answerType(input: TextToImageInput, otherwise: string): string {
  const requested = input['output-format']
  return requested ? IMAGE_MIME[requested] : otherwise
}

export async function runTextToImage(input: TextToImageInput, ctx: TaskContext): Promise<TextToImageOutput> {
  refuseProblems(imageInputProblems(input))
  const images = await generate(input, ctx)
  const mime = answerType(input, IMAGE_MIME.webp)
  const results = await Promise.all(
    images.map(async ({ b64, revisedPrompt }) => ({
      image: await toDataUri(b64, mime),
      'revised-prompt': revisedPrompt,
    })),
  )
  return { results }
}

/**
 * One image as bytes, streamed (base64 decoded in slices): in the `output-format` asked of
 * OpenAI, or else in the type Accept chose (WebP, PNG or JPEG). OpenAI's bytes go out untouched
 * when they are in that type (its PNG, or the format it was asked for) and are converted
 * otherwise. The revised prompt, percent-encoded, travels in the X-Revised-Prompt header when
 * it fits in MAX_REVISED_PROMPT_HEADER_BYTES.
 */
export async function streamTextToImage(
  input: TextToImageInput,
  ctx: TaskContext,
  negotiation: StreamNegotiation,
): Promise<StreamResult> {
  refuseProblems(imageInputProblems(input))
  if ((input.n ?? 1) !== 1) {
    throw withDetails(new NotAcceptableError('an image body holds one image; ask for n = 1 or for application/json'), [
      { field: 'n', path: '/n', message: 'must be 1 when the answer is the image itself' },
    ])
  }
  const contentType = answerType(input, negotiation.mediaType)
  if (!negotiation.accepts(contentType)) {
    throw withDetails(
      new NotAcceptableError(`output-format ${input['output-format']} is ${contentType}, which Accept excludes`),
      [
        {
          field: 'output-format',
          path: '/output-format',
          message: `gives ${contentType}, not accepted by the Accept header`,
        },
      ],
    )
  }
  const [image] = await generate(input, ctx)
  if (!image) throw badUpstreamResponse('image response with no image')
  const drawn = await drawnType(image.b64)
  const headers = revisedPromptHeader(image.revisedPrompt)
  const bytes = Readable.from(base64Slices(image.b64))
  if (drawn === contentType) return { contentType, body: bytes, headers }
  const converter = await converterTo(contentType)
  pipeline(bytes, converter).catch((err: Error) => ctx.log.warn({ err }, 'image conversion failed'))
  return { contentType, body: converter, headers }
}

/** Decodes base64 a slice at a time, so the whole image never sits decoded in one buffer. */
function* base64Slices(base64: string, sliceChars = 64 * 1024): Generator<Buffer> {
  for (let i = 0; i < base64.length; i += sliceChars) yield Buffer.from(base64.slice(i, i + sliceChars), 'base64')
}
