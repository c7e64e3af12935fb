import type { MeasuredUsage } from './call-cost.ts'

/** What spend is counted in, as the metrics, the ledger and /v1/usage name it. */
export const UNITS = [
  'input_tokens',
  'cached_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'audio_seconds',
  'characters',
  'images',
] as const

export type Unit = (typeof UNITS)[number]

export type UnitCounts = Partial<Record<Unit, number>>

/** A call's usage by unit; units it did not use are left out. */
export function unitsOf(usage: MeasuredUsage): UnitCounts {
  const units: UnitCounts = {}
  const put = (unit: Unit, value: number) => {
    if (value > 0) units[unit] = value
  }
  put('input_tokens', usage.inputTokens)
  put('cached_input_tokens', usage.cachedInputTokens)
  put('output_tokens', usage.outputTokens)
  put('reasoning_tokens', usage.reasoningTokens)
  put('audio_seconds', usage.audioSeconds)
  put('characters', usage.characters)
  put(
    'images',
    usage.images.reduce((n, i) => n + i.count, 0),
  )
  return units
}
