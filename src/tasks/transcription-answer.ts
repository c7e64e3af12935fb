import type { SpeechRecognitionOutput } from '../generated/task-types.ts'
import type { TokenCounts } from '../metrics/service-metrics.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import { amountOf, countOf } from './upstream-counts.ts'

export type Segment = NonNullable<SpeechRecognitionOutput['segments']>[number]
type Word = NonNullable<SpeechRecognitionOutput['words']>[number]
type Logprob = NonNullable<SpeechRecognitionOutput['logprobs']>[number]

/** OpenAI's json, verbose_json and diarized_json answers, as far as the output uses them. */
export interface TranscriptionAnswer {
  text?: unknown
  language?: unknown
  duration?: unknown
  segments?: unknown
  words?: unknown
  languages?: unknown
  logprobs?: unknown
  usage?: TranscriptionUsage
}

/** OpenAI's `usage`: seconds for whisper-1 and diarize, tokens for the gpt-4o transcribe models. */
export interface TranscriptionUsage {
  type?: string
  seconds?: number
  input_tokens?: number
  output_tokens?: number
  input_token_details?: { audio_tokens?: number; text_tokens?: number }
}

/** What the answer says the call used: seconds of audio and tokens, each where it says so. */
export function transcriptionUsage(
  usage: TranscriptionUsage | undefined,
  duration?: unknown,
): { seconds: number | undefined; tokens: TokenCounts | undefined } {
  const seconds = amountOf(usage?.type === 'duration' ? usage.seconds : duration)
  if (usage?.type !== 'tokens') return { seconds, tokens: undefined }
  return {
    seconds,
    tokens: {
      prompt: countOf(usage.input_tokens),
      audio: countOf(usage.input_token_details?.audio_tokens),
      completion: countOf(usage.output_tokens),
    },
  }
}

// `00:01:02,500 --> 00:01:05,120` (SRT) or `01:02.500 --> 01:05.120` (WebVTT): the last cue's end.
const CUE_END = /-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})/g

/** How long subtitled audio ran, by its last cue's end; undefined for plain text. */
export function subtitleSeconds(text: string): number | undefined {
  let seconds: number | undefined
  for (const [, h, m, s, ms] of text.matchAll(CUE_END)) {
    seconds = Number(h ?? 0) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000
  }
  return seconds
}

/**
 * The output of a JSON transcription answer: the text, and whatever of language, duration,
 * segments (with their speaker when diarized), words, detected languages and token logprobs the
 * format carries.
 */
export function fromJsonAnswer(answer: TranscriptionAnswer): SpeechRecognitionOutput {
  if (typeof answer?.text !== 'string') throw badUpstreamResponse('transcription without text')
  return {
    text: answer.text,
    ...(typeof answer.language === 'string' && { language: answer.language }),
    ...(typeof answer.duration === 'number' && { duration: answer.duration }),
    ...(answer.segments !== undefined && { segments: listOf(answer.segments, 'segments').map(toSegment) }),
    ...(answer.words !== undefined && { words: listOf(answer.words, 'words').map(toWord) }),
    ...(answer.languages !== undefined && { languages: listOf(answer.languages, 'languages').map(toLanguage) }),
    ...(answer.logprobs !== undefined && { logprobs: listOf(answer.logprobs, 'logprobs').map(toLogprob) }),
  }
}

function listOf(value: unknown, name: string): Array<Record<string, unknown>> {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'object' && item !== null)) {
    throw badUpstreamResponse(`transcription ${name} that are not a list of objects`)
  }
  return value as Array<Record<string, unknown>>
}

export function toSegment({ start, end, text, speaker }: Record<string, unknown>): Segment {
  if (typeof start !== 'number' || typeof end !== 'number' || typeof text !== 'string') {
    throw badUpstreamResponse('transcription segment without start, end and text')
  }
  return { start, end, text, ...(typeof speaker === 'string' && { speaker }) }
}

function toWord({ word, start, end }: Record<string, unknown>): Word {
  if (typeof word !== 'string' || typeof start !== 'number' || typeof end !== 'number') {
    throw badUpstreamResponse('transcription word without word, start and end')
  }
  return { word, start, end }
}

/** gpt-transcribe's detected languages are objects with their code; the output lists the codes. */
function toLanguage({ code }: Record<string, unknown>): string {
  if (typeof code !== 'string') throw badUpstreamResponse('transcription language without a code')
  return code
}

/** `bytes` is kept when given: OpenAI sends it, an OpenAI-compatible server may not. */
function toLogprob({ token, logprob, bytes }: Record<string, unknown>): Logprob {
  if (typeof token !== 'string' || typeof logprob !== 'number') {
    throw badUpstreamResponse('transcription logprob without token and logprob')
  }
  if (bytes !== undefined && !(Array.isArray(bytes) && bytes.every((byte) => Number.isInteger(byte)))) {
    throw badUpstreamResponse('transcription logprob whose bytes are not a list of integers')
  }
  return { token, logprob, ...(bytes !== undefined && { bytes: bytes as number[] }) }
}
