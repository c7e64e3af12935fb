/**
 * CPU per streamed token event, service against the bare forwarder, for the target: at each
 * level, rounds alternate between the two (streams ramped over 1 s, as in the concurrency rows)
 * and the best round of each is kept. One pass per level, as the concurrency rows are, moves
 * with whatever else the machine runs; other load only ever adds CPU, so the best is the figure.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { concurrentCalls, summarize } from './load.ts'
import { measured } from './processes.ts'
import type { Target } from './targets.ts'

export interface EventCpu {
  level: number
  /** µs of CPU per token event relayed, one figure per round, in the order run. */
  service: number[]
  forwarder: number[]
}

export async function eventCpu(
  sides: { service: Target; forwarder: Target },
  options: { levels: number[]; rounds: number; pauseMs: number; tokens: number; deadlineMs: number },
  log: (line: string) => void,
): Promise<EventCpu[]> {
  const runs: EventCpu[] = []
  for (const level of options.levels) {
    const run: EventCpu = { level, service: [], forwarder: [] }
    for (let round = 0; round < options.rounds; round++) {
      for (const side of ['service', 'forwarder'] as const) {
        await sleep(options.pauseMs)
        const target = sides[side]
        const call = () =>
          concurrentCalls(target, {
            kind: 'stream',
            instant: false,
            count: level,
            rampMs: 1000,
            deadlineMs: options.deadlineMs,
            expectTokens: options.tokens,
          })
        const { result, cpuS } = await measured(target.child?.pid, call)
        const { tokens } = summarize(result)
        if (cpuS === undefined || !tokens) continue
        const us = (cpuS * 1e6) / tokens
        run[side].push(us)
        log(`CPU per token event ×${level} via ${side}, round ${round + 1}: ${us.toFixed(1)} µs`)
      }
    }
    runs.push(run)
  }
  return runs
}

/** The best round of each side at a level, and their ratio. */
export function bestEventCpu(run: EventCpu): { service?: number; forwarder?: number; ratio?: number } {
  const best = (values: number[]): number | undefined => (values.length ? Math.min(...values) : undefined)
  const service = best(run.service)
  const forwarder = best(run.forwarder)
  return { service, forwarder, ratio: service !== undefined && forwarder ? service / forwarder : undefined }
}
