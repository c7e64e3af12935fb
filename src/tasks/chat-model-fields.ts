import { invalidFields } from '../errors.ts'
import type { TextGenerationInput } from '../generated/task-types.ts'
import {
  isGpt5Model,
  isOpenAIChatModel,
  isReasoningModel,
  isSearchModel,
  refusesInstructionTurns,
  samplesWithoutReasoning,
} from './model-families.ts'

type Field = keyof TextGenerationInput

const SAMPLING: Field[] = ['temperature', 'top-p']
const PENALTIES: Field[] = ['presence-penalty', 'frequency-penalty']

/**
 * Refuses, before OpenAI is called, each field the model's family does not take: a 400 naming
 * the field rather than a field silently dropped, or OpenAI's 400 after a billed round trip.
 * Model IDs outside OpenAI's families (an OpenAI-compatible server's) get every field as given.
 */
export function assertModelTakesFields(input: TextGenerationInput): void {
  const { model } = input
  const problems = new Map<string, string>()
  const refuse = (fields: Field[], message: string): void => {
    for (const field of fields) {
      if (input[field] !== undefined && !problems.has(`/${field}`)) problems.set(`/${field}`, message)
    }
  }

  if (isReasoningModel(model)) {
    if (!(samplesWithoutReasoning(model) && input['reasoning-effort'] === 'none')) {
      const later = samplesWithoutReasoning(model) ? ', unless reasoning-effort is none' : ''
      refuse(SAMPLING, `is not taken by ${model}, a reasoning model${later}`)
    }
    refuse(PENALTIES, `is not taken by ${model}, a reasoning model`)
    refuse(['stop'], `is not taken by ${model}, a reasoning model`)
  }
  if (isSearchModel(model)) {
    refuse([...SAMPLING, ...PENALTIES], `is not taken by ${model}, a web search model`)
    if ((input.n ?? 1) > 1) problems.set('/n', `must be 1 with ${model}, a web search model`)
  }
  if (isOpenAIChatModel(model)) {
    if (!isReasoningModel(model)) {
      refuse(['reasoning-effort'], `is for reasoning models (o-series, gpt-5); ${model} does not reason`)
    }
    if (!isGpt5Model(model)) refuse(['verbosity'], `is for the gpt-5 family; ${model} does not take it`)
  }
  if (refusesInstructionTurns(model)) {
    const why = `${model} takes no system or developer instructions`
    if (!input['chat-history']?.length) refuse(['system-message'], `is not taken: ${why}; put them in the prompt`)
    input['chat-history']?.forEach((turn, t) => {
      if (turn.role === 'system' || turn.role === 'developer') {
        problems.set(`/chat-history/${t}/role`, `cannot be ${turn.role}: ${why}; put them in a user turn`)
      }
    })
  }
  if (problems.size) throw invalidFields([...problems])
}
