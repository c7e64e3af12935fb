import type OpenAI from 'openai'
import { invalidField, withDetails } from '../errors.ts'
import { NotAcceptableError, type StreamNegotiation, type StreamResult } from '../streaming/stream-result.ts'
import type { TextToSpeechInput, TextToSpeechOutput } from '../generated/task-types.ts'
import { AUDIO_MIME } from '../media/audio-formats.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'
import { speechCall } from '../tracing/genai-attributes.ts'
import { endWithBody, traceCall, traceHeaders } from '../tracing/model-call.ts'

type AudioFormat = NonNullable<TextToSpeechInput['response-format']>

export function audioFormatOf(input: TextToSpeechInput): AudioFormat {
  const viaFormat = input['response-format']
  const viaType = input['response-type']
  if (viaFormat && viaType && viaFormat !== viaType) {
    throw invalidField('/response-type', 'contradicts response-format; give one')
  }
  return viaFormat ?? viaType ?? 'mp3'
}

export function toSpeechRequest(input: TextToSpeechInput): OpenAI.Audio.SpeechCreateParams {
  return {
    model: input.model,
    input: input.text,
    voice: input.voice,
    response_format: audioFormatOf(input),
    ...(input.speed !== undefined && { speed: input.speed }),
  }
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
  const explicit = input['response-format'] ?? input['response-type']
  const format = explicit ? audioFormatOf(input) : formatOfMime(negotiation.mediaType)
  const contentType = AUDIO_MIME[format]!
  if (!negotiation.accepts(contentType)) {
    throw withDetails(new NotAcceptableError(`response-format ${format} is ${contentType}, which Accept excludes`), [
      { field: 'response-format', path: '/response-format', message: `gives ${contentType}, not accepted by the Accept header` },
    ])
  }
  const body = { ...toSpeechRequest(input), response_format: format }
  const span = ctx.tracer?.start(speechCall(body, ctx.tracer.captureContent))
  const res = await traceHeaders(span, () =>
    ctx.upstream.post({ ...ctx, path: '/audio/speech', body: JSON.stringify(body), accept: contentType, span }),
  )
  ctx.usage.speechCharacters(input.model, input.text.length)
  const length = res.headers['content-length']
  // An attachment with a file name: browsers (and Swagger UI) offer the clip as a download.
  const headers: Record<string, string> = { 'content-disposition': `attachment; filename="speech.${format}"` }
  if (typeof length === 'string') headers['content-length'] = length
  // The span goes on until the audio has all been relayed.
  if (span) endWithBody(span, res.body, ctx.signal)
  return { contentType, body: res.body, headers }
}

function formatOfMime(mime: string): AudioFormat {
  const entry = Object.entries(AUDIO_MIME).find(([, m]) => m === mime)
  return (entry?.[0] ?? 'mp3') as AudioFormat
}

export async function runTextToSpeech(input: TextToSpeechInput, ctx: TaskContext): Promise<TextToSpeechOutput> {
  const body = toSpeechRequest(input)
  const span = ctx.tracer?.start(speechCall(body, ctx.tracer.captureContent))
  const { bytes } = await traceCall(
    span,
    async () => {
      const answer = await ctx.upstream.postForBytes({ ...ctx, path: '/audio/speech', body, accept: 'audio/*', span })
      if (answer.bytes.length === 0) throw badUpstreamResponse('speech answer without audio')
      return answer
    },
    () => ({}),
  )
  ctx.usage.speechCharacters(input.model, input.text.length)
  return { audio: `data:${AUDIO_MIME[body.response_format!]};base64,${bytes.toString('base64')}` }
}
