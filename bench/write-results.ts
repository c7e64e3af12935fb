/** Writes a run's three result files: latest.md, latest.json and latest.svg. */
import { mkdir, writeFile } from 'node:fs/promises'
import { svgChart } from './chart.ts'
import { markdown } from './markdown.ts'
import { batchFigures, derive, targets, type BenchRun } from './report.ts'

/** Writes the files into `dir` and returns the markdown. */
export async function writeResults(run: BenchRun, dir: URL): Promise<string> {
  await mkdir(dir, { recursive: true })
  const md = markdown(run)
  const derived = {
    ...Object.fromEntries(run.scenarios.map((s) => [s.id, derive(s) ?? null])),
    ...(run.batch && { 'text-embeddings-batch': batchFigures(run.batch) }),
  }
  const json = { ...run, derived, targets: targets(run) }
  await Promise.all([
    writeFile(new URL('latest.md', dir), md),
    writeFile(new URL('latest.json', dir), `${JSON.stringify(json, null, 2)}\n`),
    writeFile(new URL('latest.svg', dir), svgChart(run)),
  ])
  return md
}
