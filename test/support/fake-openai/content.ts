// Deterministic content: token counts and logprobs, ids, text pieces, embeddings, speech audio and images.
import { createHash, randomBytes } from 'node:crypto'
import { wavHeader } from '../wav.ts'

/** About four characters a token, as OpenAI counts English. */
export const tokenCount = (text: string): number => (text ? Math.max(1, Math.ceil(text.length / 4)) : 0)

let idCounter = 0
/** A fresh id such as 'chatcmpl-00001a3f…': a counter, then random hex. */
export const nextId = (prefix: string): string =>
  `${prefix}${(++idCounter).toString(36).padStart(6, '0')}${randomBytes(6).toString('hex')}`

/** Seconds since the epoch, OpenAI's `created`. */
export const unixNow = (): number => Math.floor(Date.now() / 1000)

/** Split text into about `parts` pieces at spaces (joined they give the text back exactly). */
export function splitText(text: string, parts = 3): string[] {
  if (!text) return []
  const words = text.match(/\S+\s*|\s+/g) ?? [text]
  const per = Math.max(1, Math.ceil(words.length / parts))
  const out: string[] = []
  for (let i = 0; i < words.length; i += per) out.push(words.slice(i, i + per).join(''))
  return out
}

function sha256(...parts: string[]): Buffer {
  const h = createHash('sha256')
  for (const p of parts) h.update(p).update('\0')
  return h.digest()
}

/** A deterministic byte stream of `length` bytes seeded by `seed` (sha256 in counter mode). */
function patternBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length)
  for (let off = 0, i = 0; off < length; i++) {
    const block = sha256(seed, String(i))
    off += block.copy(out, off, 0, Math.min(block.length, length - off))
  }
  return out
}

/** OpenAI's `logprobs` of a transcript: each word (with the space before it) as a token, a logprob from its hash. */
export function tokenLogprobs(text: string): Array<{ token: string; logprob: number; bytes: number[] }> {
  return (text.match(/\s*\S+/g) ?? []).map((token) => ({
    token,
    logprob: -sha256(token)[0]! / 1000,
    bytes: [...Buffer.from(token)],
  }))
}

/** A deterministic unit vector of `dims` floats for `text`. */
export function embeddingFor(model: string, text: string, dims: number): number[] {
  const bytes = patternBytes(`${model}|${text}`, dims * 4)
  const v: number[] = new Array<number>(dims)
  let norm = 0
  for (let i = 0; i < dims; i++) {
    const x = bytes.readUInt32LE(i * 4) / 0xffffffff - 0.5
    v[i] = x
    norm += x * x
  }
  norm = Math.sqrt(norm) || 1
  for (let i = 0; i < dims; i++) v[i] = Math.fround(v[i]! / norm)
  return v
}

/** The fields of a speech request its audio depends on (any object will do: tests pass what was sent). */
interface SpeechRequestLike {
  model?: unknown
  voice?: unknown
  input?: unknown
  speed?: unknown
  instructions?: unknown
  response_format?: unknown
}

const SPEECH_SAMPLE_RATE = 24000

/** The bytes each speech format starts with. */
function speechHeader(format: string, payloadBytes: number): Buffer {
  switch (format) {
    case 'mp3':
      return Buffer.from([0x49, 0x44, 0x33, 0x04, 0, 0, 0, 0, 0, 0])
    case 'opus':
      return Buffer.concat([
        Buffer.from('OggS', 'ascii'),
        Buffer.from([0, 2]),
        Buffer.alloc(22),
        Buffer.from('OpusHead', 'ascii'),
      ])
    case 'aac':
      return Buffer.from([0xff, 0xf1, 0x50, 0x80, 0x00, 0x1f, 0xfc])
    case 'flac':
      return Buffer.concat([Buffer.from('fLaC', 'ascii'), Buffer.from([0x80, 0, 0, 0x22])])
    case 'wav':
      return wavHeader(payloadBytes, SPEECH_SAMPLE_RATE)
    default: // pcm, and formats OpenAI does not have
      return Buffer.alloc(0)
  }
}

/**
 * The exact bytes the stand-in answers POST /audio/speech with for this request body: a
 * recognisable header for the format ('ID3' mp3, 'OggS' opus, ADTS aac, 'fLaC', a valid RIFF/WAVE
 * 24 kHz mono 16-bit header, none for pcm) then a pattern derived from model/voice/input/speed.
 */
export function expectedSpeechBytes(body: SpeechRequestLike | null | undefined): Buffer {
  const format = String(body?.response_format ?? 'mp3')
  const voice = typeof body?.voice === 'string' ? body.voice : JSON.stringify(body?.voice ?? null)
  const input = typeof body?.input === 'string' ? body.input : ''
  const seed = [body?.model, voice, input, body?.speed ?? 1, body?.instructions ?? '', format].join('|')
  let len = 2048 + 32 * Buffer.byteLength(input)
  if (format === 'wav' || format === 'pcm') len -= len % 2 // whole 16-bit samples
  return Buffer.concat([speechHeader(format, len), patternBytes(seed, len)])
}

const imageCache = new Map<string, Promise<Buffer>>()

/** The image the stand-in returns: 8×8, OpenAI green (#10a37f); made once per format with sharp. */
export function fakeImageBytes(format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  let p = imageCache.get(format)
  if (!p) {
    p = import('sharp').then(({ default: sharp }) =>
      sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 16, g: 163, b: 127 } } })
        .toFormat(format)
        .toBuffer(),
    )
    imageCache.set(format, p)
  }
  return p
}
