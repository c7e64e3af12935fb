import type OpenAI from 'openai'
import { FormData } from 'undici'
import type { SpeechRecognitionInput, SpeechRecognitionOutput } from '../generated/task-types.ts'
import { decodedLength, parseBase64Media, sniffType, tooLarge, unsupportedType } from '../media/base64-media.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'

/** OpenAI's limit for one transcription upload. */
export const MAX_AUDIO_BYTES = 25 * 1024 * 1024

/** File extensions OpenAI accepts, by the extension file-type detects. */
const UPLOAD_EXTENSION: Record<string, string> = {
  flac: 'flac',
  mp3: 'mp3',
  mp4: 'mp4',
  m4a: 'm4a',
  mpga: 'mpga',
  ogg: 'ogg',
  oga: 'ogg',
  opus: 'ogg',
  wav: 'wav',
  webm: 'webm',
}

export async function toTranscriptionForm(input: SpeechRecognitionInput): Promise<FormData> {
  const media = parseBase64Media(input.audio, '/audio')
  if (decodedLength(media.base64) > MAX_AUDIO_BYTES) throw tooLarge('/audio', MAX_AUDIO_BYTES)
  const type = await sniffType(media.base64)
  const ext = type && UPLOAD_EXTENSION[type.ext]
  if (!type || !ext) {
    throw unsupportedType('/audio', 'flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm audio', type?.mime ?? media.declaredMime)
  }
  const form = new FormData()
  form.append('file', new Blob([Buffer.from(media.base64, 'base64')], { type: type.mime }), `audio.${ext}`)
  form.append('model', input.model)
  form.append('response_format', 'json')
  if (input.prompt !== undefined) form.append('prompt', input.prompt)
  if (input.language !== undefined) form.append('language', input.language)
  if (input.temperature !== undefined) form.append('temperature', String(input.temperature))
  return form
}

export async function runSpeechRecognition(
  input: SpeechRecognitionInput,
  ctx: TaskContext,
): Promise<SpeechRecognitionOutput> {
  const body = await toTranscriptionForm(input)
  const transcription = await ctx.upstream.postJson<OpenAI.Audio.Transcription>({ ...ctx, path: '/audio/transcriptions', body })
  if (typeof transcription?.text !== 'string') throw badUpstreamResponse('transcription without text')
  return { text: transcription.text }
}
