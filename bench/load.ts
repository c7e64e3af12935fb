/**
 * The load client for concurrent calls: N text-generation calls (streams or JSON) opened within
 * a ramp, each waited for to its end. undici's dispatch API with one pool per run (no connection
 * cap: one connection per call), bytes scanned for token events rather than parsed, so that
 * thousands of streams cost the client little.
 */
import { build } from 'hdr-histogram-js'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import type { Call, Kind, Target } from './targets.ts'

export interface Outcome {
  /** HTTP status, or the error code when there was no answer. */
  status: string
  /** Until the first token event. */
  ttftMs?: number
  totalMs: number
  tokens: number
  complete: boolean
}

export interface Percentiles {
  p50: number
  p99: number
}

export interface Summary {
  sent: number
  completed: number
  /** Outcomes that did not complete, by status or error code. */
  failures: Record<string, number>
  tokens: number
  ttft?: Percentiles
  duration?: Percentiles
}

function count(data: Buffer, mark: Buffer): number {
  let n = 0
  for (let at = data.indexOf(mark); at !== -1; at = data.indexOf(mark, at + mark.length)) n++
  return n
}

function dispatch(
  pool: Pool,
  call: Call,
  target: Target,
  kind: Kind,
  expectTokens: number,
  deadlineMs: number,
): Promise<Outcome> {
  const { token, end } = target.marks
  return new Promise((resolve) => {
    const start = performance.now()
    const outcome: Outcome = { status: 'no answer', totalMs: 0, tokens: 0, complete: false }
    let carry: Buffer = Buffer.alloc(0)
    let tail: Buffer = Buffer.alloc(0)
    let abort = (_reason: Error): void => {}
    const timer = setTimeout(() => abort(Object.assign(new Error('deadline'), { code: 'deadline' })), deadlineMs)
    const finish = (): void => {
      clearTimeout(timer)
      outcome.totalMs = performance.now() - start
      resolve(outcome)
    }
    pool.dispatch(
      { method: 'POST', path: call.path, headers: call.headers, body: call.body },
      {
        onRequestStart: (controller) => (abort = (reason) => controller.abort(reason)),
        onResponseStart: (_c, statusCode) => {
          outcome.status = String(statusCode)
        },
        onResponseData: (_c, chunk) => {
          if (kind === 'json') return
          // Marks split across two reads are found in the bytes carried over.
          const data = carry.length ? Buffer.concat([carry, chunk]) : chunk
          const found = count(data, token)
          if (found && !outcome.tokens) outcome.ttftMs = performance.now() - start
          outcome.tokens += found
          carry = data.subarray(Math.max(0, data.length - token.length + 1))
          tail = data.length >= 64 ? data.subarray(data.length - 64) : Buffer.concat([tail, data]).subarray(-64)
        },
        onResponseEnd: () => {
          outcome.complete =
            outcome.status === '200' && (kind === 'json' || (outcome.tokens === expectTokens && tail.includes(end)))
          if (outcome.status === '200' && !outcome.complete) outcome.status = '200 cut short'
          finish()
        },
        onResponseError: (_c, err) => {
          if (outcome.status === 'no answer') outcome.status = String((err as { code?: string }).code ?? err.message)
          else outcome.status += ` then ${(err as { code?: string }).code ?? err.message}`
          finish()
        },
      },
    )
  })
}

/** `count` calls opened evenly within `rampMs`; every one ends by `deadlineMs` after it started. */
export async function concurrentCalls(
  target: Target,
  options: { kind: Kind; instant: boolean; count: number; rampMs: number; deadlineMs: number; expectTokens: number },
): Promise<Outcome[]> {
  const pool = new Pool(target.origin, {
    connect: { timeout: 30_000 },
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: 60_000,
  })
  const calls: Array<Promise<Outcome>> = []
  const steps = Math.max(1, Math.floor(options.rampMs / 10))
  for (let step = 0; step < steps; step++) {
    const upTo = Math.round((options.count * (step + 1)) / steps)
    while (calls.length < upTo) {
      const call = target.call(options.kind, options.instant, calls.length)
      calls.push(dispatch(pool, call, target, options.kind, options.expectTokens, options.deadlineMs))
    }
    if (step < steps - 1) await sleep(10)
  }
  const outcomes = await Promise.all(calls)
  await pool.destroy()
  return outcomes
}

/** p50 and p99 through an HDR histogram (microseconds, 4 significant digits: 0.5 ms at 5 s). */
export function percentiles(valuesMs: number[]): Percentiles | undefined {
  if (!valuesMs.length) return undefined
  const histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 4,
  })
  for (const ms of valuesMs) histogram.recordValue(Math.max(1, Math.round(ms * 1000)))
  const result = { p50: histogram.getValueAtPercentile(50) / 1000, p99: histogram.getValueAtPercentile(99) / 1000 }
  histogram.destroy()
  return result
}

export function summarize(outcomes: Outcome[]): Summary {
  const done = outcomes.filter((o) => o.complete)
  const failures: Record<string, number> = {}
  for (const o of outcomes) if (!o.complete) failures[o.status] = (failures[o.status] ?? 0) + 1
  const ttfts = done.flatMap((o) => (o.ttftMs === undefined ? [] : [o.ttftMs]))
  return {
    sent: outcomes.length,
    completed: done.length,
    failures,
    tokens: outcomes.reduce((sum, o) => sum + o.tokens, 0),
    ttft: percentiles(ttfts),
    duration: percentiles(done.map((o) => o.totalMs)),
  }
}
