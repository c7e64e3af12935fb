/** Who used the CPUs during a run: the load generator, the two children, everything else. */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from './processes.ts'
import { machineBusySeconds, treeCpuSeconds } from './proc.ts'

/** CPU used during a run, in % of one core, per process. */
export interface CpuShare {
  loadgen: number
  upstream: number
  service: number
  /** Everything else on the machine: a busy machine makes the figures unreliable. */
  other: number
}

/** CPU other processes may use during a run (% of one core) before the run is flagged. */
export const OTHER_CPU_LIMIT = 20

/** CPU seconds a child (with its own children: a cluster's workers) has used so far. */
const cpuSecondsOf = (child: Child): Promise<number> => treeCpuSeconds(child.proc.pid ?? -1)

type Snapshot = CpuShare & { at: number }

export class CpuMeter {
  /** The upstream answering (the bench upstream, or the contract stand-in for the reference runs). */
  upstream: Child
  /** The server being measured (the single process, the cluster, or the floor forwarder); none for direct runs without one. */
  service: Child | undefined
  /** What is left of the time the bench may spend waiting for a quiet machine. */
  #quietWaitLeftMs: number

  constructor(upstream: Child, service: Child, quietWaitMs: number) {
    this.upstream = upstream
    this.service = service
    this.#quietWaitLeftMs = quietWaitMs
  }

  /** Cumulative CPU seconds; `other` holds the whole machine's until share() subtracts ours. */
  async snapshot(): Promise<Snapshot> {
    const own = process.cpuUsage()
    return {
      at: performance.now(),
      loadgen: (own.user + own.system) / 1e6,
      upstream: await cpuSecondsOf(this.upstream),
      service: this.service ? await cpuSecondsOf(this.service) : 0,
      other: await machineBusySeconds(),
    }
  }

  share(before: Snapshot, after: Snapshot): CpuShare {
    const seconds = (after.at - before.at) / 1000
    const pct = (key: keyof CpuShare): number => (100 * (after[key] - before[key])) / seconds
    const ours = { loadgen: pct('loadgen'), upstream: pct('upstream'), service: pct('service') }
    return { ...ours, other: Math.max(0, pct('other') - ours.loadgen - ours.upstream - ours.service) }
  }

  /** Waits, within what is left of the allowance, until other processes leave the CPUs alone. */
  async waitForQuiet(log: (line: string) => void): Promise<void> {
    while (this.#quietWaitLeftMs > 0) {
      const before = await this.snapshot()
      await sleep(500)
      const { other } = this.share(before, await this.snapshot())
      if (!(other > OTHER_CPU_LIMIT)) return
      this.#quietWaitLeftMs -= 500
      if (this.#quietWaitLeftMs <= 0) log(`  the machine stays busy (others ${other.toFixed(0)} % CPU); measuring anyway`)
    }
  }
}
