import type { KeysInUse } from '../upstream/redact-secrets.ts'
import { Readable } from 'node:stream'
import type OpenAI from 'openai'
import { mediaEntry, mediaOf } from '../cache/media-entry.ts'
import { withDetails } from '../errors.ts'
import { NotAcceptableError, type StreamNegotiation, type StreamResult } from '../streaming/stream-result.ts'
import type { TextToSpeechInput, TextToSpeechOutput } from '../generated/task-types.ts'
import { AUDIO_MIME, isAudioContentType } from '../media/audio-formats.ts'
import { SPEECH_ANSWER_BYTES } from '../upstream/answer-limits.ts'
import { refuseDeclaredOversize, relayBounded } from '../upstream/bounded-body.ts'
import { bodyStream } from '../upstream/upstream-answer.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import { refuseProblems } from './field-problems.ts'
import type { TaskContext } from './task-context.ts'
import { speechInputProblems } from './text-to-speech-checks.ts'
import { speechCall } from '../tracing/genai-attributes.ts'
import { endWithBody, traceCall, traceHeaders } from '../tracing/model-call.ts'

type AudioFormat = NonNullable<TextToSpeechInput['response-format']>

/** The format OpenAI speaks in when the request names none. */
const DEFAULT_AUDIO_FORMAT: AudioFormat = 'mp3'

/** The format the caller asked for under either name (the checks refuse two that differ). */
function requestedFormat(input: TextToSpeechInput): AudioFormat | undefined {
  return input['response-format'] ?? input['response-type']
}

export function toSpeechRequest(
  input: TextToSpeechInput,
  format = requestedFormat(input),
): OpenAI.Audio.SpeechCreateParams {
  return {
    model: input.model,
    input: input.text,
    voice: input.voice,
    ...(input.instructions !== undefined && { instructions: input.instructions }),
    ...(format !== undefined && { response_format: format }),
    ...(input.speed !== undefined && { speed: input.speed }),
  }
}

/** A 502 for a 2xx answer that is not audio, such as a compatible server's JSON. */
function assertAudio(contentType: string | string[] | undefined, apiKey: KeysInUse): void {
  const type = Array.isArray(contentType) ? contentType[0] : contentType
  if (!isAudioContentType(type)) throw badUpstreamResponse(`the speech answer is ${type}, not audio`, apiKey)
}

/**
 * The audio itself, piped from OpenAI as it arrives. Without a `response-format`, the format is
 * the one the Accept header names; with one, the Accept header must allow its MIME type.
 */
export async function streamTextToSpeech(
  input: TextToSpeechInput,
  ctx: TaskContext,
  negotiation: StreamNegotiation,
): Promise<StreamResult> {
  refuseProblems(speechInputProblems(input))
  const format = requestedFormat(input) ?? formatOfMime(negotiation.mediaType)
  const contentType = AUDIO_MIME[format]!
  if (!negotiation.accepts(contentType)) {
    throw withDetails(new NotAcceptableError(`response-format ${format} is ${contentType}, which Accept excludes`), [
      {
        field: 'response-format',
        path: '/response-format',
        message: `gives ${contentType}, not accepted by the Accept header`,
      },
    ])
  }
  // The format Accept chose is asked for by name: the bytes must be the type the answer says.
  const body = toSpeechRequest(input, format)
  const lookup = await ctx.cache?.lookup([body])
  const hit = lookup?.hits[0]
  if (hit !== undefined) return cachedAudio(hit, format)
  const span = ctx.tracer?.start(speechCall(body, ctx.tracer.captureContent))
  const res = await traceHeaders(span, async () => {
    const res = await ctx.upstream.post({
      ...ctx,
      path: '/audio/speech',
      model: input.model,
      body,
      accept: contentType,
      span,
    })
    try {
      assertAudio(res.headers['content-type'], ctx.upstream.secretsOf(ctx))
    } catch (err) {
      res.body.destroy()
      throw err
    }
    refuseDeclaredOversize(res, SPEECH_ANSWER_BYTES, 'a speech answer')
    return res
  })
  ctx.usage.speechCharacters(input.model, input.text.length)
  const length = res.headers['content-length']
  const headers = audioHeaders(format)
  if (typeof length === 'string') headers['content-length'] = length
  const audio = bodyStream(res.body)
  // The span goes on until the audio has all been relayed.
  if (span) endWithBody(span, audio, ctx.signal)
  const relayed = relayBounded(audio, SPEECH_ANSWER_BYTES, 'a speech answer')
  return { contentType, body: lookup ? lookup.keepRelayed(relayed, contentType) : relayed, headers }
}

/** An attachment with a file name: browsers (and Swagger UI) offer the clip as a download. */
function audioHeaders(format: AudioFormat): Record<string, string> {
  return { 'content-disposition': `attachment; filename="speech.${format}"` }
}

/** The audio of a cache entry, with the headers a relayed answer has. */
function cachedAudio(entry: Buffer, format: AudioFormat): StreamResult {
  const { contentType, bytes } = mediaOf(entry)
  const headers = { ...audioHeaders(format), 'content-length': String(bytes.length) }
  return { contentType, body: Readable.from([bytes], { objectMode: false }), headers }
}

function formatOfMime(mime: string): AudioFormat {
  const entry = Object.entries(AUDIO_MIME).find(([, m]) => m === mime)
  return (entry?.[0] ?? DEFAULT_AUDIO_FORMAT) as AudioFormat
}

/** The audio as a data URI: from the cache when the caller asked for one (`max-age`) and it is there, else from OpenAI. */
export async function runTextToSpeech(input: TextToSpeechInput, ctx: TaskContext): Promise<TextToSpeechOutput> {
  refuseProblems(speechInputProblems(input))
  const body = toSpeechRequest(input)
  const lookup = await ctx.cache?.lookup([body])
  const hit = lookup?.hits[0]
  // A hit cost nothing this time: no characters are counted.
  if (hit !== undefined) return audioOutput(mediaOf(hit))
  const span = ctx.tracer?.start(speechCall(body, ctx.tracer.captureContent))
  const { bytes } = await traceCall(
    span,
    async () => {
      const answer = await ctx.upstream.postForBytes({
        ...ctx,
        path: '/audio/speech',
        model: input.model,
        body,
        accept: 'audio/*',
        maxBytes: SPEECH_ANSWER_BYTES,
        span,
      })
      assertAudio(answer.contentType, ctx.upstream.secretsOf(ctx))
      if (answer.bytes.length === 0) throw badUpstreamResponse('speech answer without audio')
      return answer
    },
    () => ({}),
  )
  ctx.usage.speechCharacters(input.model, input.text.length)
  const contentType = AUDIO_MIME[body.response_format ?? DEFAULT_AUDIO_FORMAT]!
  // The bytes and their type, the entry the audio route keeps for the same request too.
  await lookup?.keep([mediaEntry(contentType, [bytes])])
  return audioOutput({ contentType, bytes })
}

function audioOutput({ contentType, bytes }: { contentType: string; bytes: Buffer }): TextToSpeechOutput {
  return { audio: `data:${contentType};base64,${bytes.toString('base64')}` }
}
