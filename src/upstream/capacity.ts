import { readFileSync } from 'node:fs'
import { totalmem } from 'node:os'

/**
 * What one open OpenAI call (a stream being relayed, or a JSON call awaiting its answer) costs
 * the process in resident memory, rounded up from `npm run bench` (bench/README.md explains how).
 */
export const BYTES_PER_OPEN_CALL = 128 * 1024
/** The process's own footprint with no call open, rounded up from the same measurement. */
export const BASELINE_BYTES = 128 * 1024 * 1024
/** Share of the memory limit that open calls may take; the rest is headroom for bursts and GC. */
const MEMORY_SHARE = 0.75
/** Each open call holds two sockets: the caller's and the one to OpenAI (HTTP/1.1). */
const FILES_PER_OPEN_CALL = 2
const RESERVED_FILES = 256

export interface ProcessLimits {
  /** Bytes the process may use: the cgroup limit, else the machine's memory. */
  memoryBytes: number
  /** Open file descriptors allowed, when known. */
  openFiles: number | undefined
}

/**
 * The default for MAX_CONCURRENT_UPSTREAM: as many open calls as fit in three quarters of the
 * memory limit above the baseline, and in the file-descriptor limit. CPU is guarded separately
 * (MAX_EVENT_LOOP_DELAY_MS sheds load when the event loop lags).
 */
export function defaultMaxConcurrentUpstream(limits: ProcessLimits = processLimits()): number {
  const byMemory = Math.floor(openCallsBudgetBytes(limits) / BYTES_PER_OPEN_CALL)
  const byFiles =
    limits.openFiles === undefined ? Infinity : Math.floor((limits.openFiles - RESERVED_FILES) / FILES_PER_OPEN_CALL)
  return Math.max(64, Math.min(byMemory, byFiles))
}

/** The memory open calls may take: three quarters of the limit, less the baseline. */
export function openCallsBudgetBytes(limits: ProcessLimits = processLimits()): number {
  return limits.memoryBytes * MEMORY_SHARE - BASELINE_BYTES
}

export function processLimits(): ProcessLimits {
  const machine = totalmem()
  // 0 or a huge value (cgroup v2 "max") means no limit of its own.
  const constrained = process.constrainedMemory()
  return {
    memoryBytes: constrained > 0 && constrained < machine ? constrained : machine,
    openFiles: openFilesLimit(),
  }
}

/** The soft RLIMIT_NOFILE, which Node raises to the hard limit at start (Linux only). */
function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
    const soft = Number(line?.split(/\s{2,}/)[1])
    return Number.isFinite(soft) ? soft : undefined
  } catch {
    return undefined
  }
}
