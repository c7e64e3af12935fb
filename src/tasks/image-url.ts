import { invalidField } from '../errors.ts'
import { parseBase64Media, sniffType, standardBase64, unsupportedType } from '../media/base64-media.ts'

/** A DNS name (IDNs arrive as punycode), an IPv4 address or a bracketed IPv6 one. */
const VALID_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$|^\[[0-9a-f:.]+\]$/i

const IMAGE_MIMES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp'])

/**
 * The `url` OpenAI gets for an image input: http(s) URLs pass through untouched (OpenAI fetches
 * them); data URIs and bare base64 become a data URI of the type detected from the bytes.
 */
export async function toImageUrl(value: string, path: string): Promise<string> {
  if (/^https?:\/\//i.test(value)) {
    const url = URL.parse(value)
    if (!url || !VALID_HOST.test(url.hostname)) throw invalidField(path, 'is not a valid http(s) URL')
    return url.href
  }
  const media = parseBase64Media(value, path)
  const type = await sniffType(media.base64)
  const mime = type && IMAGE_MIMES.has(type.mime) ? type.mime : undefined
  if (!mime) throw unsupportedType(path, 'a PNG, JPEG, GIF or WebP image', type?.mime ?? media.declaredMime)
  return `data:${mime};base64,${standardBase64(media.base64)}`
}
