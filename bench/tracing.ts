/**
 * What tracing costs (`npm run bench -- --tracing`, and a step of `npm run bench`): the zero-latency throughput load (50
 * connections, instant text-generation JSON) through the service with tracing off, and on,
 * exporting every span (SERVER, GenAI, HTTP: three per request) with the SDK's defaults
 * (http/protobuf, batched) to a local OTLP endpoint that drops them. Rounds alternate between
 * the two and the best of each is kept, as in the throughput scenario; the figure is the
 * service's CPU per answer.
 */
import { request } from 'undici'
import { forkScript, stop } from './processes.ts'
import { startService, type Target } from './targets.ts'
import { throughput, type Throughput } from './throughput.ts'

export interface TracingCost {
  rounds: number
  off: Throughput
  on: Throughput
  /** Spans the endpoint received, and their encoded size. */
  exported: { exports: number; bytes: number }
}

export async function tracingCost(
  upstream: Target,
  seconds: number,
  rounds: number,
  log: (line: string) => void,
): Promise<TracingCost> {
  const sink = await forkScript('otlp-sink', 'otlp-sink.ts', {})
  const endpoint = `http://127.0.0.1:${sink.port}`
  const sides = {
    off: await startService(upstream, {}, 'service, tracing off'),
    on: await startService(upstream, { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, 'service, tracing on'),
  }
  const best: Partial<Record<keyof typeof sides, Throughput>> = {}
  try {
    for (let round = 0; round < rounds; round++) {
      for (const side of ['off', 'on'] as const) {
        const result = await throughput(sides[side], seconds)
        if (result.reqPerS > (best[side]?.reqPerS ?? 0)) best[side] = result
        log(
          `tracing ${side}: ${result.reqPerS.toFixed(0)} req/s, ${result.cpuPerRequestUs?.toFixed(0) ?? 'n/a'} µs CPU per answer`,
        )
      }
    }
  } finally {
    await stop(sides.off.child)
    // Stopped gracefully, it exports what it still holds before the count is read.
    await stop(sides.on.child)
  }
  const received = await request(`${endpoint}/_bench/received`)
  const exported = (await received.body.json()) as TracingCost['exported']
  await stop(sink)
  return { rounds, off: best.off!, on: best.on!, exported }
}

/** The two sides' table and what tracing adds: tracing.md's body, and a section of latest.md. */
export function tracingTable(cost: TracingCost): string[] {
  const row = (name: string, t: Throughput): string =>
    `| ${name} | ${t.reqPerS.toFixed(0)} | ${t.cpuPerRequestUs?.toFixed(0) ?? 'n/a'} | ${t.latencyMs.p50} / ${t.latencyMs.p99} | ${t.non2xx + t.errors} |`
  const extra =
    cost.on.cpuPerRequestUs !== undefined && cost.off.cpuPerRequestUs !== undefined
      ? `${(cost.on.cpuPerRequestUs - cost.off.cpuPerRequestUs).toFixed(0)} µs (${((cost.on.cpuPerRequestUs / cost.off.cpuPerRequestUs - 1) * 100).toFixed(0)} %)`
      : 'n/a'
  return [
    '| service | req/s | CPU per answer (µs) | latency p50 / p99 (ms) | failed |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('tracing off', cost.off),
    row('tracing on, every span exported', cost.on),
    '',
    `Tracing on adds ${extra} of CPU per answer; the endpoint took ${cost.exported.exports} exports, ${(cost.exported.bytes / 1e6).toFixed(1)} MB.`,
  ]
}

export function tracingMarkdown(cost: TracingCost, command: string): string {
  return [
    '# Tracing cost',
    '',
    `\`${command}\`: zero-latency text-generation JSON, 50 connections; the best of the rounds.`,
    '',
    ...tracingTable(cost),
    '',
  ].join('\n')
}
