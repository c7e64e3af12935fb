// POST /images/generations: the image of content.ts, as base64 or as a URL the stand-in then serves.
import type OpenAI from 'openai'
import { fakeImageBytes, nextId, tokenCount, unixNow } from './content.ts'
import { jsonReply, type Reply } from './reply.ts'

/** Images answered by URL, by path ('/images/img-….png'), for the stand-in to serve on GET. */
export type ServedImages = Map<string, { data: Buffer; type: string }>

const GPT_IMAGE = /^(gpt-image|chatgpt-image)/

/** `value` when it is one of `allowed`, else `fallback`. */
function oneOf<T extends string>(allowed: readonly T[], value: unknown, fallback: T): T {
  return allowed.find((a) => a === value) ?? fallback
}

/** What gpt-image-* models add to the answer: the settings used and token usage. */
function gptImageFields(body: OpenAI.Images.ImageGenerateParams, format: string, n: number): object {
  const textTokens = tokenCount(String(body.prompt ?? ''))
  return {
    background: body.background === 'transparent' ? 'transparent' : 'opaque',
    output_format: format,
    size: oneOf(['1024x1024', '1024x1536', '1536x1024'], body.size, '1024x1024'),
    quality: oneOf(['low', 'medium', 'high'], body.quality, 'medium'),
    usage: {
      input_tokens: textTokens,
      input_tokens_details: { text_tokens: textTokens, image_tokens: 0 },
      output_tokens: 272 * n,
      total_tokens: textTokens + 272 * n,
    },
  }
}

export async function imagesReply(
  body: OpenAI.Images.ImageGenerateParams,
  server: { origin: string; served: ServedImages },
): Promise<Reply> {
  const model = body.model ?? 'dall-e-2'
  const n = typeof body.n === 'number' ? body.n : 1
  const gptImage = GPT_IMAGE.test(model)
  const format =
    gptImage && (body.output_format === 'jpeg' || body.output_format === 'webp') ? body.output_format : 'png'
  const img = await fakeImageBytes(format)
  // dall-e-* answer with a URL unless asked for b64_json; gpt-image-* always answer b64_json.
  const asUrl = !gptImage && body.response_format !== 'b64_json'
  const data = Array.from({ length: n }, () => {
    const item: Record<string, string> = {}
    if (asUrl) {
      const name = `${nextId('img-')}.${format}`
      server.served.set(`/images/${name}`, { data: img, type: `image/${format}` })
      item.url = `${server.origin}/images/${name}`
    } else item.b64_json = img.toString('base64')
    if (model === 'dall-e-3') item.revised_prompt = `A detailed rendering of: ${String(body.prompt ?? '')}`
    return item
  })
  return jsonReply(200, { created: unixNow(), data, ...(gptImage ? gptImageFields(body, format, n) : {}) })
}
