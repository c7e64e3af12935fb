// A streamed transcription's events: text deltas (per diarized segment, each then its segment event) and the done event.
import { splitText, tokenLogprobs } from './content.ts'
import type { TranscriptionParams } from './transcription-params.ts'

/** A diarized segment as OpenAI's stream sends it (the `transcript.text.segment` event). */
export interface StreamSegment {
  type: 'transcript.text.segment'
  id: string
  start: number
  end: number
  text: string
  speaker: string
}

export interface TranscriptStream {
  text: string
  params: TranscriptionParams
  /** Token usage (gpt- models); a done event of other models has none. */
  usage: object | undefined
  /** The diarized segments, when the answer is diarized_json from the diarize model. */
  segments: StreamSegment[] | undefined
}

/**
 * The events of a streamed answer: the deltas add up to the text; logprobs ride on each delta and
 * the done event when `include[]` asks for them; gpt-transcribe says which languages it heard.
 */
export function transcriptionStreamEvents({ text, params, usage, segments }: TranscriptStream): object[] {
  const logprobs = params.include?.includes('logprobs') === true
  const delta = (piece: string, segmentId?: string): object => ({
    type: 'transcript.text.delta',
    delta: piece,
    ...(logprobs && { logprobs: tokenLogprobs(piece) }),
    ...(segmentId !== undefined && { segment_id: segmentId }),
  })
  const events: object[] = []
  if (segments) {
    // The segments' texts lack the spaces between them, which the next segment's first delta carries.
    segments.forEach((segment, i) => {
      events.push(...splitText(`${i ? ' ' : ''}${segment.text}`).map((piece) => delta(piece, segment.id)), segment)
    })
  } else {
    events.push(...splitText(text).map((piece) => delta(piece)))
  }
  events.push({
    type: 'transcript.text.done',
    text,
    ...(/^gpt-transcribe/.test(params.model ?? '') && {
      languages: (params.languages ?? ['en']).map((code) => ({ code })),
    }),
    ...(logprobs && { logprobs: tokenLogprobs(text) }),
    ...(usage && { usage }),
  })
  return events
}
