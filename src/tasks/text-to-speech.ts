import type { KeysInUse } from '../upstream/redact-secrets.ts'
import type OpenAI from 'openai'
import { withDetails } from '../errors.ts'
import { NotAcceptableError, type StreamNegotiation, type StreamResult } from '../streaming/stream-result.ts'
import type { TextToSpeechInput, TextToSpeechOutput } from '../generated/task-types.ts'
import { AUDIO_MIME, isAudioContentType } from '../media/audio-formats.ts'
import { SPEECH_ANSWER_BYTES } from '../upstream/answer-limits.ts'
import { refuseDeclaredOversize, relayBounded } from '../upstream/bounded-body.ts'
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
      res.body.dump().catch(() => undefined)
      throw err
    }
    refuseDeclaredOversize(res, SPEECH_ANSWER_BYTES, 'a speech answer')
    return res
  })
  ctx.usage.speechCharacters(input.model, input.text.length)
  const length = res.headers['content-length']
  // An attachment with a file name: browsers (and Swagger UI) offer the clip as a download.
  const headers: Record<string, string> = { 'content-disposition': `attachment; filename="speech.${format}"` }
  if (typeof length === 'string') headers['content-length'] = length
  // The span goes on until the audio has all been relayed.
  if (span) endWithBody(span, res.body, ctx.signal)
  return { contentType, body: relayBounded(res.body, SPEECH_ANSWER_BYTES, 'a speech answer'), headers }
}

function formatOfMime(mime: string): AudioFormat {
  const entry = Object.entries(AUDIO_MIME).find(([, m]) => m === mime)
  return (entry?.[0] ?? DEFAULT_AUDIO_FORMAT) as AudioFormat
}

export async function runTextToSpeech(input: TextToSpeechInput, ctx: TaskContext): Promise<TextToSpeechOutput> {
  refuseProblems(speechInputProblems(input))
  const body = toSpeechRequest(input)
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
  return {
    audio: `data:${AUDIO_MIME[body.response_format ?? DEFAULT_AUDIO_FORMAT]};base64,${bytes.toString('base64')}`,
  }
}
