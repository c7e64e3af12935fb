/** What `npm run bench:streaming` measured, its targets, and its report (bench/results/streaming.*). */
import { mkdir, writeFile } from 'node:fs/promises'
import { OTHER_CPU_LIMIT } from './cpu.ts'
import type { RssGrowth } from './rss-sampler.ts'
import { ms, num, signedMs, target, targetTable, type Target } from './targets.ts'
import type { ServiceFacts } from './service.ts'

export interface Distribution {
  n: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export interface FirstByteResult {
  title: string
  direct: Distribution
  through: Distribution
  /** Other processes' CPU during the phase, % of one core. */
  otherCpu: number
}

export interface MemoryResult {
  title: string
  bytes: number
  ms: number
  rss: RssGrowth
  otherCpu: number
}

export interface CancelResult {
  title: string
  /** Disconnect-to-abort times; a cancellation the upstream never saw is not in it. */
  times: Distribution
  missed: number
  otherCpu: number
}

export interface StreamingRun {
  date: string
  node: string
  cpus: number
  service: ServiceFacts & {
    /** openai_tasks_upstream_requests_in_flight after every cancellation: 0 when none leaked. */
    upstreamInFlightAfter?: number
  }
  firstByte: FirstByteResult[]
  slowRead?: MemoryResult & { bytesPerSec: number }
  upload?: MemoryResult
  cancel: CancelResult[]
}

export const STREAMING_LIMITS = { addedFirstByteMs: 5, rssGrowthMb: 20, cancelMs: 100 }

/** p50, p99 and max of a list of milliseconds (ascending rank, no interpolation). */
export function distribution(values: number[]): Distribution {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN
  return { n: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.at(-1) ?? NaN }
}

export function streamingTargets(run: StreamingRun): Target[] {
  const L = STREAMING_LIMITS
  const list: Target[] = []
  for (const f of run.firstByte) {
    list.push(
      target('added time to first byte, p50', f.title, f.through.p50Ms - f.direct.p50Ms, L.addedFirstByteMs, 'ms', 'max'),
      target('added time to first byte, p99', f.title, f.through.p99Ms - f.direct.p99Ms, L.addedFirstByteMs, 'ms', 'max'),
    )
  }
  if (run.slowRead) list.push(target('peak RSS growth, audio streamed to a slow reader', run.slowRead.title, run.slowRead.rss.growthMb, L.rssGrowthMb, 'MB', 'below'))
  if (run.upload) list.push(target('peak RSS growth, multipart upload', run.upload.title, run.upload.rss.growthMb, L.rssGrowthMb, 'MB', 'below'))
  for (const c of run.cancel) {
    // A cancellation the upstream never saw counts as over the limit.
    const p99 = c.missed > c.times.n / 100 ? Infinity : c.times.p99Ms
    list.push(
      target('client disconnect → upstream abort, p50', c.title, c.times.p50Ms, L.cancelMs, 'ms', 'max'),
      target('client disconnect → upstream abort, p99', c.title, p99, L.cancelMs, 'ms', 'max'),
    )
  }
  return list
}

export function streamingWarnings(run: StreamingRun): string[] {
  const out: string[] = []
  if (run.service.buildErrors?.length) out.push(`npm run build reported ${run.service.buildErrors.length} type errors (dist/ was emitted regardless, and ran)`)
  const phases = [...run.firstByte, ...(run.slowRead ? [run.slowRead] : []), ...(run.upload ? [run.upload] : []), ...run.cancel]
  for (const p of phases) {
    if (p.otherCpu > OTHER_CPU_LIMIT) out.push(`${p.title}: other processes used ${num(p.otherCpu)} % of a core meanwhile; figures unreliable`)
  }
  for (const c of run.cancel) if (c.missed) out.push(`${c.title}: ${c.missed} cancellations never reached the upstream as a closed connection within 5 s`)
  const inFlight = run.service.upstreamInFlightAfter
  if (inFlight) out.push(`${inFlight} upstream requests still in flight after the cancellations: aborts leak`)
  if (run.service.logLines) out.push(`the service wrote ${run.service.logLines} log lines at warn level or above`)
  return out
}

const secs = (v: number): string => num(v / 1000, 1)
const mb = (bytes: number): string => num(bytes / 1024 / 1024, 0)

export function streamingMarkdown(run: StreamingRun): string {
  const { service } = run
  const lines = [
    `# openai-tasks streaming benchmark — ${run.date}`,
    '',
    `Node ${run.node}, ${run.cpus} CPUs; \`node ${[...service.nodeArgs, service.entry].join(' ')}\` (${service.dir}; ${service.allocator ?? 'glibc malloc'}), bench upstream and client on this machine. ` +
      '"direct" = straight to the bench upstream, "through" = via the service.',
    '',
    `## Time to first byte (ms; ${run.firstByte[0]?.through.n ?? 0} sequential requests per side, direct and through interleaved)`,
    '',
    '| stream | p50 direct | p50 through | added p50 | p99 direct | p99 through | added p99 |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...run.firstByte.map(
      (f) =>
        `| ${f.title} | ${ms(f.direct.p50Ms)} | ${ms(f.through.p50Ms)} | ${signedMs(f.through.p50Ms - f.direct.p50Ms)} ` +
        `| ${ms(f.direct.p99Ms)} | ${ms(f.through.p99Ms)} | ${signedMs(f.through.p99Ms - f.direct.p99Ms)} |`,
    ),
    '',
    '## Service memory while streaming (VmRSS sampled every 50 ms)',
    '',
    '| case | bytes | time s | RSS before MB | peak MB | growth MB |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const m of [run.slowRead, run.upload]) {
    if (!m) continue
    lines.push(`| ${m.title} | ${mb(m.bytes)} MB | ${secs(m.ms)} | ${num(m.rss.baselineMb, 1)} | ${num(m.rss.peakMb, 1)} | ${num(m.rss.growthMb, 1)} |`)
  }
  lines.push(
    '',
    `## Client disconnect → upstream abort (ms; ${run.cancel[0] ? run.cancel[0].times.n + run.cancel[0].missed : 0} sequential cancellations each)`,
    '',
    '| route | p50 | p99 | max | missed |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...run.cancel.map((c) => `| ${c.title} | ${ms(c.times.p50Ms)} | ${ms(c.times.p99Ms)} | ${ms(c.times.maxMs)} | ${c.missed} |`),
    '',
    `Service: ready in ${num(service.startupMs)} ms; RSS idle ${num(service.idleRssMb ?? NaN, 1)} MB, after the run ${num(service.rssMb ?? NaN, 1)} MB ` +
      `(peak ${num(service.peakRssMb ?? NaN, 1)} MB); upstream requests in flight after the cancellations: ${service.upstreamInFlightAfter ?? 'n/a'}.`,
    '',
    '## Targets',
    '',
    ...targetTable(streamingTargets(run)),
  )
  const warns = streamingWarnings(run)
  if (warns.length) {
    lines.push('', '## Warnings', '', ...warns.map((w) => `- ${w}`))
    if (service.logTail.length) lines.push('', '```', ...service.logTail, '```')
  }
  return `${lines.join('\n')}\n`
}

/** Writes streaming.md and streaming.json into `dir`; returns the markdown. */
export async function writeStreamingResults(run: StreamingRun, dir: URL): Promise<string> {
  await mkdir(dir, { recursive: true })
  const md = streamingMarkdown(run)
  const json = { ...run, limits: STREAMING_LIMITS, targets: streamingTargets(run) }
  await Promise.all([
    writeFile(new URL('streaming.md', dir), md),
    writeFile(new URL('streaming.json', dir), `${JSON.stringify(json, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v), 2)}\n`),
  ])
  return md
}
