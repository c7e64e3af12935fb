/** A process's resident memory sampled from /proc every few milliseconds while something runs. */
import { memoryOf } from './proc.ts'

export interface RssGrowth {
  /** RSS just before, MB. */
  baselineMb: number
  /** Highest sampled RSS, MB. */
  peakMb: number
  /** peak − baseline, MB. */
  growthMb: number
  samples: number
}

/** Runs `work` while sampling the VmRSS of `pid` every `intervalMs`; resolves to what `work` gave and the growth. */
export async function whileSampling<T>(pid: number, work: () => Promise<T>, intervalMs = 50): Promise<{ result: T; rss: RssGrowth }> {
  const baselineMb = (await memoryOf(pid))?.rssMb ?? NaN
  let peakMb = baselineMb
  let samples = 0
  let reading = false
  const sample = async (): Promise<void> => {
    if (reading) return
    reading = true
    const rss = (await memoryOf(pid))?.rssMb
    reading = false
    if (rss === undefined) return
    samples++
    if (rss > peakMb) peakMb = rss
  }
  const timer = setInterval(() => void sample(), intervalMs)
  try {
    const result = await work()
    await sample()
    return { result, rss: { baselineMb, peakMb, growthMb: peakMb - baselineMb, samples } }
  } finally {
    clearInterval(timer)
  }
}
