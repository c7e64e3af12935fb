import type OpenAI from 'openai'
import { FormData } from 'undici'
import type { SpeechRecognitionInput, SpeechRecognitionOutput } from '../generated/task-types.ts'
import { openAsBlob } from 'node:fs'
import { open } from 'node:fs/promises'
import { fileTypeFromBuffer } from 'file-type'
import {
  decodedLength,
  parseBase64Media,
  sniffType,
  SNIFF_BYTES,
  tooLarge,
  unsupportedType,
  type MediaType,
} from '../media/base64-media.ts'
import type { UploadedFile } from '../plugins/uploads.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'
import { transcriptionAnswer, transcriptionCall } from '../tracing/genai-attributes.ts'
import { traceCall } from '../tracing/model-call.ts'

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

export async function toTranscriptionForm(input: SpeechRecognitionInput, upload?: UploadedFile): Promise<FormData> {
  const audio = upload ? await uploadedAudio(upload) : await inlineAudio(input.audio)
  const form = new FormData()
  form.append('file', audio.blob, `audio.${audio.ext}`)
  form.append('model', input.model)
  form.append('response_format', 'json')
  if (input.prompt !== undefined) form.append('prompt', input.prompt)
  if (input.language !== undefined) form.append('language', input.language)
  if (input.temperature !== undefined) form.append('temperature', String(input.temperature))
  return form
}

/** The audio of a data URI or bare base64 string, held in memory (it came in the JSON body). */
async function inlineAudio(value: string): Promise<{ blob: Blob; ext: string }> {
  const media = parseBase64Media(value, '/audio')
  if (decodedLength(media.base64) > MAX_AUDIO_BYTES) throw tooLarge('/audio', MAX_AUDIO_BYTES)
  const type = await sniffType(media.base64)
  const ext = uploadExtension(type, media.declaredMime)
  return { blob: new Blob([Buffer.from(media.base64, 'base64')], { type: type!.mime }), ext }
}

/** An uploaded file, streamed from its spool file on disk when the request is sent. */
async function uploadedAudio(upload: UploadedFile): Promise<{ blob: Blob; ext: string }> {
  const head = Buffer.alloc(SNIFF_BYTES)
  const file = await open(upload.path)
  let bytesRead: number
  try {
    ;({ bytesRead } = await file.read(head, 0, SNIFF_BYTES, 0))
  } finally {
    await file.close()
  }
  const detected = await fileTypeFromBuffer(head.subarray(0, bytesRead))
  const type = detected && { mime: detected.mime, ext: detected.ext }
  const ext = uploadExtension(type, upload.mimetype)
  return { blob: await openAsBlob(upload.path, { type: type!.mime }), ext }
}

function uploadExtension(type: MediaType | undefined, claimed: string | undefined): string {
  const ext = type && UPLOAD_EXTENSION[type.ext]
  if (!type || !ext) {
    throw unsupportedType('/audio', 'flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm audio', type?.mime ?? claimed)
  }
  return ext
}

export async function runSpeechRecognition(
  input: SpeechRecognitionInput,
  ctx: TaskContext,
): Promise<SpeechRecognitionOutput> {
  const body = await toTranscriptionForm(input, ctx.uploads.audio)
  const span = ctx.tracer?.start(transcriptionCall(input.model, input.temperature))
  const transcription = await traceCall(
    span,
    async () => {
      const transcription = await ctx.upstream.postJson<OpenAI.Audio.Transcription>({ ...ctx, path: '/audio/transcriptions', body, span })
      if (typeof transcription?.text !== 'string') throw badUpstreamResponse('transcription without text')
      return transcription
    },
    (transcription) => transcriptionAnswer(transcription, ctx.tracer?.captureContent === true),
  )
  const audio = body.get('file') as Blob
  const seconds = transcription.usage?.type === 'duration' ? transcription.usage.seconds : undefined
  ctx.usage.audioInput(input.model, audio.size, seconds)
  return { text: transcription.text }
}
