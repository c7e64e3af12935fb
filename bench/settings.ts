/** The benchmark's settings, from the environment. */
import { resolve } from 'node:path'
import { ROOT } from './processes.ts'
import { SCENARIOS, type Scenario } from './scenarios.ts'

export interface Settings {
  /** Seconds per measured run. */
  durationSec: number
  /** Seconds of unmeasured load before each side's runs. */
  warmupSec: number
  /** Connections of the loaded runs (the latency runs use 1). */
  connections: number
  /** Longest time, over the whole bench, spent waiting for a busy machine to calm down. */
  quietWaitMs: number
  /** Extra node flags for the service. */
  serviceNodeArgs: string[]
  /** Directory holding the service's src/server.ts. */
  serviceDir: string
  scenarios: Scenario[]
}

export const SETTINGS_HELP = `Env:
  BENCH_DURATION            s per measured run (default 7)
  BENCH_WARMUP              s of warm-up load before each side's runs (default 2)
  BENCH_CONNECTIONS         connections of the loaded runs (default 50)
  BENCH_SCENARIOS           comma-separated ids (default all: ${SCENARIOS.map((s) => s.id).join(', ')})
  BENCH_QUIET_WAIT          s, in all, to wait for other processes to leave the CPUs alone (default 15; 0: never)
  BENCH_SERVICE_NODE_ARGS   extra node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  BENCH_SERVICE_DIR         a checkout whose src/server.ts to run instead of this one (to compare versions)`

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, allowZero = false): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) {
    throw new Error(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${JSON.stringify(raw)}`)
  }
  return value
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const only = (env.BENCH_SCENARIOS ?? '').split(',').map((id) => id.trim()).filter(Boolean)
  const unknown = only.filter((id) => !SCENARIOS.some((s) => s.id === id))
  if (unknown.length) throw new Error(`BENCH_SCENARIOS: no scenario ${unknown.join(', ')}`)
  return {
    durationSec: number(env, 'BENCH_DURATION', 7),
    warmupSec: number(env, 'BENCH_WARMUP', 2),
    connections: Math.max(1, Math.round(number(env, 'BENCH_CONNECTIONS', 50))),
    quietWaitMs: number(env, 'BENCH_QUIET_WAIT', 15, true) * 1000,
    serviceNodeArgs: (env.BENCH_SERVICE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
    serviceDir: resolve(env.BENCH_SERVICE_DIR || ROOT),
    scenarios: only.length ? SCENARIOS.filter((s) => only.includes(s.id)) : SCENARIOS,
  }
}
