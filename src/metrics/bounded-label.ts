import { modelPatternMatches } from '../routing/model-patterns.ts'

/**
 * A known label value: exactly this one, a prefix ending in `*` (ALLOWED_MODELS' syntax:
 * `gpt-4o*`), or a test (a model family of src/tasks/model-families.ts).
 */
export type KnownValue = string | ((value: string) => boolean)

/** The one label value everything unknown is shown as. */
export const OTHER = 'other'

function matcher(known: KnownValue): (value: string) => boolean {
  return typeof known === 'function' ? known : (value) => modelPatternMatches(known, value)
}

/**
 * Label values that come from outside (a caller's model, an upstream's status or error code)
 * folded into a bounded set, so that no caller or upstream can grow the metrics: a known value is
 * its own label, and anything else is `other`. Patterns admit endless values (`gpt-4o*`), so only
 * the first `max` distinct known values get a label of their own; later ones are `other` too.
 */
export class BoundedLabel {
  readonly #known: Array<(value: string) => boolean>
  readonly #max: number
  readonly #values = new Set<string>()

  constructor(known: KnownValue[], max: number) {
    this.#known = known.map(matcher)
    this.#max = max
  }

  /** `value` itself when it is known and within the cap, else `other`. */
  of(value: string): string {
    if (this.#values.has(value)) return value
    if (this.#values.size >= this.#max || !this.#known.some((test) => test(value))) return OTHER
    this.#values.add(value)
    return value
  }
}
