import type { SpeechRecognitionInput } from '../generated/task-types.ts'
import { alternatives, type FieldProblem } from './field-problems.ts'
import { isDiarizeModel, isGptTranscribeModel } from './model-families.ts'

type ResponseFormat = NonNullable<SpeechRecognitionInput['response-format']>

/** The answer formats a model gives; undefined where OpenAI documents no limit (whisper-1, others). */
function formatsOf(model: string): ResponseFormat[] | undefined {
  if (isDiarizeModel(model)) return ['json', 'text', 'diarized_json']
  if (isGptTranscribeModel(model)) return ['json', 'text']
  return undefined
}

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
  return problems
}
