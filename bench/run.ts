/**
 * `npm run bench`: the service's overhead over a fast stand-in OpenAI, measured in one run.
 * Builds the service and starts bench/upstream.ts and `node dist/server.js` as child processes;
 * loads each scenario straight at the upstream and through the service (as fast as answers come,
 * at 1 connection, and at a fixed rate), then embeddings one by one vs in batches, then text
 * generation through `node dist/cluster.js`; writes bench/results/latest.*.
 * Settings: see SETTINGS_HELP in bench/settings.ts (`node bench/run.ts --help`).
 */
import { availableParallelism } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { prepareBatch } from './batch.ts'
import { CpuMeter } from './cpu.ts'
import { Measurer } from './measure.ts'
import { stopPacedGenerator } from './paced.ts'
import { memoryOf, processTree, treeMemoryOf } from './proc.ts'
import { guardBenchRun, runToExit, stopChild } from './processes.ts'
import { medianByP99, type BatchResult, type BenchRun, type ClusterResult, type RateMeasured, type ReferenceResult, type ScenarioResult } from './report.ts'
import { measureReferences } from './references.ts'
import { prepare, type PreparedScenario, type RequestSpec } from './scenarios.ts'
import { entryOf, launch, serviceFacts, startBenchPair } from './service.ts'
import { number, readSettings, SETTINGS_HELP, type Settings } from './settings.ts'
import { writeResults } from './write-results.ts'
import { ENV_SCHEMA } from '../src/config.ts'

const log = (line: string): void => void process.stderr.write(`${line}\n`)

if (process.argv.includes('--help')) {
  log(`npm run bench: the service's overhead over a stand-in OpenAI.\n${SETTINGS_HELP}`)
  process.exit(0)
}

// The service gives memory back once IDLE_MEMORY_RELEASE_MS pass without an OpenAI call, checked
// every as often: within twice that after the last run, plus slack. The service inherits this
// process's environment, so a value set here is the one it runs with; otherwise its default.
let settings: Settings
let idleReleaseMs: number
try {
  settings = readSettings()
  idleReleaseMs = number(process.env, 'IDLE_MEMORY_RELEASE_MS', ENV_SCHEMA.properties.IDLE_MEMORY_RELEASE_MS.default, true)
} catch (err) {
  log(`bench: ${(err as Error).message}\n${SETTINGS_HELP}`)
  process.exit(1)
}
const { durationSec, warmupSec, connections } = settings
const settleMs = 2 * idleReleaseMs + 2000

// Bound on the whole run: the build, every run, waits for a quiet machine, start-ups and slack.
const loadedSec = warmupSec + durationSec + 1
const perScenario = 2 * (loadedSec + durationSec + 1) + 2 * settings.rateRepeats * (loadedSec + 1)
// The references load four servers in turn, the other sections two.
const perSection = (section: string): number => (section === 'references' ? 4 : 2) * loadedSec + 40
const sectionsSec = settings.sections.reduce((sum, section) => sum + perSection(section), 0)
const budgetMs = (180 + settings.scenarios.length * perScenario + sectionsSec + 60) * 1000 + settings.quietWaitMs + settleMs
const interrupted = guardBenchRun('bench', log, budgetMs)

/** Direct and through: loaded and 1-connection runs, then both at the same fixed rate. */
async function measureScenario(
  measurer: Measurer,
  title: string,
  requests: { direct: RequestSpec; through: RequestSpec },
): Promise<Omit<ScenarioResult, 'id' | 'title'>> {
  const direct = await measurer.pair(`${title} direct`, requests.direct)
  const through = await measurer.pair(`${title} through`, requests.through)
  const ratePerSec = Math.max(1, Math.round(settings.rateFraction * through.loaded.reqPerSec))
  const runs: { direct: RateMeasured[]; through: RateMeasured[] } = { direct: [], through: [] }
  const repeats = settings.rateRepeats
  for (let i = 1; i <= repeats; i++) {
    const nth = repeats > 1 ? ` (${i}/${repeats})` : ''
    runs.direct.push(await measurer.fixedRate(`${title} direct${nth}`, requests.direct, ratePerSec))
    runs.through.push(await measurer.fixedRate(`${title} through${nth}`, requests.through, ratePerSec))
  }
  const fixedRate = {
    ratePerSec,
    direct: medianByP99(runs.direct),
    through: medianByP99(runs.through),
    p99Runs: { direct: runs.direct.map((r) => r.p99Ms), through: runs.through.map((r) => r.p99Ms) },
  }
  return { direct, through, fixedRate }
}

async function measureBatch(measurer: Measurer, serviceUrl: string): Promise<BatchResult> {
  const { single, batch } = await prepareBatch(serviceUrl, settings.batchSize)
  return {
    batchSize: settings.batchSize,
    single: await measurer.loaded('text-embeddings single', single),
    batch: await measurer.loaded(`text-embeddings batch of ${settings.batchSize}`, batch),
  }
}

/** Text generation JSON through the cluster entry point, started for this run only. */
async function measureCluster(measurer: Measurer, meter: CpuMeter, upstreamPort: number, through: RequestSpec): Promise<ClusterResult> {
  const cluster = await launch(settings, upstreamPort, 'cluster', { WORKERS: String(settings.workers) })
  // /healthz answers once one worker listens: wait for the others to be there too.
  const deadline = Date.now() + 10_000
  while ((await processTree(cluster.child.proc.pid!)).length < settings.workers + 1 && Date.now() < deadline) await sleep(100)
  await sleep(500)
  const single = meter.service
  meter.service = cluster.child
  try {
    const url = new URL(through.url)
    const clusterUrl = new URL(url.pathname, cluster.url).href
    const result = await measurer.loaded(`text-generation JSON through the cluster (${settings.workers} workers)`, { ...through, url: clusterUrl })
    const memory = await treeMemoryOf(cluster.child.proc.pid!)
    return {
      workers: settings.workers,
      entry: entryOf(settings, 'cluster'),
      nodeArgs: cluster.nodeArgs,
      startupMs: cluster.startupMs,
      through: result,
      ...(memory && { rssMb: memory.rssMb }),
      logLines: cluster.child.logLines,
      logTail: cluster.child.logTail,
    }
  } finally {
    meter.service = single
    await stopChild(cluster.child)
  }
}

async function main(): Promise<void> {
  log(`bench: ${durationSec} s runs, ${warmupSec} s warm-up, ${connections} connections`)
  const { build, upstream, upstreamUrl, service, pid, idle } = await startBenchPair(settings, log, 'bench')

  const meter = new CpuMeter(upstream.child, service.child, settings.quietWaitMs)
  const measurer = new Measurer({ meter, signal: interrupted, log, durationSec, warmupSec, connections })
  const scenarios: ScenarioResult[] = []
  const prepared = new Map<string, PreparedScenario>()
  for (const scenario of settings.scenarios) {
    const requests = await prepare(scenario, service.url, upstreamUrl)
    if ('skipped' in requests) {
      log(`  ${scenario.title}: n/a (${requests.skipped})`)
      scenarios.push({ id: scenario.id, title: scenario.title, skipped: requests.skipped })
      continue
    }
    prepared.set(scenario.id, requests)
    scenarios.push({ id: scenario.id, title: scenario.title, ...(await measureScenario(measurer, scenario.title, requests)) })
  }
  const afterScenarios = await memoryOf(pid)
  const batch = settings.sections.includes('text-embeddings-batch') ? await measureBatch(measurer, service.url) : undefined
  const memory = await memoryOf(pid)
  log(`  waiting ${settleMs / 1000} s for the idle service to give memory back`)
  await sleep(settleMs, undefined, { signal: interrupted })
  const settled = await memoryOf(pid)

  const generation = prepared.get('text-generation-json')
  const generationResult = scenarios.find((s) => s.id === 'text-generation-json')
  // The single process makes way: on a small machine an idle one still takes memory and wake-ups.
  await stopChild(service.child)
  let references: ReferenceResult | undefined
  if (settings.sections.includes('references') && generation && generationResult?.direct && generationResult.through) {
    references = await measureReferences({
      settings,
      measurer,
      meter,
      bench: { ...upstream, direct: generationResult.direct.loaded, through: generationResult.through.loaded },
      generation,
    })
  }
  let cluster: ClusterResult | undefined
  if (settings.sections.includes('cluster') && generation) {
    cluster = await measureCluster(measurer, meter, upstream.port, generation.through)
  }

  const run: BenchRun = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    durationSec,
    warmupSec,
    connections,
    rateFraction: settings.rateFraction,
    service: {
      ...serviceFacts(settings, build, service, idle, memory),
      ...(afterScenarios && { afterScenariosRssMb: afterScenarios.rssMb }),
      ...(settled && { settledRssMb: settled.rssMb, settleMs }),
    },
    scenarios,
    ...(batch && { batch }),
    ...(references && { references }),
    ...(cluster && { cluster }),
  }
  const md = await writeResults(run, new URL('results/', import.meta.url))
  process.stdout.write(`\n${md}\nwritten: bench/results/latest.md, latest.json, latest.svg\n`)
}

await runToExit('bench', log, interrupted, main, stopPacedGenerator)
