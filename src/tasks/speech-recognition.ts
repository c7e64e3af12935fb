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
import { audioDuration } from '../media/audio-duration.ts'
import { TRANSCRIPTION_FORMATS, transcriptionExtension } from '../media/transcription-audio.ts'
import { formKey } from '../cache/form-key.ts'
import type { CacheLookup } from '../cache/task-cache.ts'
import type { UploadedFile } from '../plugins/uploads.ts'
import { refuseProblems, type FieldProblem } from './field-problems.ts'
import { RawJson } from './raw-json.ts'
import { isDiarizeModel } from './model-families.ts'
import { readSpeakerReferences } from './speaker-references.ts'
import { transcriptionInputProblems } from './speech-recognition-checks.ts'
import {
  fromJsonAnswer,
  subtitleSeconds,
  transcriptionUsage,
  type TranscriptionAnswer,
} from './transcription-answer.ts'
import type { TaskContext } from './task-context.ts'
import { transcriptionAnswer, transcriptionCall } from '../tracing/genai-attributes.ts'
import { traceCall } from '../tracing/model-call.ts'
import { TRANSCRIPTION_ANSWER_BYTES } from '../upstream/answer-limits.ts'

/** OpenAI's limit for one transcription upload. */
export const MAX_AUDIO_BYTES = 25 * 1024 * 1024

/**
 * OpenAI's form for the input; `speakerReferences` are the known-speaker-references as data URLs
 * typed by their bytes (see speaker-references.ts).
 */
export async function toTranscriptionForm(
  input: SpeechRecognitionInput,
  upload?: UploadedFile,
  speakerReferences?: string[],
): Promise<FormData> {
  const audio = upload ? await uploadedAudio(upload) : await inlineAudio(input.audio)
  const form = new FormData()
  form.append('file', audio.blob, `audio.${audio.ext}`)
  form.append('model', input.model)
  if (input['response-format'] !== undefined) form.append('response_format', input['response-format'])
  if (input.prompt !== undefined) form.append('prompt', input.prompt)
  if (input.language !== undefined) form.append('language', input.language)
  if (input.temperature !== undefined) form.append('temperature', String(input.temperature))
  // Arrays and objects the way OpenAI's own SDKs encode them in a form: `a[]` and `a[key]`.
  appendList(form, 'timestamp_granularities[]', input['timestamp-granularities'])
  appendList(form, 'include[]', input.include)
  appendList(form, 'languages[]', input.languages)
  appendList(form, 'keywords[]', input.keywords)
  appendList(form, 'known_speaker_names[]', input['known-speaker-names'])
  appendList(form, 'known_speaker_references[]', speakerReferences)
  appendChunkingStrategy(form, chunkingStrategyOf(input))
  return form
}

function appendList(form: FormData, name: string, items: readonly string[] | undefined): void {
  for (const item of items ?? []) form.append(name, item)
}

/** The diarize model needs chunking for audio over 30 seconds, so it gets `auto` unless told otherwise. */
function chunkingStrategyOf(input: SpeechRecognitionInput): SpeechRecognitionInput['chunking-strategy'] {
  return input['chunking-strategy'] ?? (isDiarizeModel(input.model) ? 'auto' : undefined)
}

const VAD_FIELDS = {
  'prefix-padding-ms': 'prefix_padding_ms',
  'silence-duration-ms': 'silence_duration_ms',
  threshold: 'threshold',
} as const

function appendChunkingStrategy(form: FormData, strategy: SpeechRecognitionInput['chunking-strategy']): void {
  if (strategy === undefined) return
  if (strategy === 'auto') return form.append('chunking_strategy', 'auto')
  form.append('chunking_strategy[type]', strategy.type)
  for (const [field, name] of Object.entries(VAD_FIELDS)) {
    const value = strategy[field as keyof typeof VAD_FIELDS]
    if (value !== undefined) form.append(`chunking_strategy[${name}]`, String(value))
  }
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
  const ext = transcriptionExtension(type)
  if (!ext) throw unsupportedType('/audio', TRANSCRIPTION_FORMATS, type?.mime ?? claimed)
  return ext
}

/** Formats OpenAI answers as text, not JSON. */
const TEXT_FORMATS = new Set(['text', 'srt', 'vtt'])

/**
 * OpenAI's form for a checked input, with the audio's size for the metrics; `moreProblems` (the
 * stream's own) go into the same 400 as the input's.
 */
export async function checkedTranscriptionForm(
  input: SpeechRecognitionInput,
  ctx: TaskContext,
  moreProblems: FieldProblem[] = [],
): Promise<{ body: FormData; audioBytes: number }> {
  const references = await readSpeakerReferences(input['known-speaker-references'])
  const problems = transcriptionInputProblems(input)
  // A field the input's own checks refuse already is not named twice (a format neither takes).
  const unnamed = moreProblems.filter(({ path }) => !problems.some((problem) => problem.path === path))
  refuseProblems([...problems, ...unnamed, ...references.problems])
  const body = await toTranscriptionForm(input, ctx.uploads.audio, references.dataUrls)
  return { body, audioBytes: (body.get('file') as Blob).size }
}

/** Text fields of the form the cache key holds by a digest: audio as data URLs. */
const DIGESTED_FIELDS: ReadonlySet<string> = new Set(['known_speaker_references[]'])

/** The form looked up in the cache; its key digests the audio, so it is built only when the cache reads or stores. */
async function lookUpTranscription(form: FormData, ctx: TaskContext): Promise<CacheLookup | undefined> {
  const { cache } = ctx
  if (!cache) return undefined
  return cache.lookup([cache.bypassed ? {} : await formKey(form, DIGESTED_FIELDS)])
}

/** The transcript: from the cache when the caller asked for one (`max-age`) and it is there, else from OpenAI. */
export async function runSpeechRecognition(
  input: SpeechRecognitionInput,
  ctx: TaskContext,
): Promise<SpeechRecognitionOutput | RawJson> {
  const { body, audioBytes } = await checkedTranscriptionForm(input, ctx)
  const lookup = await lookUpTranscription(body, ctx)
  const hit = lookup?.hits[0]
  // A hit cost nothing this time: no audio is counted; its JSON goes out as it was kept.
  if (hit !== undefined) return new RawJson(hit)
  const format = input['response-format'] ?? 'json'
  const path = '/audio/transcriptions'
  const maxBytes = TRANSCRIPTION_ANSWER_BYTES
  const span = ctx.tracer?.start(transcriptionCall(input.model, input.temperature))
  const captureContent = ctx.tracer?.captureContent === true
  if (TEXT_FORMATS.has(format)) {
    // Plain text says nothing of the audio's length, which per-minute prices need: read from the file, meanwhile.
    const duration = format === 'text' ? audioDuration(body.get('file') as Blob) : undefined
    const text = await traceCall(
      span,
      () => ctx.upstream.postForText({ ...ctx, path, model: input.model, body, accept: 'text/*', maxBytes, span }),
      (answer) => transcriptionAnswer({ text: answer }, captureContent),
    )
    // Subtitles say how long the audio ran; for plain text, the file's own length.
    ctx.usage.audioInput(input.model, audioBytes, duration ? await duration : subtitleSeconds(text))
    // `text` ends in a line break that the JSON formats' text does not have; subtitles keep theirs.
    const output = { text: format === 'text' ? text.replace(/\r?\n$/, '') : text }
    await lookup?.keep([JSON.stringify(output)])
    return output
  }
  const [answer, output] = await traceCall(
    span,
    async () => {
      const answer = await ctx.upstream.postJson<TranscriptionAnswer>({
        ...ctx,
        path,
        model: input.model,
        body,
        maxBytes,
        span,
      })
      return [answer, fromJsonAnswer(answer)] as const
    },
    ([answer, output]) => transcriptionAnswer({ text: output.text, usage: answer.usage }, captureContent),
  )
  const { seconds, tokens } = transcriptionUsage(answer.usage, output.duration)
  ctx.usage.audioInput(input.model, audioBytes, seconds, tokens)
  await lookup?.keep([JSON.stringify(output)])
  return output
}
