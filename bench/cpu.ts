/** Who used the CPUs during a run: the load generator, the two children, everything else. */
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from './processes.ts'

/** Clock ticks per second of /proc times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100

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

/** CPU seconds (user + system) a child has used so far, from /proc/<pid>/stat. */
async function cpuSecondsOf(child: Child): Promise<number> {
  try {
    const stat = await readFile(`/proc/${child.proc.pid}/stat`, 'utf8')
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return NaN
  }
}

/** CPU seconds (all cores added up) the whole machine has spent busy so far, from /proc/stat. */
async function machineBusySeconds(): Promise<number> {
  try {
    const stat = await readFile('/proc/stat', 'utf8')
    // cpu  user nice system idle iowait irq softirq steal ...
    const ticks = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1, 9).map(Number)
    const total = ticks.reduce((a, b) => a + b, 0)
    return (total - (ticks[3] ?? 0) - (ticks[4] ?? 0)) / CLOCK_TICKS
  } catch {
    return NaN
  }
}

type Snapshot = CpuShare & { at: number }

export class CpuMeter {
  readonly #upstream: Child
  readonly #service: Child
  /** What is left of the time the bench may spend waiting for a quiet machine. */
  #quietWaitLeftMs: number

  constructor(upstream: Child, service: Child, quietWaitMs: number) {
    this.#upstream = upstream
    this.#service = service
    this.#quietWaitLeftMs = quietWaitMs
  }

  /** Cumulative CPU seconds; `other` holds the whole machine's until share() subtracts ours. */
  async snapshot(): Promise<Snapshot> {
    const own = process.cpuUsage()
    return {
      at: performance.now(),
      loadgen: (own.user + own.system) / 1e6,
      upstream: await cpuSecondsOf(this.#upstream),
      service: await cpuSecondsOf(this.#service),
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
