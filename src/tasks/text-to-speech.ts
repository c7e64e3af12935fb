import type OpenAI from 'openai'
import { invalidField } from '../errors.ts'
import type { TextToSpeechInput, TextToSpeechOutput } from '../generated/task-types.ts'
import { AUDIO_MIME } from '../media/audio-formats.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'

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

export async function runTextToSpeech(input: TextToSpeechInput, ctx: TaskContext): Promise<TextToSpeechOutput> {
  const body = toSpeechRequest(input)
  const { bytes } = await ctx.upstream.postForBytes({ ...ctx, path: '/audio/speech', body, accept: 'audio/*' })
  if (bytes.length === 0) throw badUpstreamResponse('speech answer without audio')
  return { audio: `data:${AUDIO_MIME[body.response_format!]};base64,${bytes.toString('base64')}` }
}
