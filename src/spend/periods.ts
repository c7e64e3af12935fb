/** The UTC periods a budget counts in: today and this month, with when each ends. */
export interface Periods {
  /** `2026-12-07` */
  day: string
  /** `2026-12` */
  month: string
  /** When today ends, in ms since the epoch (UTC midnight). */
  dayEndsAt: number
  /** When this month ends (the first of the next at UTC midnight). */
  monthEndsAt: number
  /** The ledger's names for the two: `day:2026-12-07`, `month:2026-12`. */
  dayKey: string
  monthKey: string
}

export function periodsAt(now: number): Periods {
  const date = new Date(now)
  const year = date.getUTCFullYear()
  const month = date.getUTCMonth()
  const day = date.getUTCDate()
  const iso = date.toISOString()
  return {
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
    dayKey: `day:${iso.slice(0, 10)}`,
    monthKey: `month:${iso.slice(0, 7)}`,
    dayEndsAt: Date.UTC(year, month, day + 1),
    monthEndsAt: Date.UTC(year, month + 1, 1),
  }
}
