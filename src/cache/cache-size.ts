import { openCallsBudgetBytes, processLimits, type ProcessLimits } from '../upstream/capacity.ts'

const MiB = 1024 * 1024
/**
 * Below this a cache holds too few answers to be worth its lookups (16 MiB: some 500 vectors of
 * 1,536 floats as JSON); above the ceiling every replica would hold gigabytes it loses on each
 * restart, which a shared Redis does better (REDIS_URL).
 */
const FLOOR_BYTES = 16 * MiB
const CEILING_BYTES = 1024 * MiB
/**
 * An eighth of what open calls may take: with every call open and the cache full at once, the
 * process still keeps about 15 % of its memory limit free for bursts and GC.
 */
const SHARE_OF_CALLS_BUDGET = 1 / 8

/** The default CACHE_MAX_BYTES, from the memory limit capacity.ts reads (cgroup, else RAM). */
export function defaultCacheMaxBytes(limits: ProcessLimits = processLimits()): number {
  const share = Math.floor(openCallsBudgetBytes(limits) * SHARE_OF_CALLS_BUDGET)
  return Math.min(CEILING_BYTES, Math.max(FLOOR_BYTES, share))
}
