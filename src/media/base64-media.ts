import { fileTypeFromBuffer } from 'file-type'
import {
  invalidField,
  MediaTooLargeError,
  pointerToField,
  ValidationError,
  withDetails,
  type DetailedError,
} from '../errors.ts'

const DATA_URI = /^data:([^,]*?),/i
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/
/** Enough leading bytes for any container signature file-type knows. */
export const SNIFF_BYTES = 4104

export interface MediaType {
  mime: string
  ext: string
}

export interface Base64Media {
  /** The base64 text, without any data URI prefix or white space. */
  base64: string
  /** The MIME type a data URI claimed, if any. */
  declaredMime: string | undefined
}

/** Splits a data URI or bare base64 string; a 400 naming `path` when it is neither. */
export function parseBase64Media(value: string, path: string): Base64Media {
  let declaredMime: string | undefined
  let payload = value
  const match = DATA_URI.exec(value)
  if (match) {
    const params = match[1]!.split(';')
    if (!params.slice(1).some((p) => p.toLowerCase() === 'base64')) {
      throw invalidField(path, 'must be a base64 data URI (data:<type>;base64,...)')
    }
    declaredMime = params[0]?.toLowerCase() || undefined
    payload = value.slice(match[0].length)
  }
  const base64 = /\s/.test(payload) ? payload.replace(/\s+/g, '') : payload
  if (base64.length === 0 || base64.length % 4 === 1 || !BASE64.test(base64)) {
    throw invalidField(path, 'is not valid base64')
  }
  return { base64, declaredMime }
}

/**
 * A data URI carries standard, padded base64 (RFC 2397 / RFC 2045). parseBase64Media also
 * accepts the URL-safe alphabet and missing padding, which OpenAI would misread, so rewrite them.
 */
export function standardBase64(base64: string): string {
  const standard = /[-_]/.test(base64) ? base64.replace(/-/g, '+').replace(/_/g, '/') : base64
  return standard.padEnd(Math.ceil(standard.length / 4) * 4, '=')
}

/** Decoded size of a base64 text, without decoding it. */
export function decodedLength(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0
  return Math.floor((base64.length * 3) / 4) - padding
}

/** Detects the type from the leading bytes only, so a large file is not decoded for it. */
export async function sniffType(base64: string): Promise<MediaType | undefined> {
  const head = base64.slice(0, (SNIFF_BYTES / 3) * 4)
  const type = await fileTypeFromBuffer(Buffer.from(head, 'base64'))
  return type ? { mime: type.mime, ext: type.ext } : undefined
}

export function tooLarge(path: string, limit: number): DetailedError {
  const message = `${pointerToField(path)} exceeds ${limit} bytes`
  return withDetails(new MediaTooLargeError(message), [{ field: pointerToField(path), path, message }])
}

export function unsupportedType(path: string, expected: string, found: string | undefined): DetailedError {
  const message = `is not ${expected}${found ? ` (found ${found})` : ' (format not recognised)'}`
  return withDetails(new ValidationError(`${pointerToField(path)} ${message}`), [
    { field: pointerToField(path), path, message },
  ])
}
