// POST /audio/speech: the audio bytes of content.ts, in 4 KiB chunks or as speech.audio.* events.
import type OpenAI from 'openai'
import { expectedSpeechBytes, tokenCount } from './content.ts'
import { sseReply, type Reply } from './reply.ts'

/** The 'Content-Type' OpenAI answers /audio/speech with, per response_format. */
export const SPEECH_CONTENT_TYPES: Record<string, string> = {
  mp3: 'audio/mpeg',
  opus: 'audio/opus',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
}

const CHUNK_BYTES = 4096

export function speechReply(body: OpenAI.Audio.SpeechCreateParams): Reply {
  const bytes = expectedSpeechBytes(body)
  const pieces: Buffer[] = []
  for (let off = 0; off < bytes.length; off += CHUNK_BYTES) pieces.push(bytes.subarray(off, off + CHUNK_BYTES))
  if (body.stream_format === 'sse') {
    const events: object[] = pieces.map((p) => ({ type: 'speech.audio.delta', audio: p.toString('base64') }))
    const inTok = tokenCount(String(body.input ?? ''))
    const outTok = Math.ceil(bytes.length / 100)
    events.push({
      type: 'speech.audio.done',
      usage: { input_tokens: inTok, output_tokens: outTok, total_tokens: inTok + outTok },
    })
    return sseReply(events, false)
  }
  const contentType = SPEECH_CONTENT_TYPES[body.response_format ?? 'mp3'] ?? 'application/octet-stream'
  return { status: 200, headers: { 'content-type': contentType }, chunks: pieces, streamed: true }
}
