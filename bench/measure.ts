/** The measured runs — as fast as answers come (autocannon) or at a fixed rate — with their CPU shares. */
import { OTHER_CPU_LIMIT, type CpuMeter } from './cpu.ts'
import { runLoad, type LoadResult } from './load.ts'
import { runPaced } from './paced.ts'
import type { Measured, PairResult, RateMeasured } from './report.ts'
import type { RequestSpec } from './scenarios.ts'

export interface MeasureOptions {
  meter: CpuMeter
  signal: AbortSignal
  log: (line: string) => void
  durationSec: number
  warmupSec: number
  /** Connections of the loaded and fixed-rate runs. */
  connections: number
}

const busy = (r: Measured): string => (r.cpu.other > OTHER_CPU_LIMIT ? ` (busy machine: others ${r.cpu.other.toFixed(0)} % CPU)` : '')

export class Measurer {
  readonly #o: MeasureOptions

  constructor(options: MeasureOptions) {
    this.#o = options
  }

  /** One run, once the machine is quiet, with the CPU each process used during it. */
  async #measured<T extends LoadResult>(what: string, run: () => Promise<T>): Promise<T & Measured> {
    const { meter, signal, log } = this.#o
    signal.throwIfAborted()
    await meter.waitForQuiet(log)
    const before = await meter.snapshot()
    const result = await run()
    const cpu = meter.share(before, await meter.snapshot())
    signal.throwIfAborted()
    if (!result.requests) {
      throw new Error(`${what}: no 2xx answer in ${result.durationSec} s (${result.errors} errors, ${result.non2xx} non-2xx)`)
    }
    return { ...result, cpu }
  }

  /** As many requests as `connections` connections get answered, for `seconds`. */
  load(what: string, request: RequestSpec, connections: number, seconds: number): Promise<Measured> {
    return this.#measured(what, () => runLoad({ ...request, connections, durationSec: seconds, signal: this.#o.signal }))
  }

  /** Warm-up, then a loaded run; logged. */
  async loaded(what: string, request: RequestSpec): Promise<Measured> {
    const { connections, warmupSec, durationSec, log } = this.#o
    await this.load(`${what} warm-up`, request, connections, warmupSec)
    const loaded = await this.load(what, request, connections, durationSec)
    log(`  ${what} @${connections}: ${loaded.reqPerSec.toFixed(0)} req/s, p99 ${loaded.p99Ms.toFixed(3)} ms${busy(loaded)}`)
    return loaded
  }

  /** Warm-up, the loaded run (throughput, saturation latency), then the 1-connection run (latency). */
  async pair(what: string, request: RequestSpec): Promise<PairResult> {
    const loaded = await this.loaded(what, request)
    const single = await this.load(what, request, 1, this.#o.durationSec)
    this.#o.log(`  ${what} @1: p50 ${single.p50Ms.toFixed(3)} ms, p99 ${single.p99Ms.toFixed(3)} ms${busy(single)}`)
    return { loaded, single }
  }

  /** `ratePerSec` evenly spaced requests over `connections` connections, after a warm-up at that rate. */
  async fixedRate(what: string, request: RequestSpec, ratePerSec: number): Promise<RateMeasured> {
    const { connections, warmupSec, durationSec, signal, log } = this.#o
    const r = await this.#measured(what, () => runPaced({ ...request, connections, ratePerSec, durationSec, warmupSec, signal }))
    const stall = `generator stalls ≤ ${r.generatorStallMaxMs.toFixed(1)} ms`
    log(`  ${what} at ${ratePerSec.toFixed(0)} req/s: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, ${stall}${busy(r)}`)
    return r
  }
}
