/** The benchmark's settings, from the environment. */
import { resolve } from 'node:path'
import { imageAllocator, SYSTEM_ALLOCATOR, type Allocator } from './allocator.ts'
import { ROOT } from './processes.ts'
import { SCENARIOS, type Scenario } from './scenarios.ts'

/** Runs besides the scenarios, selectable with BENCH_SCENARIOS like them. */
export const SECTIONS = ['text-embeddings-batch', 'references', 'cluster'] as const
export type Section = (typeof SECTIONS)[number]

/** How the service is started, shared by `npm run bench` and `npm run bench:streaming`. */
export interface ServiceSettings {
  /** Longest time, over the whole bench, spent waiting for a busy machine to calm down. */
  quietWaitMs: number
  /** Extra node flags for the service. */
  serviceNodeArgs: string[]
  /** Checkout whose service to build and run. */
  serviceDir: string
  /** Run `src/*.ts` instead of building and running `dist/*.js`. */
  fromSource: boolean
  /** The malloc the service (and the floor forwarder) run with: the image's, or the system's. */
  allocator: Allocator
}

export interface Settings extends ServiceSettings {
  /** Seconds per measured run. */
  durationSec: number
  /** Seconds of unmeasured load before each side's runs. */
  warmupSec: number
  /** Connections of the loaded runs (the latency runs use 1). */
  connections: number
  /** Rate of the fixed-rate runs, as a fraction of the measured through capacity. */
  rateFraction: number
  /** Fixed-rate runs per side, interleaved; the one with the median p99 is reported. */
  rateRepeats: number
  /** Items per request of the embeddings batch run. */
  batchSize: number
  /** WORKERS of the cluster run. */
  workers: number
  scenarios: Scenario[]
  sections: Section[]
}

export const SERVICE_SETTINGS_HELP = `  BENCH_FROM_SOURCE         1: run the service's src/*.ts instead of building it (npm run build) and running dist/*.js
  BENCH_QUIET_WAIT          s, in all, to wait for other processes to leave the CPUs alone (default 15; 0: never)
  BENCH_SERVICE_NODE_ARGS   extra node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  BENCH_SERVICE_DIR         another checkout to build and run instead of this one (to compare versions)
  BENCH_ALLOCATOR           image: the malloc the Dockerfile preloads (jemalloc), when this machine has it (default); system: glibc's`

export const SETTINGS_HELP = `Env:
  BENCH_DURATION            s per measured run (default 7)
  BENCH_WARMUP              s of warm-up load before each side's runs (default 2)
  BENCH_CONNECTIONS         connections of the loaded and fixed-rate runs (default 50)
  BENCH_RATE_FRACTION       rate of the fixed-rate runs, as a fraction of the through capacity (default 0.5)
  BENCH_RATE_REPEATS        fixed-rate runs per side, direct and through interleaved; the median p99 is reported (default 3)
  BENCH_BATCH_SIZE          items per request of the embeddings batch run (default 32)
  BENCH_WORKERS             WORKERS of the cluster run (default 2)
  BENCH_SCENARIOS           comma-separated ids (default all: ${[...SCENARIOS.map((s) => s.id), ...SECTIONS].join(', ')})
${SERVICE_SETTINGS_HELP}`

export function number(env: NodeJS.ProcessEnv, name: string, fallback: number, allowZero = false): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) {
    throw new Error(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${JSON.stringify(raw)}`)
  }
  return value
}

export function readServiceSettings(env: NodeJS.ProcessEnv = process.env): ServiceSettings {
  const serviceDir = resolve(env.BENCH_SERVICE_DIR || ROOT)
  const allocator = env.BENCH_ALLOCATOR || 'image'
  if (allocator !== 'image' && allocator !== 'system') throw new Error(`BENCH_ALLOCATOR must be image or system, got ${JSON.stringify(allocator)}`)
  return {
    quietWaitMs: number(env, 'BENCH_QUIET_WAIT', 15, true) * 1000,
    serviceNodeArgs: (env.BENCH_SERVICE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
    serviceDir,
    fromSource: ['1', 'true', 'yes'].includes(env.BENCH_FROM_SOURCE ?? ''),
    allocator: allocator === 'image' ? imageAllocator(serviceDir) : SYSTEM_ALLOCATOR,
  }
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const only = (env.BENCH_SCENARIOS ?? '').split(',').map((id) => id.trim()).filter(Boolean)
  const known = (id: string): boolean => SCENARIOS.some((s) => s.id === id) || (SECTIONS as readonly string[]).includes(id)
  const unknown = only.filter((id) => !known(id))
  if (unknown.length) throw new Error(`BENCH_SCENARIOS: no scenario ${unknown.join(', ')}`)
  const sections = only.length ? SECTIONS.filter((s) => only.includes(s)) : [...SECTIONS]
  // The cluster and the references are compared with text generation straight to the upstream: that scenario runs too.
  const needsGeneration = sections.includes('cluster') || sections.includes('references')
  if (only.length && needsGeneration && !only.includes('text-generation-json')) only.push('text-generation-json')
  const rateFraction = number(env, 'BENCH_RATE_FRACTION', 0.5)
  if (rateFraction > 1) throw new Error(`BENCH_RATE_FRACTION must be at most 1, got ${rateFraction}`)
  return {
    ...readServiceSettings(env),
    durationSec: number(env, 'BENCH_DURATION', 7),
    warmupSec: number(env, 'BENCH_WARMUP', 2),
    connections: Math.max(1, Math.round(number(env, 'BENCH_CONNECTIONS', 50))),
    rateFraction,
    rateRepeats: Math.max(1, Math.round(number(env, 'BENCH_RATE_REPEATS', 3))),
    batchSize: Math.max(1, Math.round(number(env, 'BENCH_BATCH_SIZE', 32))),
    workers: Math.max(1, Math.round(number(env, 'BENCH_WORKERS', 2))),
    scenarios: only.length ? SCENARIOS.filter((s) => only.includes(s.id)) : SCENARIOS,
    sections,
  }
}
