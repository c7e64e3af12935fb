import { setTimeout as sleep } from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'

/** `global.gc`, or the same function obtained at run time: `node --test` does not pass --expose-gc. */
export function findGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed) return exposed
  try {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as unknown
    return typeof gc === 'function' ? (gc as () => void) : undefined
  } catch {
    return undefined
  }
}

/** heapUsed once the dust settles: the least of a few samples, each after a full GC when available. */
export async function settledHeap(gc: (() => void) | undefined): Promise<number> {
  let least = Infinity
  for (let i = 0; i < 5; i++) {
    gc?.()
    await sleep(gc ? 20 : 200)
    least = Math.min(least, process.memoryUsage().heapUsed)
  }
  return least
}

/** The memory JavaScript holds: the heap, and the buffers outside it (an answer's chunks are those). */
function memoryInUse(): number {
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}

/**
 * How far the memory JavaScript holds (heap and buffers) rose while `work` ran, at its highest,
 * sampled every few milliseconds: buffering held across many reads of a body shows.
 */
export async function peakMemoryGrowth<T>(work: () => Promise<T>): Promise<{ value: T; growth: number }> {
  const start = memoryInUse()
  let peak = start
  const sampler = setInterval(() => {
    peak = Math.max(peak, memoryInUse())
  }, 2)
  try {
    const value = await work()
    peak = Math.max(peak, memoryInUse())
    return { value, growth: peak - start }
  } finally {
    clearInterval(sampler)
  }
}
