/** latest.md (the targets and one table) and latest.svg (added stream duration p99 by concurrency) from the results. */
import {
  added,
  completedShare,
  cpuPerUnitUs,
  PROXIES,
  row,
  rssPerCall,
  streamCpuPerEventUs,
  type ConcurrencyRow,
  type Results,
} from './results.ts'

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const ms = (n: number): string => (Math.abs(n) < 10 ? n.toFixed(1) : int(n))
const seconds = (n: number): string => `${(n / 1000).toFixed(2)} s`
const signed = (n: number): string => `${n < 0 ? '−' : '+'}${ms(Math.abs(n))}`
const pct = (share: number): string => `${(share * 100).toFixed(share === 1 || share === 0 ? 0 : 1)} %`
const counts = (c: Record<string, number>): string =>
  Object.entries(c).map(([k, n]) => `${k} ×${int(n)}`).join(', ') || '–'
const verdict = (met: boolean | undefined): string => (met === undefined ? 'not measured' : met ? '**met**' : '**not met**')

function concurrencyTarget(r: Results, kind: 'stream' | 'json', what: string): string {
  const x = row(r, kind, 2000, 'service')
  const p99 = x?.summary.duration?.p99
  const met = x && x.summary.completed === x.summary.sent && p99 !== undefined && p99 <= 6000
  const got = x ? `${pct(completedShare(x))} ${kind === 'json' ? 'answered 200' : 'completed'}, p99 ${p99 === undefined ? 'n/a' : `${(p99 / 1000).toFixed(2)} s`}` : ''
  return `${verdict(x && met)}: 2,000 concurrent ${what} through the service all ${kind === 'json' ? 'answered 200' : 'complete'} with p99 ≤ 6 s${got && ` — ${got}`}`
}

export function targets(r: Results): string[] {
  const top = row(r, 'stream', 5000, 'service')
  const cpu = streamCpuPerEventUs(r, 'service')
  const floor = streamCpuPerEventUs(r, 'forwarder')
  const t = r.throughput
  const vsForwarder = t.service && t.forwarder ? t.service.reqPerS / t.forwarder.reqPerS : undefined
  const vsPortkey = t.service && t.portkey ? t.service.reqPerS / t.portkey.reqPerS : undefined
  const { stalledReaders: a, frozenRedis: b, sigterm: c } = r.faults
  const slowest = b?.latencyMs.length ? Math.max(...b.latencyMs) : undefined
  const lost = c ? Object.values(c.lost).reduce((s, n) => s + n, 0) : undefined
  return [
    concurrencyTarget(r, 'stream', '4 s streams'),
    concurrencyTarget(r, 'json', '1–4 s JSON calls'),
    `${verdict(top && true)}: 5,000 concurrent streams measured${top ? ` — ${pct(completedShare(top))} completed, peak RSS ${int(top.peakRss! / 2 ** 20)} MB (${int(rssPerCall(top)! / 1024)} KB per open stream)` : ''}`,
    `${verdict(cpu !== undefined && floor !== undefined ? cpu <= floor : undefined)}: CPU per streamed token event ≤ the bare forwarder's — service ${cpu?.toFixed(1) ?? 'n/a'} µs, forwarder ${floor?.toFixed(1) ?? 'n/a'} µs (all stream levels together)`,
    `${verdict(vsForwarder === undefined ? undefined : vsForwarder >= 0.7 && (vsPortkey === undefined || vsPortkey >= 5))}: zero-latency throughput ≥ 0.70 × the forwarder's and ≥ 5 × Portkey's — service ${t.service ? int(t.service.reqPerS) : 'n/a'} req/s = ${vsForwarder?.toFixed(2) ?? 'n/a'} × forwarder (${t.forwarder ? int(t.forwarder.reqPerS) : 'n/a'}), ${vsPortkey === undefined ? 'Portkey n/a' : `${vsPortkey.toFixed(1)} × Portkey (${int(t.portkey!.reqPerS)})`}`,
    `${verdict(a && a.ordinary.ok === a.ordinary.sent && (a.ordinary.latency?.max ?? Infinity) <= 3000)}: with ${a?.stalled ?? 0} readers stalled on audio streams, ordinary calls answer within 3 s — ${a ? `${int(a.ordinary.ok)} of ${int(a.ordinary.sent)} answered 200, slowest ${ms(a.ordinary.latency?.max ?? NaN)} ms (p99 ${ms(a.ordinary.latency?.p99 ?? NaN)} ms); failures ${counts(a.ordinary.failures)}` : ''}`,
    `${verdict(a && a.aborted === a.stalled && (a.reactionMs?.max ?? Infinity) <= a.writeTimeoutMs + 1000)}: stalled readers' OpenAI calls aborted ~2 s after the service's writes to them stall (CLIENT_WRITE_TIMEOUT_MS=2000) — ${a ? `${a.aborted} of ${a.stalled} aborted${a.reactionMs ? `, p50 ${seconds(a.reactionMs.p50)}, max ${seconds(a.reactionMs.max)} after the service's send buffer filled` : ''}${a.stallToAbortMs ? ` (${seconds(a.stallToAbortMs.p50)} / ${seconds(a.stallToAbortMs.max)} after the reader stopped)` : ''}` : ''}`,
    `${verdict(b && !b.error ? slowest! <= 1000 : undefined)}: with Redis frozen (SIGSTOP), each request answers within 1 s — ${b ? (b.error ?? `${b.requests} sequential requests, slowest ${ms(slowest!)} ms, statuses ${counts(b.statuses)}`) : ''}`,
    `${verdict(c && lost === 0)}: SIGTERM under load (SHUTDOWN_DELAY_MS=500) resets no request after it was sent — ${c ? `${c.clients} keep-alive clients, ${int(c.attempted)} requests: ${int(c.ok)} × 200, ${lost} lost (${counts(c.lost)}), other statuses ${counts(c.statuses)}, ${int(c.refused)} refused new connections (not a loss); exit ${c.exit.signal ?? `code ${c.exit.code}`} ${(c.exit.afterMs / 1000).toFixed(1)} s after the signal` : ''}`,
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
      'CPU: the proxy\'s, µs per token event relayed (streams) or per answer (JSON). RSS: (peak RSS − idle RSS before) / calls open, KB.',
    '',
    '| calls | open at once | via | completed | first token p50 / p99 | duration p50 / p99 | CPU µs | RSS KB per call | failures |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...r.concurrency.map((x) => `| ${cells(r, x).join(' | ')} |`),
    '',
  ]
  if (r.errors.length) lines.push('## Errors', '', ...r.errors.map((e) => `- ${e.replace(/\n/g, ' ')}`), '')
  return lines.join('\n')
}

const COLORS: Record<string, string> = { service: '#1f77b4', forwarder: '#7f7f7f', portkey: '#d62728' }

/** Grouped bars: added stream duration p99 per concurrency level and proxy; the share completed under each bar when not all. */
export function chart(r: Results): string {
  const [W, H, left, top, bottom] = [640, 300, 56, 36, 48]
  const proxies = PROXIES.filter((p) => r.concurrency.some((x) => x.via === p))
  const bars = r.levels.map((level) => proxies.map((via) => row(r, 'stream', level, via)))
  const values = bars.flat().map((x) => (x ? added(r, x, 'duration')?.p99 ?? 0 : 0))
  const max = Math.max(1, ...values) * 1.15
  const groupW = (W - left - 16) / r.levels.length
  const barW = (groupW * 0.7) / Math.max(1, proxies.length)
  const y = (v: number): number => top + (H - top - bottom) * (1 - Math.max(0, v) / max)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="16" font-size="13">Added stream duration p99 (ms, through − direct) by concurrent streams</text>`,
    `<line x1="${left}" y1="${y(0)}" x2="${W - 16}" y2="${y(0)}" stroke="#333"/>`,
  ]
  bars.forEach((group, g) => {
    const x0 = left + g * groupW + groupW * 0.15
    parts.push(`<text x="${x0 + (barW * proxies.length) / 2}" y="${H - bottom + 16}" text-anchor="middle">${int(r.levels[g]!)}</text>`)
    group.forEach((x, i) => {
      if (!x) return
      const v = added(r, x, 'duration')?.p99
      const bx = x0 + i * barW
      const label = v === undefined ? 'none done' : int(v)
      parts.push(`<rect x="${bx}" y="${y(v ?? 0)}" width="${barW - 2}" height="${y(0) - y(v ?? 0)}" fill="${COLORS[x.via]}"/>`)
      parts.push(`<text x="${bx + barW / 2}" y="${y(v ?? 0) - 3}" text-anchor="middle">${label}</text>`)
      if (completedShare(x) < 1) parts.push(`<text x="${bx + barW / 2}" y="${H - bottom + 28}" text-anchor="middle" fill="${COLORS[x.via]}">${pct(completedShare(x))}</text>`)
    })
  })
  proxies.forEach((p, i) => {
    parts.push(`<rect x="${left + i * 110}" y="${H - 14}" width="10" height="10" fill="${COLORS[p]}"/>`)
    parts.push(`<text x="${left + i * 110 + 14}" y="${H - 5}">${p}</text>`)
  })
  parts.push('</svg>', '')
  return parts.join('\n')
}
