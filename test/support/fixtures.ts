import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

/** A function tool as a caller declares it in `tools[].function`. */
export const weatherFunction = {
  name: 'get_weather',
  description: 'Current weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
}

interface VoiceSchema {
  anyOf: Array<{ title?: string; examples?: string[] }>
}

/** The built-in voices schemas/tasks.yaml documents for text to speech. */
export const BUILT_IN_VOICES: string[] = (() => {
  const tasks = parse(readFileSync(new URL('../../schemas/tasks.yaml', import.meta.url), 'utf8'))
  const voice = tasks['text-to-speech'].input.properties.voice as VoiceSchema
  return voice.anyOf.find((branch) => branch.title === 'Built-in voice')?.examples ?? []
})()
