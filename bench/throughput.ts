/** The zero-latency run: autocannon at 50 connections, instant text-generation JSON, and the proxy's CPU per answer. */
import autocannon from 'autocannon'
import { measured } from './processes.ts'
import type { Target } from './targets.ts'

export interface Throughput {
  reqPerS: number
  /** The answers' latency p50 / p99 as autocannon measured it, ms. */
  latencyMs: { p50: number; p99: number }
  non2xx: number
  errors: number
  /** The proxy's CPU per 2xx answer, µs. */
  cpuPerRequestUs?: number
}

function cannon(target: Target, seconds: number): Promise<autocannon.Result> {
  const { path, headers, body } = target.call('json', true)
  return autocannon({
    url: `${target.origin}${path}`,
    method: 'POST',
    headers,
    body,
    connections: 50,
    duration: seconds,
  })
}

export async function throughput(target: Target, seconds: number): Promise<Throughput> {
  // A short first run so every side is measured with its code already optimized.
  await cannon(target, 1)
  const { result, cpuS } = await measured(target.child?.pid, () => cannon(target, seconds))
  const ok = result['2xx']
  return {
    reqPerS: ok / result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors,
    ...(cpuS !== undefined && ok > 0 && { cpuPerRequestUs: (cpuS * 1e6) / ok }),
  }
}
