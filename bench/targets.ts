/** Targets (a figure, its limit, met or not) and number formatting, shared by both reports. */

export interface Target {
  name: string
  scenario: string
  value: number
  limit: number
  unit: string
  /** `min`: value must be at least the limit; `max`: at most; `below`: strictly less. */
  kind: 'min' | 'max' | 'below'
  met: boolean
}

export function target(name: string, scenario: string, value: number, limit: number, unit: string, kind: Target['kind']): Target {
  const met = kind === 'min' ? value >= limit : kind === 'max' ? value <= limit : value < limit
  return { name, scenario, value, limit, unit, kind, met }
}

export const num = (v: number, digits = 0): string =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a'
export const ms = (v: number): string => num(v, 3)
export const signedMs = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(3)}` : 'n/a')

const RELATION = { min: '≥', max: '≤', below: '<' }

function formatValue(t: Target): string {
  if (t.unit === '%') return `${num(t.value, 1)} %`
  if (t.unit === 'ms') return `${t.name.startsWith('added') ? signedMs(t.value) : ms(t.value)} ms`
  return `${num(t.value, 1)} ${t.unit}`
}

/** The targets as markdown table lines (header included). */
export function targetTable(targets: Target[]): string[] {
  return [
    '| target | scenario | value | limit | result |',
    '| --- | --- | ---: | ---: | --- |',
    ...targets.map(
      (t) => `| ${t.name} | ${t.scenario} | ${formatValue(t)} | ${RELATION[t.kind]} ${t.limit} ${t.unit} | ${t.met ? 'met' : '**not met**'} |`,
    ),
  ]
}
