import type { SpeechRecognitionInput } from '../generated/task-types.ts'
import { alternatives, type FieldProblem } from './field-problems.ts'
import {
  isDiarizeModel,
  isGpt4oTranscribeModel,
  isGptTranscribeModel,
  isKnownTranscriptionModel,
} from './model-families.ts'

type ResponseFormat = NonNullable<SpeechRecognitionInput['response-format']>

/** The answer formats a model gives; undefined where OpenAI documents no limit (whisper-1, gpt-transcribe, others). */
function formatsOf(model: string): ResponseFormat[] | undefined {
  if (isDiarizeModel(model)) return ['json', 'text', 'diarized_json']
  if (isGpt4oTranscribeModel(model)) return ['json', 'text']
  return undefined
}

/** A field that one family takes: the other known families refuse it, any other model gets it. */
interface FamilyField {
  field: keyof SpeechRecognitionInput
  takenBy: (model: string) => boolean
  family: string
}

const FAMILY_FIELDS: FamilyField[] = [
  { field: 'languages', takenBy: isGptTranscribeModel, family: 'gpt-transcribe' },
  { field: 'keywords', takenBy: isGptTranscribeModel, family: 'gpt-transcribe' },
  {
    field: 'include',
    takenBy: (model) => isGpt4oTranscribeModel(model) && !isDiarizeModel(model),
    family: 'gpt-4o-transcribe and gpt-4o-mini-transcribe',
  },
  { field: 'known-speaker-names', takenBy: isDiarizeModel, family: 'gpt-4o-transcribe-diarize' },
  { field: 'known-speaker-references', takenBy: isDiarizeModel, family: 'gpt-4o-transcribe-diarize' },
]

/** What OpenAI would refuse about a transcription input, found before the audio is uploaded. */
export function transcriptionInputProblems(input: SpeechRecognitionInput): FieldProblem[] {
  const { model } = input
  const format = input['response-format']
  const granularities = input['timestamp-granularities']
  const problems: FieldProblem[] = []
  const diarize = isDiarizeModel(model)
  if (diarize && input.prompt !== undefined) {
    problems.push({ path: '/prompt', message: `is not taken by ${model}` })
  }
  if (diarize && granularities !== undefined) {
    problems.push({ path: '/timestamp-granularities', message: `is not taken by ${model}` })
  } else if (granularities !== undefined && format !== 'verbose_json') {
    problems.push({ path: '/timestamp-granularities', message: 'needs response-format verbose_json' })
  }
  const formats = formatsOf(model)
  if (format !== undefined && formats && !formats.includes(format)) {
    problems.push({ path: '/response-format', message: `must be ${alternatives(formats)} for ${model}` })
  } else if (format === 'diarized_json' && !diarize) {
    problems.push({
      path: '/response-format',
      message: `diarized_json is for gpt-4o-transcribe-diarize only, not ${model}`,
    })
  }
  const refused = FAMILY_FIELDS.filter(
    ({ field, takenBy }) => input[field] !== undefined && isKnownTranscriptionModel(model) && !takenBy(model),
  )
  for (const { field, family } of refused) {
    problems.push({ path: `/${field}`, message: `is for ${family} only, not ${model}` })
  }
  const refusedFields = new Set(refused.map(({ field }) => field))
  // logprobs come only in a json answer (OpenAI's default format).
  if (input.include?.length && (format ?? 'json') !== 'json' && !refusedFields.has('include')) {
    problems.push({ path: '/include', message: 'needs response-format json' })
  }
  if (!refusedFields.has('known-speaker-names') && !refusedFields.has('known-speaker-references')) {
    problems.push(...knownSpeakerProblems(input))
  }
  return problems
}

/** Names and references go together, one reference per name, in the same order. */
function knownSpeakerProblems(input: SpeechRecognitionInput): FieldProblem[] {
  const names = input['known-speaker-names']
  const references = input['known-speaker-references']
  if (names === undefined && references === undefined) return []
  if (names === undefined) {
    return [{ path: '/known-speaker-names', message: 'must come with known-speaker-references, one name each' }]
  }
  if (references === undefined) {
    return [{ path: '/known-speaker-references', message: 'must come with known-speaker-names, one recording each' }]
  }
  if (names.length === references.length) return []
  return [
    {
      path: '/known-speaker-references',
      message: `must hold one recording per known-speaker-names item: ${names.length}, not ${references.length}`,
    },
  ]
}

/** The formats OpenAI streams: the transcript's text, and the diarize model's speaker segments. */
function streamFormatsOf(model: string): ResponseFormat[] {
  return isDiarizeModel(model) ? ['json', 'text', 'diarized_json'] : ['json', 'text']
}

/**
 * What a known model cannot stream; any other model gets the stream as asked (an
 * OpenAI-compatible server decides itself).
 */
export function transcriptionStreamProblems(input: SpeechRecognitionInput): FieldProblem[] {
  const { model } = input
  const format = input['response-format']
  if (format === undefined || !isKnownTranscriptionModel(model)) return []
  const formats = streamFormatsOf(model)
  if (formats.includes(format)) return []
  return [{ path: '/response-format', message: `must be ${alternatives(formats)} to stream ${model}` }]
}
