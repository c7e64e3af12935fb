import type { TaskName } from '../generated/task-types.ts'

/**
 * Which family an OpenAI model ID belongs to: the one place that knows which fields and request
 * shapes each family takes. Fine-tuned IDs (`ft:<base>:<org>:<suffix>:<id>`) count as their base.
 * IDs matching no family get the plain chat/image/speech behaviour, so OpenAI-compatible servers'
 * own model names keep working.
 */

/** The model a fine-tuned ID was trained from; other IDs unchanged. */
export function baseModel(model: string): string {
  return model.startsWith('ft:') ? (model.slice(3).split(':', 1)[0] ?? model) : model
}

/** Matches `name` itself or `name` followed by a version/variant suffix (`-2024-…`, `.1`, `_x`). */
function family(...names: string[]): RegExp {
  return new RegExp(`^(?:${names.join('|')})(?:$|[-_.:])`)
}

// The o-series and the gpt-5 family, except its `-chat` variants, which are chat models.
const REASONING = /^(?:o[1-9]|gpt-5(?!.*-chat))(?:$|[-_.])/
const GPT_5 = family('gpt-5')
// gpt-5.1 and later sample again (temperature, top_p) when told not to reason.
const SAMPLES_WITHOUT_REASONING = /^gpt-5\.(?:[1-9]|\d{2,})/
// OpenAI's own chat models; any other ID is an OpenAI-compatible server's, which decides itself.
const OPENAI_CHAT = /^(?:gpt-(?:3\.5|4|5)|chatgpt-|o[1-9](?:$|[-_.]))/
// The first o1 releases take neither system nor developer turns.
const WITHOUT_INSTRUCTION_TURNS = family('o1-mini', 'o1-preview')
// Web-search chat models refuse the sampling settings.
const SEARCH = /-search-(?:preview|api)(?:$|[-_.])/
const GPT_IMAGE = /^(?:gpt-image|chatgpt-image)(?:$|[-_.])/
const GPT_IMAGE_2 = family('gpt-image-2')
const DALL_E_2 = family('dall-e-2')
const DALL_E_3 = family('dall-e-3')
const TTS_WITHOUT_INSTRUCTIONS = family('tts-1', 'tts-1-hd')
const WHISPER = family('whisper-1')
const DIARIZE = /^gpt-4o(?:-mini)?-transcribe-diarize(?:$|[-_.])/
const GPT_4O_TRANSCRIBE = /^gpt-4o(?:-mini)?-transcribe(?:$|[-_.])/
const GPT_TRANSCRIBE = family('gpt-transcribe')
const EMBEDDING = /^text-embedding-/
const SPEECH = family('tts-1', 'gpt-4o-mini-tts')

const test = (pattern: RegExp) => (model: string) => pattern.test(baseModel(model))

/** o-series and gpt-5 (not `-chat`): developer turns, `max_completion_tokens`, no sampling settings. */
export const isReasoningModel = test(REASONING)
/** The whole gpt-5 family, `-chat` variants included: `verbosity`. */
export const isGpt5Model = test(GPT_5)
/** gpt-5.1 and later: temperature and top_p are taken with reasoning effort `none`. */
export const samplesWithoutReasoning = test(SAMPLES_WITHOUT_REASONING)
/** gpt-3.5, gpt-4*, gpt-5*, chatgpt-* and the o-series: their fields are known, others' are not. */
export const isOpenAIChatModel = test(OPENAI_CHAT)
/** o1-mini and o1-preview: no system or developer turn at all. */
export const refusesInstructionTurns = test(WITHOUT_INSTRUCTION_TURNS)
/** gpt-4o(-mini)-search-preview and gpt-5-search-api: no temperature, top_p, penalties, n. */
export const isSearchModel = test(SEARCH)
/** gpt-image-1, -1-mini, -1.5, -2 and chatgpt-image: base64 only, their own sizes and qualities. */
export const isGptImageModel = test(GPT_IMAGE)
/** gpt-image-2 and its snapshots: any WIDTHxHEIGHT within OpenAI's bounds, not only the listed sizes. */
export const drawsAnySize = test(GPT_IMAGE_2)
export const isDallE2 = test(DALL_E_2)
export const isDallE3 = test(DALL_E_3)
/** tts-1 and tts-1-hd take no `instructions`; newer speech models do. */
export const isLegacyTtsModel = test(TTS_WITHOUT_INSTRUCTIONS)
/** gpt-4o-transcribe-diarize: speakers, no prompt, no timestamps, chunking needed past 30 s. */
export const isDiarizeModel = test(DIARIZE)
/** gpt-4o(-mini)-transcribe (diarize included): json or text answers only. */
export const isGpt4oTranscribeModel = test(GPT_4O_TRANSCRIBE)
/** gpt-transcribe and its snapshots: `languages` and `keywords`, which the older models refuse. */
export const isGptTranscribeModel = test(GPT_TRANSCRIBE)
/** whisper-1 only: other servers' whisper models (whisper-large-v3, …) decide their fields themselves. */
export const isWhisper1Model = test(WHISPER)
/** The transcription families whose fields are known; any other model gets every field as given. */
export const isKnownTranscriptionModel = (model: string): boolean =>
  isWhisper1Model(model) || isGpt4oTranscribeModel(model) || isGptTranscribeModel(model)

/** OpenAI's own models of each task, its schema's examples and their snapshots: the metrics name them. */
export const TASK_FAMILIES: { [N in TaskName]: (model: string) => boolean } = {
  'text-generation': isOpenAIChatModel,
  'text-embeddings': test(EMBEDDING),
  'speech-recognition': isKnownTranscriptionModel,
  'text-to-speech': test(SPEECH),
  'text-to-image': (model) => isGptImageModel(model) || isDallE2(model) || isDallE3(model),
}
