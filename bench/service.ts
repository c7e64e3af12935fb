/** The service as both benches run it: built once and run from dist/, as in production (or from source). */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { memoryOf, type Memory } from './proc.ts'
import { buildService, ENTRIES, ROOT, startService, startUpstream, type Child, type Service } from './processes.ts'
import type { ServiceSettings } from './settings.ts'

export interface BuildInfo {
  ms: number
  /** Type errors tsc reported; it emitted dist/ regardless, and that is what runs. */
  errors: string[]
}

/** `npm run build` in the service's checkout, unless it runs from source. */
export async function buildIfNeeded(settings: ServiceSettings, log: (line: string) => void): Promise<BuildInfo | undefined> {
  if (settings.fromSource) return undefined
  const build = await buildService(settings.serviceDir)
  log(`bench: npm run build in ${(build.ms / 1000).toFixed(1)} s${build.errors.length ? ` with ${build.errors.length} type errors` : ''}`)
  return build
}

export const entryOf = (settings: ServiceSettings, kind: keyof typeof ENTRIES): string =>
  ENTRIES[kind][settings.fromSource ? 'source' : 'built']

/** The package.json script that runs each entry in production (the Dockerfile's CMD matches `start`). */
const PRODUCTION_SCRIPTS = { server: 'start', cluster: 'start:cluster' } as const

/**
 * The node flags production gives the entry, read from its package.json script (e.g. `start`:
 * `node --max-semi-space-size=16 dist/server.js` gives `--max-semi-space-size=16`).
 */
export async function productionNodeArgs(dir: string, kind: keyof typeof ENTRIES): Promise<string[]> {
  try {
    const { scripts } = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }
    const script = scripts?.[PRODUCTION_SCRIPTS[kind]] ?? ''
    const flags = new RegExp(`(?:^|&&|;)\\s*node((?:\\s+-[^\\s]+)*)\\s+${ENTRIES[kind].built.replace('.', '\\.')}`).exec(script)?.[1]
    return flags?.split(/\s+/).filter(Boolean) ?? []
  } catch {
    return []
  }
}

/** The node flags the service runs with: production's, then BENCH_SERVICE_NODE_ARGS. */
export async function nodeArgsFor(settings: ServiceSettings, kind: keyof typeof ENTRIES = 'server'): Promise<string[]> {
  return [...(await productionNodeArgs(settings.serviceDir, kind)), ...settings.serviceNodeArgs]
}

/** Starts the single-process server or the cluster against the bench upstream. */
export async function launch(
  settings: ServiceSettings,
  upstreamPort: number,
  kind: keyof typeof ENTRIES = 'server',
  env?: Record<string, string>,
): Promise<Service & { nodeArgs: string[] }> {
  const nodeArgs = await nodeArgsFor(settings, kind)
  const service = await startService({
    upstreamPort,
    dir: settings.serviceDir,
    entry: entryOf(settings, kind),
    nodeArgs,
    name: kind === 'cluster' ? 'service cluster' : 'service',
    env: { ...settings.allocator.env, ...env },
  })
  return { ...service, nodeArgs }
}

/** What both reports say about the service they measured. */
export interface ServiceFacts {
  dir: string
  /** What runs: `dist/server.js` (built before the run) or `src/server.ts`. */
  entry: string
  buildMs?: number
  /** Type errors the build reported (it emits regardless); empty when it was clean. */
  buildErrors?: string[]
  /** Node flags: production's (from package.json `start`), then BENCH_SERVICE_NODE_ARGS. */
  nodeArgs: string[]
  /** The malloc it ran with (absent in results from before it was recorded). */
  allocator?: string
  startupMs: number
  idleRssMb?: number
  rssMb?: number
  peakRssMb?: number
  logLines: number
  logTail: string[]
}

export function serviceFacts(
  settings: ServiceSettings,
  build: BuildInfo | undefined,
  service: Service & { nodeArgs: string[] },
  idle: Memory | undefined,
  memory: Memory | undefined,
): ServiceFacts {
  return {
    dir: settings.serviceDir === ROOT.replace(/\/$/, '') ? 'this checkout' : settings.serviceDir,
    entry: entryOf(settings, 'server'),
    ...(build && { buildMs: build.ms, buildErrors: build.errors }),
    nodeArgs: service.nodeArgs,
    allocator: settings.allocator.description,
    startupMs: service.startupMs,
    ...(idle && { idleRssMb: idle.rssMb }),
    ...memory,
    logLines: service.child.logLines,
    logTail: service.child.logTail,
  }
}

/** What both benches start with: the build, the bench upstream, and the service against it. */
export interface BenchPair {
  build: BuildInfo | undefined
  upstream: { child: Child; port: number }
  upstreamUrl: string
  service: Service & { nodeArgs: string[] }
  pid: number
  /** The service's memory once it answers, before any load. */
  idle: Memory | undefined
}

export async function startBenchPair(settings: ServiceSettings, log: (line: string) => void, name: string): Promise<BenchPair> {
  const build = await buildIfNeeded(settings, log)
  const upstream = await startUpstream()
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`
  const service = await launch(settings, upstream.port)
  const pid = service.child.proc.pid!
  const idle = await memoryOf(pid)
  const command = [...service.nodeArgs, entryOf(settings, 'server')].join(' ')
  log(`${name}: upstream ${upstreamUrl}, service ${service.url} (node ${command}, ${settings.allocator.description}, ready in ${service.startupMs.toFixed(0)} ms)`)
  return { build, upstream, upstreamUrl, service, pid, idle }
}
