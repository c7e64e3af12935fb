/**
 * Load at a fixed request rate, open loop: requests start on schedule, evenly spaced, whatever
 * the answers do (a request finding every connection busy waits in the pool's queue, and that
 * wait counts in its latency: no coordinated omission). Latency counts from the moment the
 * request is handed to the pool — not from its slot on the schedule, whose up-to-1-ms timer
 * lateness is the generator's, not the server's.
 *
 * Not autocannon's `overallRate`: autocannon gives each connection a quota per second that it
 * sends back to back as fast as the answers come, then idles until the next second
 * (lib/httpClient.js, `reqsMadeThisSecond`) — half a second at saturation, half idle, whose p99
 * is the saturation p99 again.
 *
 * The generator runs in a worker thread: its own heap, away from the garbage the autocannon
 * runs leave in the main one, whose GC pauses (10+ ms) would land in the p99; and the same
 * worker for every run, warmed up once, since a fresh isolate's scavenges are long too.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { Pool } from 'undici'
import { Samples, type LoadResult } from './load.ts'

export interface PacedSpec {
  url: string
  headers: Record<string, string>
  body: string
  connections: number
  ratePerSec: number
  /** Seconds measured, after `warmupSec` of the same load whose answers are not counted. */
  durationSec: number
  warmupSec: number
}

export interface PacedResult extends LoadResult {
  /** The rate asked for. */
  targetRatePerSec: number
  /** Longest the generator's own event loop was held up during the run: its noise floor. */
  generatorStallMaxMs: number
}

/** Requests queued or in flight at most, per connection, before the rest are given up. */
const MAX_BACKLOG_PER_CONNECTION = 20

async function pacedLoad(spec: PacedSpec): Promise<PacedResult> {
  const url = new URL(spec.url)
  const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, keepAliveTimeout: 60_000 })
  const samples = new Samples()
  const stalls = monitorEventLoopDelay({ resolution: 1 })
  const interval = 1000 / spec.ratePerSec
  const measuredFrom = spec.warmupSec * 1000
  const end = measuredFrom + spec.durationSec * 1000
  let errors = 0
  let non2xx = 0
  let inFlight = 0
  const send = async (scheduledAt: number): Promise<void> => {
    inFlight++
    const sentAt = performance.now()
    try {
      const res = await pool.request({ method: 'POST', path: url.pathname, headers: spec.headers, body: spec.body })
      await res.body.dump({ limit: 1 << 30 })
      const latency = performance.now() - sentAt
      if (scheduledAt < measuredFrom) return
      if (res.statusCode >= 200 && res.statusCode < 300) samples.push(latency)
      else non2xx++
    } catch {
      if (scheduledAt >= measuredFrom) errors++
    } finally {
      inFlight--
    }
  }

  const start = performance.now()
  let sent = 0
  let measuring = false
  for (let now = 0; now < end; now = performance.now() - start) {
    if (!measuring && now >= measuredFrom) {
      measuring = true
      stalls.enable()
    }
    const due = Math.min(Math.floor(now / interval) + 1, Math.ceil(end / interval))
    for (; sent < due; sent++) {
      if (inFlight >= spec.connections * MAX_BACKLOG_PER_CONNECTION) {
        if (sent * interval >= measuredFrom) errors++
        continue
      }
      void send(sent * interval)
    }
    // Node's timers fire at most every millisecond: requests due within one go out together.
    await sleep(Math.max(1, Math.min(interval, 5)))
  }
  stalls.disable()
  const deadline = performance.now() + 10_000
  while (inFlight > 0 && performance.now() < deadline) await sleep(5)
  await pool.destroy()

  const { p50, p99, mean } = samples.summary()
  return {
    connections: spec.connections,
    durationSec: spec.durationSec,
    requests: samples.length,
    reqPerSec: samples.length / spec.durationSec,
    p50Ms: p50,
    p99Ms: p99,
    meanMs: mean,
    errors,
    non2xx,
    targetRatePerSec: spec.ratePerSec,
    generatorStallMaxMs: stalls.max / 1e6,
  }
}

/** Seconds of unmeasured load the generator's first run starts with: a fresh isolate's JIT and heap growth. */
const FIRST_RUN_EXTRA_WARMUP_SEC = 3

/** One worker for every run: a warmed-up isolate whose heap has settled (a fresh one collects far more). */
let generator: Worker | undefined

/** The fixed-rate run, in the generator's worker thread; `signal` ends it (and the bench) early. */
export function runPaced(spec: PacedSpec & { signal?: AbortSignal }): Promise<PacedResult> {
  const { signal, ...data } = spec
  if (!generator) {
    generator = new Worker(new URL(import.meta.url), { workerData: { pacedGenerator: true } })
    generator.unref()
    data.warmupSec += FIRST_RUN_EXTRA_WARMUP_SEC
  }
  const worker = generator
  return new Promise((resolve, reject) => {
    const stop = (): void => void stopPacedGenerator()
    const settle = (): void => {
      signal?.removeEventListener('abort', stop)
      worker.off('message', onMessage).off('error', onError).off('exit', onExit)
    }
    const onMessage = (result: PacedResult): void => (settle(), resolve(result))
    const onError = (err: Error): void => (settle(), reject(err))
    const onExit = (code: number): void => (settle(), reject(new Error(`fixed-rate load generator exited (${code})`)))
    signal?.addEventListener('abort', stop, { once: true })
    worker.on('message', onMessage).on('error', onError).on('exit', onExit)
    worker.postMessage(data)
  })
}

export async function stopPacedGenerator(): Promise<void> {
  const worker = generator
  generator = undefined
  await worker?.terminate()
}

if (!isMainThread && (workerData as { pacedGenerator?: boolean })?.pacedGenerator) {
  parentPort!.on('message', async (spec: PacedSpec) => parentPort!.postMessage(await pacedLoad(spec)))
}
