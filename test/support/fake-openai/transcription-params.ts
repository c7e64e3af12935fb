// The fields of a transcription form that its answer depends on, read straight from the form.
import type { RecordedForm } from './types.ts'

export interface TranscriptionParams {
  model?: string
  language?: string
  response_format?: string
  stream?: boolean
  temperature?: number
  timestamp_granularities?: string[]
  include?: string[]
  languages?: string[]
  known_speaker_names?: string[]
}

/** Fields sent one part per item, named `name[]` as OpenAI's SDKs write them (a bare name counts too). */
const LISTS = ['timestamp_granularities', 'include', 'languages', 'known_speaker_names'] as const
const isList = (key: string): key is (typeof LISTS)[number] => (LISTS as readonly string[]).includes(key)

/** The transcription parameters, without the contract (a form that breaks it gets its 400 elsewhere). */
export function transcriptionParams(form: RecordedForm | undefined): TranscriptionParams {
  const params: TranscriptionParams = {}
  for (const [name, value] of form?.entries ?? []) {
    if (typeof value !== 'string') continue
    const key = name.replace(/\[\]$/, '')
    if (isList(key)) (params[key] ??= []).push(value)
    else if (key === 'stream') params.stream = value === 'true'
    else if (key === 'temperature') params.temperature = Number(value)
    else if (key === 'model' || key === 'language' || key === 'response_format') params[key] = value
  }
  return params
}
