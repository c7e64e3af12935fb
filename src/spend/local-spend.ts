import type { TaskName } from '../generated/task-types.ts'
import type { UnitCounts } from './spend-units.ts'

/** One call's spend, as the ledger records it. */
export interface SpendRecord {
  /** The caller's name, `own-key:<digest prefix>` or `anonymous`. */
  spender: string
  task: TaskName
  model: string
  /** Nano-dollars; undefined: the model has no price. */
  nanoUsd: number | undefined
  units: UnitCounts
}

/** What one spender spent on one task and model in a period. */
export interface SpendRow {
  task: string
  model: string
  calls: number
  /** Calls whose cost is unknown (no price): not in `nanoUsd`. */
  unpricedCalls: number
  nanoUsd: number
  units: UnitCounts
}

export interface SpenderTotals {
  nanoUsd: number
  rows: SpendRow[]
}

/** Spenders a process keeps per period at most (callers paying with their own keys are many). */
const MAX_SPENDERS = 10_000
/** Task and model pairs per spender at most; more are counted under the model `other`. */
export const MAX_ROWS = 200

/**
 * Spend per period and spender in this process: the whole ledger without Redis, and what budgets
 * are checked against while Redis does not answer. Only the periods asked for last are kept.
 */
export class LocalSpend {
  readonly #periods = new Map<string, Map<string, Map<string, SpendRow>>>()

  add(period: string, record: SpendRecord): void {
    let spenders = this.#periods.get(period)
    if (!spenders) {
      spenders = new Map()
      this.#periods.set(period, spenders)
    }
    let rows = spenders.get(record.spender)
    if (!rows) {
      if (spenders.size >= MAX_SPENDERS) return
      rows = new Map()
      spenders.set(record.spender, rows)
    }
    addTo(rows, record)
  }

  /** Nano-dollars the spender spent in the period. */
  total(period: string, spender: string): number {
    let total = 0
    for (const row of this.#periods.get(period)?.get(spender)?.values() ?? []) total += row.nanoUsd
    return total
  }

  /** The spenders of a period (all of them, or those named) with their rows. */
  report(period: string, spenders?: string[]): Map<string, SpenderTotals> {
    const all = this.#periods.get(period) ?? new Map<string, Map<string, SpendRow>>()
    const out = new Map<string, SpenderTotals>()
    for (const name of spenders ?? all.keys()) {
      const rows = [...(all.get(name)?.values() ?? [])]
      out.set(name, { nanoUsd: rows.reduce((n, r) => n + r.nanoUsd, 0), rows })
    }
    return out
  }

  /** Forgets every period but these (a day or month that ended). */
  keepOnly(periods: string[]): void {
    for (const period of this.#periods.keys()) if (!periods.includes(period)) this.#periods.delete(period)
  }
}

function addTo(rows: Map<string, SpendRow>, { task, model, nanoUsd, units }: SpendRecord): void {
  let key = `${task}|${model}`
  let row = rows.get(key)
  if (!row && rows.size >= MAX_ROWS) {
    key = `${task}|other`
    row = rows.get(key)
  }
  if (!row) {
    row = { task, model: rows.size >= MAX_ROWS ? 'other' : model, calls: 0, unpricedCalls: 0, nanoUsd: 0, units: {} }
    rows.set(key, row)
  }
  row.calls++
  if (nanoUsd === undefined) row.unpricedCalls++
  else row.nanoUsd += nanoUsd
  for (const [unit, value] of Object.entries(units) as Array<[keyof UnitCounts, number]>) {
    row.units[unit] = (row.units[unit] ?? 0) + value
  }
}
