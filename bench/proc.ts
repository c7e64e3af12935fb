/** What /proc (Linux only) says about a process and its descendants: CPU time and memory. */
import { readdir, readFile } from 'node:fs/promises'

/** Clock ticks per second of /proc times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100

/** Fields after the parenthesised command name of /proc/<pid>/stat (field 3 is index 0). */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** The process and every process below it (a cluster primary and its workers), found by ppid. */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>()
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue
    const ppid = Number((await statFields(Number(name)))?.[1])
    if (!Number.isFinite(ppid)) continue
    const siblings = parents.get(ppid)
    if (siblings) siblings.push(Number(name))
    else parents.set(ppid, [Number(name)])
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]!) ?? []))
  return tree
}

/** CPU seconds (user + system) one process has used so far; NaN once it is gone. */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = await statFields(pid)
  // utime and stime are fields 14 and 15.
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS : NaN
}

/** CPU seconds used so far by the process and its descendants; NaN once the process is gone. */
export async function treeCpuSeconds(pid: number): Promise<number> {
  const each = await Promise.all((await processTree(pid)).map(cpuSeconds))
  if (Number.isNaN(each[0])) return NaN
  return each.reduce((sum, s) => sum + (Number.isNaN(s) ? 0 : s), 0)
}

export interface Memory {
  /** Resident set now, MB. */
  rssMb: number
  /** Highest resident set so far (VmHWM), MB. */
  peakRssMb: number
}

/** Current and peak resident memory of one process, MB. */
export async function memoryOf(pid: number): Promise<Memory | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 }
  } catch {
    return undefined
  }
}

/** Resident memory of the process and its descendants added up, MB (peaks added up too). */
export async function treeMemoryOf(pid: number): Promise<Memory | undefined> {
  const each = (await Promise.all((await processTree(pid)).map(memoryOf))).filter((m) => m !== undefined)
  if (!each.length) return undefined
  return { rssMb: each.reduce((a, m) => a + m.rssMb, 0), peakRssMb: each.reduce((a, m) => a + m.peakRssMb, 0) }
}

/** CPU seconds (all cores added up) the whole machine has spent busy so far, from /proc/stat. */
export async function machineBusySeconds(): Promise<number> {
  try {
    const stat = await readFile('/proc/stat', 'utf8')
    // cpu  user nice system idle iowait irq softirq steal ...
    const ticks = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1, 9).map(Number)
    const total = ticks.reduce((a, b) => a + b, 0)
    return (total - (ticks[3] ?? 0) - (ticks[4] ?? 0)) / CLOCK_TICKS
  } catch {
    return NaN
  }
}
