/**
 * `npm run bench` (`npm run bench -- --quick`, or BENCH_QUICK=1, for a short smoke run): the stand-in
 * OpenAI, then, in one run, the same load straight to it and through the service, the bare
 * forwarder and Portkey; writes bench/results/latest.{md,json,svg}. bench/README.md explains it.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { cacheBenchmark, cacheMarkdown } from './cache.ts'
import { deploymentsFailover, deploymentsMarkdown } from './deployments.ts'
import { eventCpu } from './event-cpu.ts'
import { frozenRedis, sigtermUnderLoad, stalledReaders } from './faults.ts'
import { concurrentCalls, summarize, type Summary } from './load.ts'
import { measured, ROOT, stop, usage } from './processes.ts'
import { ENV_SCHEMA } from '../src/config.ts'
import { chart, markdown } from './report.ts'
import type { Results } from './results.ts'
import {
  allocator,
  buildService,
  productionNodeArgs,
  startForwarder,
  startPortkey,
  startService,
  startUpstream,
  type Kind,
  type Target,
} from './targets.ts'
import { throughput } from './throughput.ts'
import { tracingCost, tracingMarkdown } from './tracing.ts'

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1'
const tracingOnly = process.argv.includes('--tracing')
const deploymentsOnly = process.argv.includes('--deployments')
const cacheOnly = process.argv.includes('--cache')
const plan = quick
  ? {
      levels: [100, 500],
      pauseMs: 1000,
      throughputS: 3,
      rounds: 2,
      stalled: 50,
      windowMs: 8000,
      redisCalls: 5,
      sigtermClients: 50,
      burst: 500,
      tracingRounds: 1,
    }
  : {
      levels: [250, 1000, 2000, 5000],
      pauseMs: 2000,
      throughputS: 5,
      rounds: 3,
      stalled: 300,
      windowMs: 10_000,
      redisCalls: 10,
      sigtermClients: 200,
      burst: 2000,
      tracingRounds: 3,
    }
const env = (name: string, fallback: number): number => Number(process.env[`BENCH_UPSTREAM_${name}`] ?? fallback)
const TOKENS = env('TOKENS', 40)
const STREAM_DEADLINE_MS = 60_000

// Every loop below is bounded; this bounds the whole run too, whatever hangs.
setTimeout(() => {
  console.error('bench: still running after 30 minutes; giving up')
  process.exit(1)
}, 30 * 60_000).unref()

const started = performance.now()
const log = (line: string): void =>
  console.log(`bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s: ${line}`)

log('npm run build')
await buildService()
const { direct, child: upstreamChild } = await startUpstream()

// `--tracing`: only the tracing cost comparison (bench/tracing.ts), written beside the results.
if (tracingOnly) {
  const cost = await tracingCost(direct, plan.throughputS, plan.rounds, log)
  await stop(upstreamChild)
  const report = tracingMarkdown(cost, `npm run bench -- --tracing${quick ? ' --quick' : ''}`)
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true })
  writeFileSync(join(ROOT, 'bench', 'results', 'tracing.md'), report)
  console.log(`\n${report}`)
  process.exit(0)
}

// `--deployments`: only the failover comparison (bench/deployments.ts), written beside the results.
if (deploymentsOnly) {
  const failoverPlan = {
    calls: quick ? 400 : 800,
    rampMs: quick ? 5_000 : 10_000,
    rateLimitEvery: 3,
    retryAfterS: 1,
    jsonMs: [env('JSON_MIN_MS', 1000), env('JSON_MAX_MS', 4000)] as [number, number],
  }
  const command = `npm run bench -- --deployments${quick ? ' --quick' : ''}`
  const failover = await deploymentsFailover(direct, failoverPlan, command, log)
  await stop(upstreamChild)
  const dir = join(ROOT, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'deployments.json'), `${JSON.stringify(failover, null, 2)}\n`)
  writeFileSync(join(dir, 'deployments.md'), deploymentsMarkdown(failover))
  console.log(`\n${deploymentsMarkdown(failover)}`)
  process.exit(0)
}
// `--cache`: only the embeddings cache's nightly job (bench/cache.ts), written beside the results.
if (cacheOnly) {
  await stop(upstreamChild)
  const cachePlan = {
    texts: quick ? 2_000 : 10_000,
    batchSize: 100,
    concurrency: 4,
    changedShare: 0.1,
    dimensions: 1536,
    latency: { baseMs: 150, perInputMs: 1.5 },
    singleHits: quick ? 500 : 2_000,
    rounds: 2,
  }
  const report = await cacheBenchmark(cachePlan, `npm run bench -- --cache${quick ? ' --quick' : ''}`, log)
  const dir = join(ROOT, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'cache.json'), `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(join(dir, 'cache.md'), cacheMarkdown(report))
  console.log(`\n${cacheMarkdown(report)}`)
  process.exit(0)
}
const results: Results = {
  date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
  quick,
  durationS: 0,
  machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, load average ${loadavg()[0]!.toFixed(1)} before the run`,
  node: process.version,
  upstream: {
    jsonMs: [env('JSON_MIN_MS', 1000), env('JSON_MAX_MS', 4000)],
    ttftMs: env('TTFT_MS', 500),
    tokens: TOKENS,
    tokenRate: env('TOKEN_RATE', 10),
  },
  service: { command: `node ${productionNodeArgs().join(' ')} dist/server.js`, allocator: allocator.description },
  portkey: '',
  levels: plan.levels,
  concurrency: [],
  throughput: {},
  faults: {},
  errors: [],
}

/** The proxies, freshly started: each scenario measures memory from its own idle start. */
async function startProxies(): Promise<Target[]> {
  const proxies = [await startService(direct), await startForwarder(direct)]
  const portkey = await startPortkey(direct)
  if ('error' in portkey) results.portkey = `n/a: ${portkey.error}`
  else {
    results.portkey = `@portkey-ai/gateway 1.15.2 from npm (\`node build/start-server.js\`), forwarding to the stand-in as a custom OpenAI host`
    proxies.push(portkey)
  }
  return proxies
}

async function warmUp(target: Target): Promise<void> {
  for (const kind of ['stream', 'json'] as const) {
    await concurrentCalls(target, {
      kind,
      instant: true,
      count: 50,
      rampMs: 100,
      deadlineMs: 10_000,
      expectTokens: TOKENS,
    })
  }
}

const IDLE_MEMORY_RELEASE_MS = ENV_SCHEMA.properties.IDLE_MEMORY_RELEASE_MS.default

async function concurrency(kind: Kind): Promise<void> {
  const proxies = await startProxies()
  const idle = new Map<Target, number>()
  for (const proxy of proxies) await warmUp(proxy)
  // Idle RSS once the service has given back what the warm-up left (within 1.25 × IDLE_MEMORY_RELEASE_MS).
  await sleep(IDLE_MEMORY_RELEASE_MS * 1.25 + 2_000)
  for (const proxy of proxies) idle.set(proxy, (await usage(proxy.child!.pid)).rssBytes)
  for (const level of plan.levels) {
    for (const target of [direct, ...proxies]) {
      await sleep(plan.pauseMs)
      const options = {
        kind,
        instant: false,
        count: level,
        rampMs: 1000,
        deadlineMs: STREAM_DEADLINE_MS,
        expectTokens: TOKENS,
      }
      const run = await measured(target.child?.pid, () => concurrentCalls(target, options))
      const summary = summarize(run.result)
      results.concurrency.push({
        kind,
        level,
        via: target.name,
        summary,
        cpuS: run.cpuS,
        idleRss: idle.get(target),
        peakRss: run.peakRss,
      })
      const failed = Object.entries(summary.failures)
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ')
      log(
        `${kind} ×${level} via ${target.name}: ${summary.completed}/${summary.sent} done, p99 ${summary.duration?.p99.toFixed(0) ?? 'n/a'} ms${failed && `; ${failed}`}`,
      )
    }
  }
  for (const proxy of proxies) await stop(proxy.child)
}

/** Rounds interleaved across the sides, the best of each kept: other load on the machine only ever slows a run down. */
async function zeroLatency(): Promise<void> {
  const proxies = await startProxies()
  for (let round = 0; round < plan.rounds; round++) {
    for (const target of [direct, ...proxies]) {
      await sleep(plan.pauseMs)
      const result = await throughput(target, plan.throughputS)
      if (result.reqPerS > (results.throughput[target.name]?.reqPerS ?? 0)) results.throughput[target.name] = result
      log(`throughput via ${target.name}: ${result.reqPerS.toFixed(0)} req/s`)
    }
  }
  for (const proxy of proxies) await stop(proxy.child)
}

/**
 * `plan.burst` streams opened at once (no ramp): direct, then through a service started for it the
 * moment its /readyz first answers 200, then again through the same process, warm.
 */
async function coldBurst(): Promise<void> {
  const options = {
    kind: 'stream' as const,
    instant: false,
    count: plan.burst,
    rampMs: 0,
    deadlineMs: STREAM_DEADLINE_MS,
    expectTokens: TOKENS,
  }
  const report = (via: string, s: Summary): void => {
    const failed = Object.entries(s.failures)
      .map(([k, n]) => `${k} ×${n}`)
      .join(', ')
    log(
      `burst ×${plan.burst} via ${via}: ${s.completed}/${s.sent} done, p99 ${s.duration?.p99.toFixed(0) ?? 'n/a'} ms${failed && `; ${failed}`}`,
    )
  }
  await sleep(plan.pauseMs)
  const directRun = summarize(await concurrentCalls(direct, options))
  report('direct', directRun)
  await sleep(plan.pauseMs)
  const starting = performance.now()
  const service = await startService(direct, {}, 'service, cold burst')
  const readyAfterMs = performance.now() - starting
  try {
    const cold = await measured(service.child.pid, () => concurrentCalls(service, options))
    const burst = { streams: plan.burst, readyAfterMs, direct: directRun }
    results.coldBurst = { ...burst, cold: { summary: summarize(cold.result), cpuS: cold.cpuS, peakRss: cold.peakRss } }
    report(`the service, ready ${readyAfterMs.toFixed(0)} ms after its start`, results.coldBurst.cold.summary)
    await sleep(plan.pauseMs)
    const warm = await measured(service.child.pid, () => concurrentCalls(service, options))
    results.coldBurst.warm = { summary: summarize(warm.result), cpuS: warm.cpuS, peakRss: warm.peakRss }
    report('the service again, warm', results.coldBurst.warm.summary)
  } finally {
    await stop(service.child)
  }
}

/** The CPU-per-event target's levels that this plan runs, service and forwarder alternating (bench/event-cpu.ts). */
async function eventCpuRounds(): Promise<void> {
  const levels = [1000, 2000].filter((level) => plan.levels.includes(level))
  if (!levels.length) return
  const service = await startService(direct)
  const forwarder = await startForwarder(direct)
  try {
    for (const target of [service, forwarder]) await warmUp(target)
    const options = {
      levels,
      rounds: plan.rounds,
      pauseMs: plan.pauseMs,
      tokens: TOKENS,
      deadlineMs: STREAM_DEADLINE_MS,
    }
    results.eventCpu = await eventCpu({ service, forwarder }, options, log)
  } finally {
    await stop(service.child)
    await stop(forwarder.child)
  }
}

const steps: Array<[string, () => Promise<void>]> = [
  ['streams', () => concurrency('stream')],
  ['CPU per token event', eventCpuRounds],
  ['JSON calls', () => concurrency('json')],
  ['zero-latency throughput', zeroLatency],
  ['cold burst', coldBurst],
  [
    'tracing',
    async () => {
      results.tracing = await tracingCost(direct, plan.throughputS, plan.tracingRounds, log)
    },
  ],
  [
    'stalled readers',
    async () => {
      results.faults.stalledReaders = await stalledReaders(direct, plan.stalled, plan.windowMs)
    },
  ],
  [
    'stalled readers cut off',
    async () => {
      results.faults.stalledReadersCut = await stalledReaders(direct, plan.stalled, 5_000, 2_000)
    },
  ],
  [
    'frozen Redis',
    async () => {
      results.faults.frozenRedis = await frozenRedis(direct, plan.redisCalls)
    },
  ],
  [
    'SIGTERM under load',
    async () => {
      results.faults.sigterm = await sigtermUnderLoad(direct, plan.sigtermClients, 2000)
    },
  ],
]
for (const [name, step] of steps) {
  log(name)
  try {
    await step()
  } catch (err) {
    results.errors.push(`${name}: ${(err as Error).stack ?? err}`)
    log(`${name} failed: ${(err as Error).message}`)
  }
}
await stop(upstreamChild)

results.durationS = (performance.now() - started) / 1000
const dir = join(ROOT, 'bench', 'results')
mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(join(dir, 'latest.md'), markdown(results))
writeFileSync(join(dir, 'latest.svg'), chart(results))
console.log(`\n${markdown(results)}`)
process.exit(0)
