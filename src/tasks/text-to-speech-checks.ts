import type { TextToSpeechInput } from '../generated/task-types.ts'
import type { FieldProblem } from './field-problems.ts'
import { isLegacyTtsModel } from './model-families.ts'

/** What OpenAI would refuse about a speech input, found before calling it. */
export function speechInputProblems(input: TextToSpeechInput): FieldProblem[] {
  const problems: FieldProblem[] = []
  const viaFormat = input['response-format']
  const viaType = input['response-type']
  if (viaFormat && viaType && viaFormat !== viaType) {
    problems.push({ path: '/response-type', message: 'contradicts response-format; give one' })
  }
  if (input.instructions !== undefined && isLegacyTtsModel(input.model)) {
    problems.push({
      path: '/instructions',
      message: `is for gpt-4o-mini-tts and newer speech models, not ${input.model}`,
    })
  }
  return problems
}
