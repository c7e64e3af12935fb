import type { SpeechRecognitionInput } from '../generated/task-types.ts'
import { NotAcceptableError, withDetails } from '../errors.ts'
import { EVENT_STREAM_HEADERS, EVENT_STREAM_TYPE, relaySse, sseEvent, type SseRelay } from '../streaming/sse.ts'
import type { StreamResult } from '../streaming/stream-result.ts'
import { transcriptionAnswer, transcriptionCall } from '../tracing/genai-attributes.ts'
import { traceHeaders, type ModelAnswer, type ModelCallSpan } from '../tracing/model-call.ts'
import { TRANSCRIPTION_ANSWER_BYTES } from '../upstream/answer-limits.ts'
import { badUpstreamResponse, parseStreamEvent } from '../upstream/upstream-errors.ts'
import { isWhisper1Model } from './model-families.ts'
import { transcriptionStreamProblems } from './speech-recognition-checks.ts'
import { checkedTranscriptionForm } from './speech-recognition.ts'
import { streamFailureEvent } from './stream-failure.ts'
import type { TaskContext } from './task-context.ts'
import {
  fromJsonAnswer,
  toSegment,
  transcriptionUsage,
  type Segment,
  type TranscriptionAnswer,
} from './transcription-answer.ts'

/** What the service reads of OpenAI's transcription stream events. */
interface TranscriptionEvent extends TranscriptionAnswer {
  type?: unknown
  delta?: unknown
}

/**
 * Asks OpenAI for a streamed transcript. Refusals and failures before OpenAI's headers throw (and
 * become an ordinary JSON error); after that, the SSE body carries `delta` (and for the diarize
 * model `segment`) events, then `output` (the JSON route's answer) and `done`, or an `error` event.
 */
export async function streamSpeechRecognition(input: SpeechRecognitionInput, ctx: TaskContext): Promise<StreamResult> {
  // OpenAI ignores `stream` for whisper-1 and answers JSON: the caller is told so before the upload.
  if (isWhisper1Model(input.model)) {
    throw withDetails(new NotAcceptableError(`${input.model} does not stream; ask for application/json`), [
      { field: 'model', path: '/model', message: `${input.model} answers as a whole, not as a stream` },
    ])
  }
  const { body, audioBytes } = await checkedTranscriptionForm(input, ctx, transcriptionStreamProblems(input))
  body.append('stream', 'true')
  const span = ctx.tracer?.start(transcriptionCall(input.model, input.temperature, true))
  const maxBytes = TRANSCRIPTION_ANSWER_BYTES
  const res = await traceHeaders(span, () =>
    ctx.upstream.postForEvents({ ...ctx, path: '/audio/transcriptions', model: input.model, body, maxBytes, span }),
  )
  // The relay ends the span at OpenAI's done event, or with what failed the stream.
  const relay = transcriptionRelay(ctx, input.model, audioBytes, span)
  const relayed = relaySse(res.body, relay, { heartbeatMs: ctx.settings.sseHeartbeatMs, maxBytes })
  // Closed before the body ended: the span ends then, cancelled unless the transcript was whole.
  if (span) relayed.onClose(relay.closed)
  return {
    contentType: EVENT_STREAM_TYPE,
    body: relayed,
    headers: EVENT_STREAM_HEADERS,
  }
}

/**
 * Our events for OpenAI's: `delta` per text delta, `segment` per diarized segment, and at
 * `transcript.text.done` the `output` and `done`, with the usage recorded; a body that ends
 * before that event is an `error`.
 */
function transcriptionRelay(
  ctx: TaskContext,
  model: string,
  audioBytes: number,
  span: ModelCallSpan | undefined,
): SseRelay & { closed(): void } {
  const segments: Segment[] = []
  let finished = false
  // What the span ends with once OpenAI's body has ended: undici's HTTP span, beneath it, ends first.
  let answer: ModelAnswer | undefined
  const endSpan = (): void => {
    if (answer) span?.end(answer)
  }
  const secrets = ctx.upstream.secretsOf(ctx)
  const finish = (done: TranscriptionEvent): string => {
    const output = fromJsonAnswer({ ...done, ...(segments.length && { segments }) })
    finished = true
    const { seconds, tokens } = transcriptionUsage(done.usage)
    const cost = ctx.usage.audioInput(model, audioBytes, seconds, tokens)
    answer = {
      ...transcriptionAnswer({ text: output.text, usage: done.usage }, ctx.tracer?.captureContent === true),
      // The request's span has ended when a stream starts: its call's span says what it cost.
      'openai_tasks.cost_usd': cost,
    }
    return sseEvent('output', output) + sseEvent('done', {})
  }
  return {
    data(data) {
      // Read to the end after the done event rather than stop: stopping destroys the body with an error.
      if (finished || data === '[DONE]') return ''
      span?.firstChunk()
      const event = parseStreamEvent(data, secrets) as TranscriptionEvent
      switch (event.type) {
        case 'transcript.text.delta':
          if (typeof event.delta !== 'string') throw badUpstreamResponse('transcript delta without text')
          return event.delta ? sseEvent('delta', { text: event.delta }) : ''
        case 'transcript.text.segment': {
          const segment = toSegment(event as Record<string, unknown>)
          segments.push(segment)
          return sseEvent('segment', segment)
        }
        case 'transcript.text.done':
          return finish(event)
        default:
          // Event types OpenAI may add later carry nothing the output holds.
          return ''
      }
    },
    end() {
      if (!finished) throw badUpstreamResponse('the stream ended before OpenAI finished the transcript')
      endSpan()
      return ''
    },
    fail(err) {
      // A body that breaks after the done event still gave the caller the whole answer.
      if (finished) {
        endSpan()
        return ''
      }
      return streamFailureEvent(ctx, span, err)
    },
    closed() {
      if (finished) endSpan()
      else span?.cancelled()
    },
  }
}
