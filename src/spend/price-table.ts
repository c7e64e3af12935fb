import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { parse } from 'yaml'
import type { Price } from '../generated/config-file-types.ts'

export type { Price }

const SHIPPED_URL = new URL('../../schemas/prices.yaml', import.meta.url)
const CONFIG_SCHEMA_URL = new URL('../../schemas/config-file.yaml', import.meta.url)
// `gpt-4o-mini-2024-07-18`, `gpt-4-0613`: a snapshot of the model before the date.
const SNAPSHOT = /-(?:\d{4}-\d{2}-\d{2}|\d{4})$/

/** The table the service ships (schemas/prices.yaml), checked against the file's Price schema. */
export function shippedPrices(): Record<string, Price> {
  const { prices } = parse(readFileSync(SHIPPED_URL, 'utf8')) as { prices: Record<string, Price> }
  const schema = parse(readFileSync(CONFIG_SCHEMA_URL, 'utf8')) as { properties: { prices: object } }
  const check = new Ajv({ strict: true, allowUnionTypes: true }).compile(schema.properties.prices)
  if (!check(prices)) throw new Error(`schemas/prices.yaml: ${JSON.stringify(check.errors?.[0])}`)
  return prices
}

/** Prices by model: the shipped table with the configuration file's entries over it. */
export class PriceTable {
  readonly #prices: Map<string, Price>

  constructor(overrides: Record<string, Price> = {}, shipped: Record<string, Price> = shippedPrices()) {
    this.#prices = new Map(Object.entries({ ...shipped, ...overrides }))
  }

  /** The model's price, or its base model's for a dated snapshot; undefined when it has none. */
  priceOf(model: string): Price | undefined {
    return this.#prices.get(model) ?? this.#prices.get(model.replace(SNAPSHOT, ''))
  }
}
