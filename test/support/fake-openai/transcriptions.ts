// POST /audio/transcriptions: "Transcript of <file> (<n> bytes)." in each response_format, or streamed.
import { errorReply } from './errors.ts'
import { tokenCount, tokenLogprobs } from './content.ts'
import { bodyReply, jsonReply, sseReply, type Reply } from './reply.ts'
import { transcriptionParams, type TranscriptionParams } from './transcription-params.ts'
import { transcriptionStreamEvents, type StreamSegment } from './transcription-stream.ts'
import type { RecordedForm } from './types.ts'

/** 'HH:MM:SS,mmm' (SubRip) or 'HH:MM:SS.mmm' (WebVTT). */
function timestamp(seconds: number, sep: string): string {
  const ms = Math.round(seconds * 1000)
  const p = (x: number, w = 2): string => String(x).padStart(w, '0')
  return `${p(Math.floor(ms / 3600000))}:${p(Math.floor(ms / 60000) % 60)}:${p(Math.floor(ms / 1000) % 60)}${sep}${p(ms % 1000, 3)}`
}

function verboseJson(text: string, duration: number, params: TranscriptionParams): object {
  const grans = Array.isArray(params.timestamp_granularities) ? params.timestamp_granularities : ['segment']
  const words = text.split(/\s+/).filter(Boolean)
  const segment = {
    id: 0,
    seek: 0,
    start: 0,
    end: duration,
    text: ` ${text}`,
    tokens: [50364, 1012, 50414],
    temperature: params.temperature ?? 0,
    avg_logprob: -0.25,
    compression_ratio: 1.1,
    no_speech_prob: 0.01,
  }
  return {
    task: 'transcribe',
    language: params.language ?? 'english',
    duration,
    text,
    ...(grans.includes('word')
      ? {
          words: words.map((w, i) => ({
            word: w,
            start: (i * duration) / words.length,
            end: ((i + 1) * duration) / words.length,
          })),
        }
      : {}),
    ...(grans.includes('segment') ? { segments: [segment] } : {}),
    usage: { type: 'duration', seconds: Math.ceil(duration) },
  }
}

/** Two speakers, taking turns at the middle word: known speakers by name first, then A, B as OpenAI labels others. */
function diarizedSegments(text: string, duration: number, knownSpeakers: string[] = []): StreamSegment[] {
  const speakers = [...knownSpeakers, 'A', 'B']
  const words = text.split(' ')
  const half = Math.ceil(words.length / 2)
  const turns = [words.slice(0, half).join(' '), words.slice(half).join(' ')].filter(Boolean)
  const turnEnd = (i: number): number =>
    i === turns.length - 1 ? duration : Math.round(((duration * half) / words.length) * 100) / 100
  return turns.map((turn, i) => ({
    type: 'transcript.text.segment',
    id: `seg_${i}`,
    start: i === 0 ? 0 : turnEnd(0),
    end: turnEnd(i),
    text: turn,
    speaker: speakers[i]!,
  }))
}

function diarizedJson(text: string, duration: number, usage: object, knownSpeakers: string[] = []): object {
  return { task: 'transcribe', duration, text, segments: diarizedSegments(text, duration, knownSpeakers), usage }
}

export function transcriptionReply(form: RecordedForm | undefined): Reply {
  const params = transcriptionParams(form)
  const file = form?.files.file
  const model = String(params.model ?? '')
  const bytes = file?.data.length ?? 0
  const filename = file?.filename ?? 'unknown'
  const text = `Transcript of ${filename} (${bytes} bytes)${params.language ? ` in ${params.language}` : ''}.`
  const duration = Math.max(1, Math.round(bytes / 3200) / 10) // pretend 32 kB/s
  const diarize = /^gpt-4o(-mini)?-transcribe-diarize/.test(model)
  const chunked = (form?.entries ?? []).some(
    ([name]) => name === 'chunking_strategy' || name.startsWith('chunking_strategy['),
  )
  if (diarize && !chunked && duration > 30) {
    // OpenAI's rule for the diarize model: longer audio must be cut into chunks.
    return errorReply(
      400,
      'chunking_strategy is required for diarization models when the input audio is longer than 30 seconds.',
    )
  }
  const tokenModel = model.startsWith('gpt-')
  const audioTokens = Math.max(1, Math.ceil(duration * 10))
  const usage = tokenModel
    ? {
        type: 'tokens',
        input_tokens: audioTokens,
        input_token_details: { text_tokens: 0, audio_tokens: audioTokens },
        output_tokens: tokenCount(text),
        total_tokens: audioTokens + tokenCount(text),
      }
    : { type: 'duration', seconds: Math.ceil(duration) }
  if (params.stream === true) {
    const segments =
      diarize && params.response_format === 'diarized_json'
        ? diarizedSegments(text, duration, params.known_speaker_names)
        : undefined
    const events = transcriptionStreamEvents({ text, params, usage: tokenModel ? usage : undefined, segments })
    return sseReply(events, false)
  }
  switch (params.response_format ?? 'json') {
    case 'text':
      return bodyReply(200, 'text/plain; charset=utf-8', `${text}\n`)
    case 'srt':
      return bodyReply(
        200,
        'text/plain; charset=utf-8',
        `1\n${timestamp(0, ',')} --> ${timestamp(duration, ',')}\n${text}\n\n`,
      )
    case 'vtt':
      return bodyReply(
        200,
        'text/vtt; charset=utf-8',
        `WEBVTT\n\n${timestamp(0, '.')} --> ${timestamp(duration, '.')}\n${text}\n\n`,
      )
    case 'verbose_json':
      return jsonReply(200, verboseJson(text, duration, params))
    case 'diarized_json':
      return jsonReply(200, diarizedJson(text, duration, usage, params.known_speaker_names))
    default:
      // OpenAI gives logprobs in json answers only, when asked; gpt-transcribe says which languages it heard.
      return jsonReply(200, {
        text,
        ...(/^gpt-transcribe/.test(model) && { languages: (params.languages ?? ['en']).map((code) => ({ code })) }),
        ...(params.include?.includes('logprobs') && { logprobs: tokenLogprobs(text) }),
        usage,
      })
  }
}
