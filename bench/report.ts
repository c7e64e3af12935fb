/** What a run of `npm run bench` measured, the figures derived from it, and its targets. */
import { OTHER_CPU_LIMIT, type CpuShare } from './cpu.ts'
import type { LoadResult } from './load.ts'
import type { PacedResult } from './paced.ts'
import { num, target, type Target } from './targets.ts'
import type { ServiceFacts } from './service.ts'

export interface Measured extends LoadResult {
  cpu: CpuShare
}

export interface PairResult {
  /** At `connections` (50 by default), as fast as answers come: throughput, saturation latency. */
  loaded: Measured
  /** At 1 connection: latency. */
  single: Measured
}

export type RateMeasured = PacedResult & { cpu: CpuShare }

/**
 * Both sides at the same fixed rate, a fraction of the through capacity, over `connections`,
 * in `p99Runs.direct.length` interleaved runs each: `direct` and `through` are each side's run
 * with the median p99 (a 2-core machine shared by three processes has the odd bad run).
 */
export interface FixedRateResult {
  ratePerSec: number
  direct: RateMeasured
  through: RateMeasured
  /** Every run's p99, in the order run. */
  p99Runs?: { direct: number[]; through: number[] }
}

/** The run whose p99 is the median (the lower middle one of an even count). */
export function medianByP99(runs: RateMeasured[]): RateMeasured {
  const sorted = [...runs].sort((a, b) => a.p99Ms - b.p99Ms)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

/** A load generator stall longer than this may show in a fixed-rate p99. */
export const GENERATOR_STALL_LIMIT_MS = 5

export interface ScenarioResult {
  id: string
  title: string
  skipped?: string
  direct?: PairResult
  through?: PairResult
  fixedRate?: FixedRateResult
}

/** Embeddings through the service, one input per request vs `batchSize` inputs per request. */
export interface BatchResult {
  batchSize: number
  single: Measured
  batch: Measured
}

/** Text generation JSON through the cluster entry point (one process per worker). */
export interface ClusterResult {
  workers: number
  entry: string
  nodeArgs: string[]
  startupMs: number
  through: Measured
  /** Primary and workers added up, after the run. */
  rssMb?: number
  /** Lines the cluster wrote at warn level or above (a worker replaced, for one). */
  logLines: number
  logTail: string[]
}

/** One upstream, text-generation JSON at `connections`: straight, via the floor forwarder, via the service. */
export interface ReferenceSide {
  direct: Measured
  floor: Measured
  through: Measured
  floorRssMb?: number
  /** The service started for this upstream only (the contract stand-in's), after its run. */
  serviceRssMb?: number
}

/** `bench`: bench/upstream.ts, fixed bytes; `contract`: the test suite's stand-in, per-request work. */
export interface ReferenceResult {
  bench: ReferenceSide
  contract?: ReferenceSide
  /** Why the contract stand-in was not measured (its OpenAPI file is missing). */
  contractSkipped?: string
}

export interface BenchRun {
  date: string
  node: string
  cpus: number
  durationSec: number
  warmupSec: number
  connections: number
  rateFraction: number
  /** rssMb: at the end of the last run on the single process (scenarios, then batch). */
  service: ServiceFacts & {
    /** After the scenarios, before the batch runs. */
    afterScenariosRssMb?: number
    /** `settleMs` after the last run, with no request since: once the service's idle memory release ran. */
    settledRssMb?: number
    settleMs?: number
  }
  scenarios: ScenarioResult[]
  batch?: BatchResult
  references?: ReferenceResult
  cluster?: ClusterResult
}

export interface Derived {
  throughputPct: number
  addedP50Single: number
  addedP99Single: number
  /** At saturation: mostly the queueing of the slower side, not per-request overhead. */
  addedP99Loaded: number
  addedP50Rate: number
  addedP99Rate: number
}

export const LIMITS = { throughputPct: 50, addedP50SingleMs: 0.25, addedP99Ms: 2, rssMb: 150 }

export function derive(s: ScenarioResult): Derived | undefined {
  if (!s.direct || !s.through) return undefined
  return {
    throughputPct: (100 * s.through.loaded.reqPerSec) / s.direct.loaded.reqPerSec,
    addedP50Single: s.through.single.p50Ms - s.direct.single.p50Ms,
    addedP99Single: s.through.single.p99Ms - s.direct.single.p99Ms,
    addedP99Loaded: s.through.loaded.p99Ms - s.direct.loaded.p99Ms,
    addedP50Rate: s.fixedRate ? s.fixedRate.through.p50Ms - s.fixedRate.direct.p50Ms : NaN,
    addedP99Rate: s.fixedRate ? s.fixedRate.through.p99Ms - s.fixedRate.direct.p99Ms : NaN,
  }
}

/** Items per second of a batch result's two runs, and how many times more the batch route gives. */
export function batchFigures(b: BatchResult): { singleItemsPerSec: number; batchItemsPerSec: number; gain: number } {
  const singleItemsPerSec = b.single.reqPerSec
  const batchItemsPerSec = b.batch.reqPerSec * b.batchSize
  return { singleItemsPerSec, batchItemsPerSec, gain: batchItemsPerSec / singleItemsPerSec }
}

/** The text-generation JSON scenario, which the cluster is compared with. */
export const clusterBaseline = (run: BenchRun): ScenarioResult | undefined =>
  run.scenarios.find((s) => s.id === 'text-generation-json')

export function targets(run: BenchRun): Target[] {
  const list: Target[] = []
  const n = run.connections
  const pct = num(run.rateFraction * 100)
  for (const s of run.scenarios) {
    const d = derive(s)
    if (!d) continue
    list.push(
      target('throughput through / direct', s.title, d.throughputPct, LIMITS.throughputPct, '%', 'min'),
      target('added p50 at 1 connection', s.title, d.addedP50Single, LIMITS.addedP50SingleMs, 'ms', 'max'),
      target(`added p99 at a fixed rate (${pct} % of capacity, ${n} connections)`, s.title, d.addedP99Rate, LIMITS.addedP99Ms, 'ms', 'max'),
      target(`added p99 at saturation (${n} connections, unthrottled)`, s.title, d.addedP99Loaded, LIMITS.addedP99Ms, 'ms', 'max'),
    )
  }
  const contract = run.references?.contract
  if (contract) {
    const pct = (100 * contract.through.reqPerSec) / contract.direct.reqPerSec
    list.push(target('throughput through / direct', 'text-generation JSON, contract stand-in', pct, LIMITS.throughputPct, '%', 'min'))
  }
  const settled = run.service.settleMs === undefined ? '' : `, ${num(run.service.settleMs / 1000, 1)} s later`
  list.push(target(`service RSS after the run${settled}`, 'all', run.service.settledRssMb ?? run.service.rssMb ?? NaN, LIMITS.rssMb, 'MB', 'max'))
  return list
}

/** Every measured run with its label, for the warnings and the CPU table. */
export function allRuns(run: BenchRun): Array<{ label: string; result: Measured }> {
  const out: Array<{ label: string; result: Measured }> = []
  for (const s of run.scenarios) {
    for (const [side, pair] of [['direct', s.direct], ['through', s.through]] as const) {
      if (!pair) continue
      out.push({ label: `${s.title} ${side} @${pair.loaded.connections}`, result: pair.loaded })
      out.push({ label: `${s.title} ${side} @1`, result: pair.single })
    }
    if (s.fixedRate) {
      const rate = `${num(s.fixedRate.ratePerSec)} req/s`
      out.push({ label: `${s.title} direct at ${rate}`, result: s.fixedRate.direct })
      out.push({ label: `${s.title} through at ${rate}`, result: s.fixedRate.through })
    }
  }
  if (run.batch) {
    out.push({ label: 'text-embeddings single requests', result: run.batch.single })
    out.push({ label: `text-embeddings batches of ${run.batch.batchSize}`, result: run.batch.batch })
  }
  if (run.references) {
    for (const [name, side] of [['bench upstream', run.references.bench], ['contract stand-in', run.references.contract]] as const) {
      if (!side) continue
      if (name === 'contract stand-in') out.push({ label: `text-generation JSON direct (${name})`, result: side.direct })
      out.push({ label: `text-generation JSON through the floor forwarder (${name})`, result: side.floor })
      if (name === 'contract stand-in') out.push({ label: `text-generation JSON through (${name})`, result: side.through })
    }
  }
  if (run.cluster) out.push({ label: `text-generation JSON through the cluster (${run.cluster.workers} workers)`, result: run.cluster.through })
  return out
}

/** Runs with transport errors, non-2xx answers or a busy machine: their figures are not to be trusted. */
export function warnings(run: BenchRun): string[] {
  const out: string[] = []
  if (run.service.buildErrors?.length) {
    out.push(`npm run build reported ${run.service.buildErrors.length} type errors (it emitted dist/ regardless, and that ran): ${run.service.buildErrors[0]}`)
  }
  for (const { label, result: r } of allRuns(run)) {
    if (r.errors || r.non2xx) out.push(`${label}: ${r.errors} errors, ${r.non2xx} non-2xx answers`)
    if (r.cpu.other > OTHER_CPU_LIMIT) {
      out.push(`${label}: other processes used ${num(r.cpu.other)} % of a core during the run; its figures are unreliable (run the bench on a quiet machine)`)
    }
  }
  for (const s of run.scenarios) {
    if (!s.fixedRate) continue
    const { ratePerSec } = s.fixedRate
    for (const side of ['direct', 'through'] as const) {
      const achieved = s.fixedRate[side].reqPerSec
      if (achieved < 0.95 * ratePerSec) {
        out.push(`${s.title} ${side} at a fixed rate: ${num(achieved)} req/s answered of ${num(ratePerSec)} asked; the load generator or the server fell behind`)
      }
      const stall = s.fixedRate[side].generatorStallMaxMs
      if (stall > GENERATOR_STALL_LIMIT_MS) {
        out.push(`${s.title} ${side} at a fixed rate: the load generator's own event loop stalled up to ${num(stall, 1)} ms; its p99 may include that`)
      }
    }
  }
  if (run.service.logLines) out.push(`the service wrote ${run.service.logLines} log lines at warn level or above`)
  if (run.cluster?.logLines) out.push(`the cluster wrote ${run.cluster.logLines} log lines at warn level or above; last: ${run.cluster.logTail.at(-1)}`)
  return out
}
