/** latest.md (the targets and one table) and latest.svg (added stream duration p99 by concurrency) from the results. */
import {
  added,
  completedShare,
  cpuPerUnitUs,
  PROXIES,
  row,
  rssPerCall,
  streamCpuAt,
  type BurstRun,
  type ConcurrencyRow,
  type Results,
} from './results.ts'
import type { Percentiles, Summary } from './load.ts'
import { tracingTable } from './tracing.ts'

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const ms = (n: number): string => (Math.abs(n) < 10 ? n.toFixed(1) : int(n))
const seconds = (n: number): string => `${(n / 1000).toFixed(2)} s`
const signed = (n: number): string => `${n < 0 ? '−' : '+'}${ms(Math.abs(n))}`
const pct = (share: number): string => `${(share * 100).toFixed(share === 1 || share === 0 ? 0 : 1)} %`
const counts = (c: Record<string, number>): string =>
  Object.entries(c)
    .map(([k, n]) => `${k} ×${int(n)}`)
    .join(', ') || '–'
const sum = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0)
const errors = (c: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(c).filter(([k]) => !/^\d+$/.test(k) && k !== 'ECONNREFUSED'))

/** One target: met, not met, or not measured (undefined), and what was measured. */
function target(met: boolean | undefined, goal: string, got: string | undefined): string {
  const mark = met === undefined ? 'not measured' : met ? '**met**' : '**not met**'
  return got === undefined ? `${mark}: ${goal}` : `${mark}: ${goal} — ${got}`
}

function concurrencyTarget(r: Results, kind: 'stream' | 'json', goal: string): string {
  const x = row(r, kind, 2000, 'service')
  if (!x) return target(undefined, goal, undefined)
  const p99 = x.summary.duration?.p99
  const got = `${pct(completedShare(x))} ${kind === 'json' ? 'answered 200' : 'completed'}, p99 ${p99 === undefined ? 'n/a' : seconds(p99)}`
  return target(x.summary.completed === x.summary.sent && p99 !== undefined && p99 <= 6000, goal, got)
}

function throughputTarget(r: Results): string {
  const { service, forwarder, portkey } = r.throughput
  const goal = "zero-latency throughput ≥ 0.70 × the forwarder's and ≥ 5 × Portkey's"
  if (!service || !forwarder) return target(undefined, goal, undefined)
  const vsForwarder = service.reqPerS / forwarder.reqPerS
  const vsPortkey = portkey && service.reqPerS / portkey.reqPerS
  const got = `service ${int(service.reqPerS)} req/s = ${vsForwarder.toFixed(2)} × the forwarder's ${int(forwarder.reqPerS)}, ${
    vsPortkey ? `${vsPortkey.toFixed(1)} × Portkey's ${int(portkey.reqPerS)}` : 'Portkey n/a'
  }`
  return target(vsForwarder >= 0.7 && (!vsPortkey || vsPortkey >= 5), goal, got)
}

const fixed = (n: number): string => (n < 100 ? n.toFixed(1) : int(n))
const us = (n: number | undefined): string => (n === undefined ? 'n/a' : `${fixed(n)} µs`)

/** At each of the levels, the service's CPU per token event against the forwarder's; a level not run leaves it undetermined. */
function streamCpuTarget(r: Results): string {
  const [limit, levels] = [1.25, [1000, 2000]]
  const at = levels.map((level) => ({ level, ...streamCpuAt(r, level) }))
  const got = at
    .map(({ level, service, forwarder, ratio }) =>
      service === undefined && forwarder === undefined
        ? `${int(level)}: n/a`
        : `${int(level)}: service ${us(service)} = ${ratio?.toFixed(2) ?? 'n/a'} × the forwarder's ${us(forwarder)}`,
    )
    .join('; ')
  const met = at.some((x) => x.ratio !== undefined && x.ratio > limit)
    ? false
    : at.every((x) => x.ratio !== undefined) || undefined
  const how = r.eventCpu?.length ? ' (the best of alternating rounds)' : ''
  return target(
    met,
    `CPU per streamed token event ≤ ${limit} × the bare forwarder's, at 1,000 and at 2,000 streams`,
    got + how,
  )
}

function jsonCpuTarget(r: Results): string {
  const goal = "CPU per zero-latency JSON answer ≤ 1.5 × the forwarder's"
  const service = r.throughput.service?.cpuPerRequestUs
  const forwarder = r.throughput.forwarder?.cpuPerRequestUs
  if (service === undefined || forwarder === undefined) return target(undefined, goal, undefined)
  return target(
    service <= 1.5 * forwarder,
    goal,
    `service ${us(service)} = ${(service / forwarder).toFixed(2)} × the forwarder's ${us(forwarder)}`,
  )
}

/** Calls of a row shed with 503. */
function shedOf(x: ConcurrencyRow | undefined): number {
  return x?.summary.failures['503'] ?? 0
}

/** How many calls the service shed with 503 and why, where it shed any. */
function shedNote(x: ConcurrencyRow): string {
  const shed = shedOf(x)
  return shed
    ? ` (${int(shed)} shed with 503 \`ERR_OVERLOADED\` while the event loop lagged over MAX_EVENT_LOOP_DELAY_MS)`
    : ''
}

/** First-token time the proxy adds at 5,000 streams (p50), against what the forwarder adds. */
function topTtftTarget(r: Results): string {
  const goal = "5,000 concurrent streams: first-token added p50 ≤ 2 × the forwarder's + 50 ms"
  const at = (via: 'service' | 'forwarder'): Percentiles | undefined => {
    const x = row(r, 'stream', 5000, via)
    return x && added(r, x, 'ttft')
  }
  const [service, forwarder] = [at('service'), at('forwarder')]
  if (!service || !forwarder) return target(undefined, goal, undefined)
  const limit = 2 * forwarder.p50 + 50
  // Taken over the streams that got a first token: a shed one has none, so the count goes beside it.
  const shed = shedOf(row(r, 'stream', 5000, 'service'))
  return target(
    service.p50 <= limit,
    goal,
    `service ${signed(service.p50)} ms, forwarder ${signed(forwarder.p50)} ms (so at most ${signed(limit)} ms)` +
      (shed ? `, over the service's streams that were not shed (${int(shed)} were)` : ''),
  )
}

function coldBurstTarget(r: Results): string {
  const b = r.coldBurst
  const streams = b?.streams ?? (r.quick ? 500 : 2000)
  const goal =
    `${int(streams)} streams${r.quick ? " (a quick run's; 2,000 in a full run)" : ''} opened at once on a service that has just turned ready ` +
    '(`/readyz` 200) all complete, none shed (503), duration p99 ≤ 6 s'
  if (!b) return target(undefined, goal, undefined)
  const s = b.cold.summary
  const p99 = s.duration?.p99
  const shed = s.failures['503'] ?? 0
  const warm = b.warm?.summary.duration?.p99
  const got =
    `${int(s.completed)} of ${int(s.sent)} completed, ${int(shed)} shed (failures: ${counts(s.failures)}); ` +
    `duration p99 ${p99 === undefined ? 'n/a' : seconds(p99)} (direct ${b.direct.duration ? seconds(b.direct.duration.p99) : 'n/a'}, ` +
    `warm ${warm === undefined ? 'n/a' : seconds(warm)})`
  return target(s.completed === s.sent && shed === 0 && p99 !== undefined && p99 <= 6000, goal, got)
}

function tracingTarget(r: Results): string {
  const goal = 'tracing on (every span exported) ≤ 1.3 × the CPU per request of tracing off'
  const on = r.tracing?.on.cpuPerRequestUs
  const off = r.tracing?.off.cpuPerRequestUs
  if (on === undefined || off === undefined) return target(undefined, goal, undefined)
  return target(
    on <= 1.3 * off,
    goal,
    `on ${us(on)} = ${(on / off).toFixed(2)} × off's ${us(off)} per zero-latency JSON answer`,
  )
}

function faultTargets(r: Results): string[] {
  const { stalledReaders: a, stalledReadersCut: cut, frozenRedis: b, sigterm: c } = r.faults
  const calls = a?.ordinary
  const ordinary =
    calls &&
    `${int(calls.outcomes['200'] ?? 0)} of ${int(sum(calls.outcomes))} answered 200 (${counts(calls.outcomes)}), slowest ${ms(calls.latencyMs.max)} ms`
  const aborts =
    cut &&
    `${cut.aborted} of ${cut.stalled} aborted${cut.aborted ? `, p50 ${seconds(cut.reactionMs.p50)} / max ${seconds(cut.reactionMs.max)} after the service's send queue filled, ${seconds(cut.stallToAbortMs.p50)} / ${seconds(cut.stallToAbortMs.max)} after the reader stopped` : ''}`
  const lost = c && sum(errors(c.calls.outcomes))
  const shutdown =
    c &&
    `${c.clients} keep-alive clients, ${int(sum(c.calls.outcomes))} calls: ${counts(c.calls.outcomes)}; ${lost} lost; exit ${c.exit.signal ?? `code ${c.exit.code}`} ${seconds(c.exit.afterMs)} after the signal`
  return [
    target(
      calls && calls.outcomes['200'] === sum(calls.outcomes) && calls.latencyMs.max <= 3000,
      `beside ${a?.stalled ?? ''} readers stalled on audio streams (default CLIENT_WRITE_TIMEOUT_MS), ordinary calls answer 200 within 3 s`,
      ordinary,
    ),
    target(
      cut && cut.aborted === cut.stalled && cut.reactionMs.max <= (cut.writeTimeoutMs ?? 0) + 1000,
      "stalled readers' OpenAI calls aborted ~2 s after the service's writes stall (CLIENT_WRITE_TIMEOUT_MS=2000)",
      aborts,
    ),
    target(
      b && b.latencyMs.max <= 1000,
      'with Redis frozen (SIGSTOP), each call answers within 1 s',
      b && `${sum(b.outcomes)} sequential calls (${counts(b.outcomes)}), slowest ${ms(b.latencyMs.max)} ms`,
    ),
    target(
      c && lost === 0,
      'SIGTERM under load (SHUTDOWN_DELAY_MS=500) loses no request once sent (a refused new connection is not a loss)',
      shutdown,
    ),
  ]
}

export function targets(r: Results): string[] {
  const top = row(r, 'stream', 5000, 'service')
  return [
    concurrencyTarget(r, 'stream', '2,000 concurrent 4 s streams through the service all complete, duration p99 ≤ 6 s'),
    concurrencyTarget(r, 'json', '2,000 concurrent 1–4 s JSON calls through the service all answered 200, p99 ≤ 6 s'),
    target(
      top && true,
      '5,000 concurrent streams measured',
      top && `${pct(completedShare(top))} completed${shedNote(top)}, peak RSS ${int(top.peakRss! / 2 ** 20)} MB`,
    ),
    topTtftTarget(r),
    coldBurstTarget(r),
    streamCpuTarget(r),
    jsonCpuTarget(r),
    throughputTarget(r),
    tracingTarget(r),
    ...faultTargets(r),
  ]
}

function cells(r: Results, x: ConcurrencyRow): string[] {
  const s = x.summary
  const direct = x.via === 'direct'
  const pair = (p: { p50: number; p99: number } | undefined, sign: boolean): string =>
    p ? `${sign ? signed(p.p50) : ms(p.p50)} / ${sign ? signed(p.p99) : ms(p.p99)}` : 'n/a'
  const ttft = x.kind === 'json' ? '' : direct ? pair(s.ttft, false) : pair(added(r, x, 'ttft'), true)
  const duration = direct ? pair(s.duration, false) : pair(added(r, x, 'duration'), true)
  const cpu = cpuPerUnitUs(x)
  const rss = rssPerCall(x)
  return [
    x.kind === 'stream' ? 'SSE streams' : 'JSON calls',
    int(x.level),
    x.via,
    pct(completedShare(x)),
    ttft,
    duration,
    cpu === undefined ? '' : cpu < 100 ? cpu.toFixed(1) : int(cpu),
    rss === undefined ? '' : int(rss / 1024),
    counts(s.failures),
  ]
}

/** The two figures src/upstream/capacity.ts takes from the bench. */
function memory(r: Results): string[] {
  const level = Math.max(...r.levels)
  const stream = row(r, 'stream', level, 'service')
  const json = row(r, 'json', level, 'service')
  const kb = (x: ConcurrencyRow | undefined): string =>
    x && rssPerCall(x) !== undefined ? `${int(rssPerCall(x)! / 1024)} KB` : 'n/a'
  const idle = stream?.idleRss ?? json?.idleRss
  return [
    '## Memory per open call (src/upstream/capacity.ts)',
    '',
    `The service's idle RSS (BASELINE_BYTES): ${idle === undefined ? 'n/a' : `${int(idle / 2 ** 20)} MB`}. ` +
      `RSS per open call at ${int(level)} (BYTES_PER_OPEN_CALL: the larger): streams ${kb(stream)}, JSON calls ${kb(json)}.`,
  ]
}

/** The cold burst's rows: direct, then the service just ready, then warm. */
function coldBurst(r: Results): string[] {
  const b = r.coldBurst
  if (!b) return []
  const pair = (p: Percentiles | undefined): string => (p ? `${ms(p.p50)} / ${ms(p.p99)}` : 'n/a')
  const line = (via: string, s: Summary, run?: BurstRun): string => {
    const cpu = run?.cpuS === undefined || !s.tokens ? '' : fixed((run.cpuS * 1e6) / s.tokens)
    return `| ${via} | ${int(s.completed)} / ${int(s.sent)} | ${pair(s.ttft)} | ${pair(s.duration)} | ${cpu} | ${counts(s.failures)} |`
  }
  return [
    '## Cold burst',
    '',
    `${int(b.streams)} streams${r.quick ? ' (quick run; 2,000 in a full run)' : ''} opened at once (no ramp), each waited for to its end: direct to the stand-in; ` +
      `through a service started for it, the moment its \`/readyz\` first answered 200 (${seconds(b.readyAfterMs)} after its start); ` +
      "then again through the same process, warm. Absolute times, ms. CPU: the service's, µs per token event relayed.",
    '',
    '| via | completed | first token p50 / p99 | duration p50 / p99 | CPU µs | failures |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    line('direct', b.direct),
    line('service, just ready', b.cold.summary, b.cold),
    ...(b.warm ? [line('service, warm', b.warm.summary, b.warm)] : []),
    '',
  ]
}

/** Each round of the CPU-per-event comparison, the best of each side in bold. */
function eventCpuRounds(r: Results): string[] {
  if (!r.eventCpu?.length) return []
  const values = (xs: number[]): string => {
    const best = Math.min(...xs)
    return xs.map((x) => (x === best ? `**${fixed(x)}**` : fixed(x))).join(', ')
  }
  return [
    '## CPU per token event',
    '',
    'The service and the forwarder, started for this, warmed up, then in alternating rounds of streams ' +
      "ramped over 1 s; the proxy's CPU µs per token event in each round, the best of each side (the target's figure) in bold.",
    '',
    '| streams | service | forwarder |',
    '| ---: | --- | --- |',
    ...r.eventCpu.map((run) => `| ${int(run.level)} | ${values(run.service)} | ${values(run.forwarder)} |`),
    '',
  ]
}

function tracing(r: Results): string[] {
  const t = r.tracing
  if (!t) return []
  return [
    '## Tracing',
    '',
    'The zero-latency load (instant text-generation JSON, 50 connections) through a service with tracing off and one ' +
      `exporting every span to a local OTLP endpoint that drops them; ${t.rounds === 1 ? 'one round each' : `${t.rounds} rounds, alternating, the best of each side kept`}.`,
    '',
    ...tracingTable(t),
    '',
  ]
}

export function markdown(r: Results): string {
  const lines = [
    '# Benchmark results',
    '',
    `${r.date}${r.quick ? ' (quick run: fewer levels, shorter runs)' : ''}, ${Math.round(r.durationS)} s; ${r.machine}; Node ${r.node}. ` +
      'The load generator, the stand-in and the proxy share these cores: compare rows, not absolute times. ' +
      'What each figure means: [bench/README.md](../README.md).',
    '',
    `- Stand-in OpenAI: JSON after ${r.upstream.jsonMs[0] / 1000}–${r.upstream.jsonMs[1] / 1000} s; streams: first token after ${r.upstream.ttftMs / 1000} s, ${r.upstream.tokens} tokens at ${r.upstream.tokenRate}/s.`,
    `- Service: \`${r.service.command}\`, default configuration, ${r.service.allocator}.`,
    `- Portkey: ${r.portkey}.`,
    '',
    '## Targets',
    '',
    ...targets(r).map((t) => `- ${t}`),
    '',
    '## Concurrent calls',
    '',
    'All calls opened within 1 s, each waited for to its end. Direct rows: absolute times, ms; the others: added to direct (through − direct), ms. ' +
      "CPU: the proxy's, µs per token event relayed (streams) or per answer (JSON). RSS: (peak RSS − idle RSS before) / calls open, KB.",
    '',
    '| calls | open at once | via | completed | first token p50 / p99 | duration p50 / p99 | CPU µs | RSS KB per call | failures |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...r.concurrency.map((x) => `| ${cells(r, x).join(' | ')} |`),
    '',
  ]
  lines.push(...memory(r), '', ...eventCpuRounds(r), ...coldBurst(r), ...tracing(r))
  if (r.errors.length) lines.push('## Errors', '', ...r.errors.map((e) => `- ${e.replace(/\n/g, ' ')}`), '')
  return lines.join('\n')
}

const COLORS: Record<string, string> = { service: '#1f77b4', forwarder: '#7f7f7f', portkey: '#d62728' }

/**
 * Grouped bars on a log scale (the levels span four orders of magnitude): added stream duration
 * p99 per concurrency level and proxy; the share completed under a bar when not all.
 */
export function chart(r: Results): string {
  const [W, H, left, top, bottom] = [640, 300, 56, 36, 48]
  const proxies = PROXIES.filter((p) => r.concurrency.some((x) => x.via === p))
  const bars = r.levels.map((level) => proxies.map((via) => row(r, 'stream', level, via)))
  const values = bars.flat().map((x) => (x ? (added(r, x, 'duration')?.p99 ?? 1) : 1))
  const decades = Math.max(1, Math.ceil(Math.log10(Math.max(...values))))
  const groupW = (W - left - 16) / r.levels.length
  const barW = (groupW * 0.7) / Math.max(1, proxies.length)
  const y = (v: number): number => top + (H - top - bottom) * (1 - Math.log10(Math.max(1, v)) / decades)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="16" font-size="13">Added stream duration p99 (ms, through − direct, log scale) by concurrent streams</text>`,
  ]
  for (let d = 0; d <= decades; d++) {
    parts.push(
      `<line x1="${left}" y1="${y(10 ** d)}" x2="${W - 16}" y2="${y(10 ** d)}" stroke="${d ? '#ddd' : '#333'}"/>`,
    )
    parts.push(`<text x="${left - 6}" y="${y(10 ** d) + 4}" text-anchor="end">${int(10 ** d)}</text>`)
  }
  bars.forEach((group, g) => {
    const x0 = left + g * groupW + groupW * 0.15
    parts.push(
      `<text x="${x0 + (barW * proxies.length) / 2}" y="${H - bottom + 16}" text-anchor="middle">${int(r.levels[g]!)}</text>`,
    )
    group.forEach((x, i) => {
      if (!x) return
      const v = added(r, x, 'duration')?.p99
      const bx = x0 + i * barW
      parts.push(
        `<rect x="${bx}" y="${y(v ?? 1)}" width="${barW - 2}" height="${y(1) - y(v ?? 1)}" fill="${COLORS[x.via]}"/>`,
      )
      parts.push(
        `<text x="${bx + barW / 2}" y="${y(v ?? 1) - 3}" text-anchor="middle">${v === undefined ? 'none' : int(v)}</text>`,
      )
      if (completedShare(x) < 1) {
        parts.push(
          `<text x="${bx + barW / 2}" y="${H - bottom + 28}" text-anchor="middle" fill="${COLORS[x.via]}">${pct(completedShare(x))}</text>`,
        )
      }
    })
  })
  proxies.forEach((p, i) => {
    parts.push(`<rect x="${left + i * 110}" y="${H - 14}" width="10" height="10" fill="${COLORS[p]}"/>`)
    parts.push(`<text x="${left + i * 110 + 14}" y="${H - 5}">${p}</text>`)
  })
  parts.push('</svg>', '')
  return parts.join('\n')
}
