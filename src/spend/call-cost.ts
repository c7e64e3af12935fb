import type { Price } from './price-table.ts'

/** What one OpenAI call used, as its answer (or the request, for characters) says. */
export interface MeasuredUsage {
  /** All input tokens, cached, audio and image ones included. */
  inputTokens: number
  /** Of the input tokens, those read from OpenAI's prompt cache. */
  cachedInputTokens: number
  /** Of the input tokens, audio ones (transcription). */
  audioInputTokens: number
  /** Of the input tokens, image ones (image edits). */
  imageInputTokens: number
  /** All output tokens, reasoning ones included. */
  outputTokens: number
  /** Of the output tokens, reasoning ones. */
  reasoningTokens: number
  audioSeconds: number
  characters: number
  images: ImageCount[]
}

export interface ImageCount {
  count: number
  size: string
  quality: string | undefined
}

export function emptyUsage(): MeasuredUsage {
  return {
    inputTokens: 0,
    cachedInputTokens: 0,
    audioInputTokens: 0,
    imageInputTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    audioSeconds: 0,
    characters: 0,
    images: [],
  }
}

// Dollars per million of a unit, in nano-dollars per unit.
const PER_MILLION = 1_000
const NANO = 1e9

/**
 * What the usage cost, in nano-dollars (micro-dollars would round a small embeddings call to
 * nothing); undefined when the price lacks a figure the usage needs. Tokens are priced where the
 * answer reports them and the price has token figures; otherwise minutes, characters, images.
 */
export function costOf(usage: MeasuredUsage, price: Price): number | undefined {
  const byTokens = usage.inputTokens > 0 || usage.outputTokens > 0
  const tokenPriced = price['input-per-1m-tokens'] !== undefined || price['output-per-1m-tokens'] !== undefined
  let cost: number | undefined = byTokens && tokenPriced ? tokenCost(usage, price) : unitCost(usage, price, byTokens)
  if (cost === undefined) return undefined
  cost = Math.round(cost)
  return Number.isSafeInteger(cost) ? cost : undefined
}

function tokenCost(usage: MeasuredUsage, price: Price): number | undefined {
  const input = price['input-per-1m-tokens']
  const plainInput = Math.max(
    0,
    usage.inputTokens - usage.cachedInputTokens - usage.audioInputTokens - usage.imageInputTokens,
  )
  return sum([
    part(plainInput, input),
    part(usage.cachedInputTokens, price['cached-input-per-1m-tokens'] ?? input),
    part(usage.audioInputTokens, price['audio-input-per-1m-tokens'] ?? input),
    part(usage.imageInputTokens, price['image-input-per-1m-tokens'] ?? input),
    part(usage.outputTokens, price['output-per-1m-tokens']),
  ])
}

/** By minutes, characters and images; tokens the price cannot cost make it unknown. */
function unitCost(usage: MeasuredUsage, price: Price, unpricedTokens: boolean): number | undefined {
  const parts: Array<number | undefined> = []
  if (usage.audioSeconds > 0) {
    const perMinute = price['per-minute']
    parts.push(perMinute === undefined ? undefined : (usage.audioSeconds / 60) * perMinute * NANO)
  } else if (usage.characters > 0) {
    parts.push(part(usage.characters, price['per-1m-characters']))
  } else if (usage.images.length) {
    for (const images of usage.images) parts.push(imageCost(images, price['per-image']))
  } else if (unpricedTokens) {
    parts.push(undefined)
  }
  return sum(parts)
}

function imageCost({ count, size, quality }: ImageCount, perImage: Price['per-image']): number | undefined {
  if (!perImage || count === 0) return count === 0 ? 0 : undefined
  const bySize = perImage[size]
  if (typeof bySize === 'number') return count * bySize * NANO
  const byQuality = quality === undefined ? undefined : perImage[quality]
  const each = typeof byQuality === 'object' ? byQuality[size] : undefined
  return each === undefined ? undefined : count * each * NANO
}

function part(count: number, perMillion: number | undefined): number | undefined {
  if (count === 0) return 0
  return perMillion === undefined ? undefined : count * perMillion * PER_MILLION
}

function sum(parts: Array<number | undefined>): number | undefined {
  let total = 0
  for (const p of parts) {
    if (p === undefined) return undefined
    total += p
  }
  return total
}

/** Nano-dollars as a JSON number of dollars, exact to the nano-dollar as the header's text. */
export function usdNumber(nanoUsd: number): number {
  return Number(usdText(nanoUsd))
}

/** Nano-dollars as the decimal dollars a header or a JSON answer shows: `0.000123`. */
export function usdText(nanoUsd: number): string {
  const whole = Math.floor(nanoUsd / NANO)
  const fraction = String(nanoUsd % NANO)
    .padStart(9, '0')
    .replace(/0+$/, '')
  return fraction ? `${whole}.${fraction}` : String(whole)
}
