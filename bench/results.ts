/** What one run measured (written as latest.json), and the figures derived from it. */
import { bestEventCpu, type EventCpu } from './event-cpu.ts'
import type { Calls, Sigterm, StalledReaders } from './faults.ts'
import type { Summary } from './load.ts'
import type { Kind, TargetName } from './targets.ts'
import type { Throughput } from './throughput.ts'
import type { TracingCost } from './tracing.ts'

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

/** One burst of the cold-burst scenario through the service: what the calls saw, and the service's CPU and peak RSS. */
export interface BurstRun {
  summary: Summary
  cpuS?: number
  peakRss?: number
}

/**
 * `streams` streams opened at once (no ramp): direct to the stand-in; then through a service
 * started for it, the moment its /readyz first answered 200 (`readyAfterMs` after its start);
 * then again on the same, now warm, process.
 */
export interface ColdBurst {
  streams: number
  readyAfterMs: number
  direct: Summary
  cold: BurstRun
  warm?: BurstRun
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
  coldBurst?: ColdBurst
  /** CPU per token event, service and forwarder in alternating rounds (bench/event-cpu.ts). */
  eventCpu?: EventCpu[]
  /** Tracing off against on, the zero-latency load (bench/tracing.ts). */
  tracing?: TracingCost
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

/**
 * The service's CPU per token event at one stream level against the forwarder's, µs, and the
 * ratio: the best of the alternating rounds where they ran, else the concurrency rows.
 */
export function streamCpuAt(results: Results, level: number): { service?: number; forwarder?: number; ratio?: number } {
  const rounds = results.eventCpu?.find((run) => run.level === level)
  if (rounds) return bestEventCpu(rounds)
  const at = (via: TargetName): number | undefined => {
    const x = row(results, 'stream', level, via)
    return x && cpuPerUnitUs(x)
  }
  const service = at('service')
  const forwarder = at('forwarder')
  return { service, forwarder, ratio: service !== undefined && forwarder ? service / forwarder : undefined }
}
