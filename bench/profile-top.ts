/**
 * Summarises a V8 .cpuprofile (from `BENCH_SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"`):
 * the functions with the most self time, and self time per package / source area.
 *
 *   node bench/profile-top.ts DIR/CPU.xxx.cpuprofile [count]
 */
import { readFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** `node_modules/<pkg>`, `src/<dir>`, `node:<module>`, or a V8 bucket such as (garbage collector). */
function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  const src = /\/(src\/[^/]+)\//.exec(url) ?? /\/(src)\/[^/]+$/.exec(url)
  if (src) return src[1]!
  if (url.startsWith('node:')) return url
  return url.replace(/^file:\/\//, '')
}

const [file, countArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node bench/profile-top.ts FILE.cpuprofile [count]')
  process.exit(2)
}
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const selfUs = new Map<number, number>()
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))

const total = profile.endTime - profile.startTime
const idleUs = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((s, [, us]) => s + us, 0)
const busy = total - idleUs
const fns = new Map<string, number>()
const areas = new Map<string, number>()
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame
  if (functionName === '(idle)') continue
  const key = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${lineNumber + 1}` : ''}`
  fns.set(key, (fns.get(key) ?? 0) + us)
  const a = area(url, functionName)
  areas.set(a, (areas.get(a) ?? 0) + us)
}

const pct = (us: number): string => `${((100 * us) / busy).toFixed(1).padStart(5)} %`
const top = (m: Map<string, number>, n: number): [string, number][] => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
console.log(`profile ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s; shares are of busy time\n`)
console.log('self time by area:')
for (const [name, us] of top(areas, 25)) console.log(`  ${pct(us)}  ${name}`)
console.log('\nfunctions with the most self time:')
for (const [name, us] of top(fns, Number(countArg ?? 30))) console.log(`  ${pct(us)}  ${name}`)
