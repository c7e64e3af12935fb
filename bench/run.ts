/**
 * `npm run bench`: the service's overhead over a fast stand-in OpenAI, measured in one run.
 * Starts bench/upstream.ts and the service as child processes, loads each scenario straight at
 * the upstream and through the service with autocannon, and writes bench/results/latest.*.
 * Settings: see SETTINGS_HELP in bench/settings.ts (`node bench/run.ts --help`).
 */
import { availableParallelism } from 'node:os'
import { CpuMeter, OTHER_CPU_LIMIT } from './cpu.ts'
import { runLoad } from './load.ts'
import { killAllNow, memoryOf, ROOT, startService, startUpstream, stopAll, whenAChildDies } from './processes.ts'
import type { BenchRun, Measured, PairResult, ScenarioResult } from './report.ts'
import { writeResults } from './write-results.ts'
import { prepare, type RequestSpec } from './scenarios.ts'
import { readSettings, SETTINGS_HELP, type Settings } from './settings.ts'

const log = (line: string): void => void process.stderr.write(`${line}\n`)

if (process.argv.includes('--help')) {
  log(`npm run bench: the service's overhead over a stand-in OpenAI.\n${SETTINGS_HELP}`)
  process.exit(0)
}

let settings: Settings
try {
  settings = readSettings()
} catch (err) {
  log(`bench: ${(err as Error).message}\n${SETTINGS_HELP}`)
  process.exit(1)
}
const { durationSec, warmupSec, connections } = settings

// Ctrl-C / SIGTERM, or a child dying, stop the load; then the finally block stops the children.
const interrupted = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping`)
    interrupted.abort(new Error(`interrupted by ${signal}`))
  })
}
whenAChildDies((message) => interrupted.abort(new Error(message)))
process.once('exit', killAllNow)

// Bound on the whole run: every scenario measured, waits for a quiet machine, start-up and slack.
const perSide = warmupSec + 2 * durationSec + 2
const budgetMs = (settings.scenarios.length * 2 * perSide + 60) * 1000 + settings.quietWaitMs
setTimeout(() => {
  log(`bench: still running after ${budgetMs / 1000} s, giving up`)
  killAllNow()
  process.exit(2)
}, budgetMs).unref()

/** Warm-up, then the loaded run (throughput, loaded latency), then the 1-connection run (latency). */
async function measure(title: string, side: string, request: RequestSpec, meter: CpuMeter): Promise<PairResult> {
  const run = async (conns: number, seconds: number): Promise<Measured> => {
    interrupted.signal.throwIfAborted()
    await meter.waitForQuiet(log)
    const before = await meter.snapshot()
    const result = await runLoad({ ...request, connections: conns, durationSec: seconds, signal: interrupted.signal })
    const cpu = meter.share(before, await meter.snapshot())
    interrupted.signal.throwIfAborted()
    if (!result.requests) {
      throw new Error(`${title} ${side}: no 2xx answer in ${seconds} s (${result.errors} errors, ${result.non2xx} non-2xx)`)
    }
    return { ...result, cpu }
  }
  const busy = (r: Measured): string => (r.cpu.other > OTHER_CPU_LIMIT ? ` (busy machine: others ${r.cpu.other.toFixed(0)} % CPU)` : '')
  await run(connections, warmupSec)
  const loaded = await run(connections, durationSec)
  log(`  ${title} ${side} @${connections}: ${loaded.reqPerSec.toFixed(0)} req/s, p99 ${loaded.p99Ms.toFixed(3)} ms${busy(loaded)}`)
  const single = await run(1, durationSec)
  log(`  ${title} ${side} @1: p50 ${single.p50Ms.toFixed(3)} ms, p99 ${single.p99Ms.toFixed(3)} ms${busy(single)}`)
  return { loaded, single }
}

async function main(): Promise<void> {
  log(`bench: ${durationSec} s runs, ${warmupSec} s warm-up, ${connections} connections`)
  const upstream = await startUpstream()
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`
  const service = await startService({ upstreamPort: upstream.port, dir: settings.serviceDir, nodeArgs: settings.serviceNodeArgs })
  const idle = await memoryOf(service.child)
  log(`bench: upstream ${upstreamUrl}, service ${service.url} (ready in ${service.startupMs.toFixed(0)} ms)`)

  const meter = new CpuMeter(upstream.child, service.child, settings.quietWaitMs)
  const scenarios: ScenarioResult[] = []
  for (const scenario of settings.scenarios) {
    const prepared = await prepare(scenario, service.url, upstreamUrl)
    if ('skipped' in prepared) {
      log(`  ${scenario.title}: n/a (${prepared.skipped})`)
      scenarios.push({ id: scenario.id, title: scenario.title, skipped: prepared.skipped })
      continue
    }
    const direct = await measure(scenario.title, 'direct', prepared.direct, meter)
    const through = await measure(scenario.title, 'through', prepared.through, meter)
    scenarios.push({ id: scenario.id, title: scenario.title, direct, through })
  }

  const memory = await memoryOf(service.child)
  const run: BenchRun = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    durationSec,
    warmupSec,
    connections,
    service: {
      dir: settings.serviceDir === ROOT.replace(/\/$/, '') ? 'this checkout' : settings.serviceDir,
      nodeArgs: settings.serviceNodeArgs,
      startupMs: service.startupMs,
      ...(idle && { idleRssMb: idle.rssMb }),
      ...memory,
      logLines: service.child.logLines,
      logTail: service.child.logTail,
    },
    scenarios,
  }
  const md = await writeResults(run, new URL('results/', import.meta.url))
  process.stdout.write(`\n${md}\nwritten: bench/results/latest.md, latest.json, latest.svg\n`)
}

let exitCode = 0
try {
  await main()
} catch (err) {
  const reason = interrupted.signal.aborted ? (interrupted.signal.reason as Error) : (err as Error)
  exitCode = reason.message.startsWith('interrupted by') ? 130 : 1
  log(`bench failed: ${reason.message}`)
} finally {
  await stopAll()
}
process.exit(exitCode)
