/** The figures derived from a run, the targets, and the markdown report. */
import { OTHER_CPU_LIMIT, type CpuShare } from './cpu.ts'
import type { LoadResult } from './load.ts'

export interface Measured extends LoadResult {
  cpu: CpuShare
}

export interface PairResult {
  /** At `connections` (50 by default): throughput and loaded latency. */
  loaded: Measured
  /** At 1 connection: latency. */
  single: Measured
}

export interface ScenarioResult {
  id: string
  title: string
  skipped?: string
  direct?: PairResult
  through?: PairResult
}

export interface BenchRun {
  date: string
  node: string
  cpus: number
  durationSec: number
  warmupSec: number
  connections: number
  service: {
    dir: string
    nodeArgs: string[]
    startupMs: number
    idleRssMb?: number
    rssMb?: number
    peakRssMb?: number
    logLines: number
    logTail: string[]
  }
  scenarios: ScenarioResult[]
}

export interface Target {
  name: string
  scenario: string
  value: number
  limit: number
  unit: string
  /** `min`: value must be at least the limit; `max`: at most. */
  kind: 'min' | 'max'
  met: boolean
}

export interface Derived {
  throughputPct: number
  addedP50Single: number
  addedP99Single: number
  addedP99Loaded: number
}

export const LIMITS = { throughputPct: 50, addedP50SingleMs: 0.25, addedP99LoadedMs: 2, rssMb: 150 }

export function derive(s: ScenarioResult): Derived | undefined {
  if (!s.direct || !s.through) return undefined
  return {
    throughputPct: (100 * s.through.loaded.reqPerSec) / s.direct.loaded.reqPerSec,
    addedP50Single: s.through.single.p50Ms - s.direct.single.p50Ms,
    addedP99Single: s.through.single.p99Ms - s.direct.single.p99Ms,
    addedP99Loaded: s.through.loaded.p99Ms - s.direct.loaded.p99Ms,
  }
}

function target(name: string, scenario: string, value: number, limit: number, unit: string, kind: 'min' | 'max'): Target {
  return { name, scenario, value, limit, unit, kind, met: kind === 'min' ? value >= limit : value <= limit }
}

export function targets(run: BenchRun): Target[] {
  const list: Target[] = []
  const n = run.connections
  for (const s of run.scenarios) {
    const d = derive(s)
    if (!d) continue
    list.push(
      target('throughput through / direct', s.title, d.throughputPct, LIMITS.throughputPct, '%', 'min'),
      target('added p50 at 1 connection', s.title, d.addedP50Single, LIMITS.addedP50SingleMs, 'ms', 'max'),
      target(`added p99 at ${n} connections`, s.title, d.addedP99Loaded, LIMITS.addedP99LoadedMs, 'ms', 'max'),
    )
  }
  list.push(target('service RSS after the run', 'all', run.service.rssMb ?? NaN, LIMITS.rssMb, 'MB', 'max'))
  return list
}

export const num = (v: number, digits = 0): string =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a'
const ms = (v: number): string => num(v, 3)
const signedMs = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(3)}` : 'n/a')

/** Runs with transport errors, non-2xx answers or a busy machine: their figures are not to be trusted. */
export function warnings(run: BenchRun): string[] {
  const out: string[] = []
  for (const s of run.scenarios) {
    for (const [side, pair] of [['direct', s.direct], ['through', s.through]] as const) {
      for (const r of pair ? [pair.loaded, pair.single] : []) {
        if (r.errors || r.non2xx) {
          out.push(`${s.title} ${side} @${r.connections}: ${r.errors} errors, ${r.non2xx} non-2xx answers`)
        }
        if (r.cpu.other > OTHER_CPU_LIMIT) {
          out.push(
            `${s.title} ${side} @${r.connections}: other processes used ${num(r.cpu.other)} % of a core ` +
              'during the run; its figures are unreliable (run the bench on a quiet machine)',
          )
        }
      }
    }
  }
  if (run.service.logLines) out.push(`the service wrote ${run.service.logLines} log lines at warn level or above`)
  return out
}

export function markdown(run: BenchRun): string {
  const n = run.connections
  const lines = [
    `# openai-tasks benchmark — ${run.date}`,
    '',
    `Node ${run.node}, ${run.cpus} CPUs; each run ${run.durationSec} s after a ${run.warmupSec} s warm-up; ` +
      'load generator (autocannon), bench upstream and service all on this machine. ' +
      'Latencies in ms; "direct" = straight to the bench upstream, "through" = via the service.',
    '',
    `| scenario | req/s direct @${n} | req/s through @${n} | through/direct | p50 @1 direct | p50 @1 through | added p50 @1 | p99 @1 direct | p99 @1 through | added p99 @1 | p99 @${n} direct | p99 @${n} through | added p99 @${n} |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const s of run.scenarios) {
    const d = derive(s)
    if (!d || !s.direct || !s.through) {
      lines.push(`| ${s.title} | n/a (${s.skipped ?? 'not measured'}) |${' |'.repeat(11)}`)
      continue
    }
    const { direct, through } = s
    lines.push(
      `| ${s.title} | ${num(direct.loaded.reqPerSec)} | ${num(through.loaded.reqPerSec)} | ${num(d.throughputPct, 1)} % ` +
        `| ${ms(direct.single.p50Ms)} | ${ms(through.single.p50Ms)} | ${signedMs(d.addedP50Single)} ` +
        `| ${ms(direct.single.p99Ms)} | ${ms(through.single.p99Ms)} | ${signedMs(d.addedP99Single)} ` +
        `| ${ms(direct.loaded.p99Ms)} | ${ms(through.loaded.p99Ms)} | ${signedMs(d.addedP99Loaded)} |`,
    )
  }
  lines.push(
    '',
    `CPU during the runs at ${n} connections, in % of one core (the machine has ${run.cpus}), and CPU time per answered request:`,
    '',
    '| scenario | side | load generator | bench upstream | service | other processes | service CPU µs/request |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  )
  for (const s of run.scenarios) {
    for (const [side, pair] of [['direct', s.direct], ['through', s.through]] as const) {
      if (!pair) continue
      const { cpu, reqPerSec } = pair.loaded
      const perRequest = side === 'through' ? num((cpu.service / 100 / reqPerSec) * 1e6) : '—'
      lines.push(`| ${s.title} | ${side} | ${num(cpu.loadgen)} % | ${num(cpu.upstream)} % | ${num(cpu.service)} % | ${num(cpu.other)} % | ${perRequest} |`)
    }
  }
  const { service } = run
  lines.push(
    '',
    `Service (${service.dir}${service.nodeArgs.length ? `, node ${service.nodeArgs.join(' ')}` : ''}): ready in ${num(service.startupMs)} ms; RSS idle after start ${num(service.idleRssMb ?? NaN, 1)} MB, ` +
      `after the run ${num(service.rssMb ?? NaN, 1)} MB (peak ${num(service.peakRssMb ?? NaN, 1)} MB).`,
    '',
    '## Targets',
    '',
    '| target | scenario | value | limit | result |',
    '| --- | --- | ---: | ---: | --- |',
  )
  for (const t of targets(run)) {
    const value = t.unit === '%' ? `${num(t.value, 1)} %` : t.unit === 'ms' ? `${signedMs(t.value)} ms` : `${num(t.value, 1)} MB`
    lines.push(`| ${t.name} | ${t.scenario} | ${value} | ${t.kind === 'min' ? '≥' : '≤'} ${t.limit} ${t.unit} | ${t.met ? 'met' : '**not met**'} |`)
  }
  for (const s of run.scenarios) if (s.skipped) lines.push(`| (all) | ${s.title} | n/a (${s.skipped}) | | n/a |`)
  const warns = warnings(run)
  if (warns.length) {
    lines.push('', '## Warnings', '', ...warns.map((w) => `- ${w}`))
    if (service.logTail.length) lines.push('', '```', ...service.logTail, '```')
  }
  return `${lines.join('\n')}\n`
}
