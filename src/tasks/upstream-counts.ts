/**
 * Numbers an answer reports (tokens, seconds of audio), as the metrics and the output take them:
 * a value of another type or below 0 counts as not reported, rather than failing the request.
 */

/** A count of tokens: a whole number of at least 0. */
export function countOf(value: unknown): number | undefined {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : undefined
}

/** An amount such as seconds of audio: a finite number of at least 0. */
export function amountOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}
