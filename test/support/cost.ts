import assert from 'node:assert/strict'

/**
 * A text-generation usage without its `cost-usd` (test/spend.test.ts checks what it is), for
 * tests of the token mapping; the cost, where there is one, must be an amount of dollars.
 */
export function withoutCost<U extends { 'cost-usd'?: number } | undefined>(usage: U): Omit<NonNullable<U>, 'cost-usd'> {
  const { 'cost-usd': cost, ...rest } = usage ?? {}
  if (cost !== undefined) assert.ok(typeof cost === 'number' && cost >= 0, `cost-usd ${String(cost)}`)
  return rest as Omit<NonNullable<U>, 'cost-usd'>
}
