/** The SVG bar chart of latest.svg: requests/s direct vs through, per scenario (hand-written SVG). */
import { OTHER_CPU_LIMIT } from './cpu.ts'
import { derive, warnings, type BenchRun } from './report.ts'
import { num } from './targets.ts'

const escapeXml = (s: string): string => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)

/** Grouped bars: req/s direct vs through at the loaded connection count, per scenario. */
export function svgChart(run: BenchRun): string {
  const width = 720
  const height = 380
  const top = 80
  const bottom = 70
  const left = 80
  const plotH = height - top - bottom
  const groupW = (width - left - 20) / run.scenarios.length
  const barW = Math.min(70, groupW / 3)
  const max = Math.max(1, ...run.scenarios.flatMap((s) => [s.direct?.loaded.reqPerSec ?? 0, s.through?.loaded.reqPerSec ?? 0]))
  const niceMax = niceCeil(max)
  const y = (v: number): number => top + plotH - (v / niceMax) * plotH
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">Requests/s at ${run.connections} connections: direct vs through the service</text>`,
    `<rect x="${width - 210}" y="34" width="12" height="12" fill="#8a8f98"/><text x="${width - 193}" y="44">direct (bench upstream)</text>`,
    `<rect x="${width - 210}" y="50" width="12" height="12" fill="#2f6fdf"/><text x="${width - 193}" y="60">through the service</text>`,
  ]
  for (let i = 0; i <= 4; i++) {
    const v = (niceMax / 4) * i
    parts.push(
      `<line x1="${left}" x2="${width - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#e3e5e8"/>`,
      `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end">${num(v)}</text>`,
    )
  }
  run.scenarios.forEach((s, i) => {
    const cx = left + groupW * i + groupW / 2
    parts.push(`<text x="${cx}" y="${height - bottom + 20}" text-anchor="middle">${escapeXml(s.title)}</text>`)
    const d = derive(s)
    if (!d || !s.direct || !s.through) {
      parts.push(`<text x="${cx}" y="${top + plotH / 2}" text-anchor="middle" fill="#888">n/a</text>`)
      if (s.skipped) parts.push(`<text x="${cx}" y="${height - bottom + 36}" text-anchor="middle" fill="#888" font-size="11">${escapeXml(s.skipped)}</text>`)
      return
    }
    for (const [k, v, fill] of [[-1, s.direct.loaded.reqPerSec, '#8a8f98'], [0, s.through.loaded.reqPerSec, '#2f6fdf']] as const) {
      const x = cx + k * barW
      parts.push(
        `<rect x="${x}" y="${y(v)}" width="${barW}" height="${top + plotH - y(v)}" fill="${fill}"/>`,
        `<text x="${x + barW / 2}" y="${y(v) - 4}" text-anchor="middle">${num(v)}</text>`,
      )
    }
    const busy = [s.direct, s.through].some((p) => p.loaded.cpu.other > OTHER_CPU_LIMIT) ? ' *' : ''
    parts.push(`<text x="${cx}" y="${height - bottom + 36}" text-anchor="middle" fill="#555">${num(d.throughputPct, 1)} % of direct${busy}</text>`)
  })
  if (warnings(run).some((w) => w.includes('other processes'))) {
    parts.push(`<text x="${left}" y="${height - 12}" fill="#a33" font-size="11">* other processes kept the machine busy during some runs: figures unreliable</text>`)
  }
  parts.push(`<line x1="${left}" x2="${width - 20}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`, '</svg>')
  return `${parts.join('\n')}\n`
}

function niceCeil(v: number): number {
  const step = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * step >= v) return m * step
  return 10 * step
}
