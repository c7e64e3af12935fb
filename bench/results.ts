/** What one run measured (written as latest.json), and the figures derived from it. */
import type { Calls, Sigterm, StalledReaders } from './faults.ts'
import type { Summary } from './load.ts'
import type { Kind, TargetName } from './targets.ts'
import type { Throughput } from './throughput.ts'

export interface ConcurrencyRow {
  kind: Kind
  level: number
  via: TargetName
  summary: Summary
  /** The proxy's CPU seconds during the run, its RSS before it and its peak during it. */
  cpuS?: number
  idleRss?: number
  peakRss?: number
}

export interface Results {
  date: string
  quick: boolean
  durationS: number
  machine: string
  node: string
  upstream: { jsonMs: [number, number]; ttftMs: number; tokens: number; tokenRate: number }
  service: { command: string; allocator: string }
  portkey: string
  levels: number[]
  concurrency: ConcurrencyRow[]
  throughput: Partial<Record<TargetName, Throughput>>
  faults: {
    stalledReaders?: StalledReaders
    stalledReadersCut?: StalledReaders
    frozenRedis?: Calls
    sigterm?: Sigterm
  }
  errors: string[]
}

export const PROXIES: TargetName[] = ['service', 'forwarder', 'portkey']

export function row(results: Results, kind: Kind, level: number, via: TargetName): ConcurrencyRow | undefined {
  return results.concurrency.find((r) => r.kind === kind && r.level === level && r.via === via)
}

export const completedShare = (r: ConcurrencyRow): number => r.summary.completed / r.summary.sent

/** Through − direct at the same level, for the time to first token or the whole call. */
export function added(
  results: Results,
  r: ConcurrencyRow,
  figure: 'ttft' | 'duration',
): { p50: number; p99: number } | undefined {
  const direct = row(results, r.kind, r.level, 'direct')?.summary[figure]
  const through = r.summary[figure]
  return direct && through ? { p50: through.p50 - direct.p50, p99: through.p99 - direct.p99 } : undefined
}

/** The proxy's CPU per token event relayed (streams) or per answer (JSON), µs. */
export function cpuPerUnitUs(r: ConcurrencyRow): number | undefined {
  const units = r.kind === 'stream' ? r.summary.tokens : r.summary.completed
  return r.cpuS === undefined || !units ? undefined : (r.cpuS * 1e6) / units
}

/** (RSS at the peak with N calls open − RSS idle before) / N, bytes. */
export function rssPerCall(r: ConcurrencyRow): number | undefined {
  return r.peakRss === undefined || r.idleRss === undefined ? undefined : (r.peakRss - r.idleRss) / r.level
}

/** CPU per token event over every stream level together, µs. */
export function streamCpuPerEventUs(results: Results, via: TargetName): number | undefined {
  const rows = results.concurrency.filter((r) => r.kind === 'stream' && r.via === via && r.cpuS !== undefined)
  const tokens = rows.reduce((s, r) => s + r.summary.tokens, 0)
  return tokens ? (rows.reduce((s, r) => s + r.cpuS!, 0) * 1e6) / tokens : undefined
}
