/**
 * Failover under rate limits (`npm run bench -- --deployments`): two stand-ins, one healthy and
 * one answering 429 (`Retry-After: 1`) to every third chat call by a counter, and the same load
 * of text-generation JSON calls (the 1–4 s delay, about 200 open at once) sent to four sides in
 * turn: straight to the healthy stand-in; the service with one healthy deployment (OPENAI_BASE_URL,
 * as today); the service with both deployments in a CONFIG_FILE; and the service with only the
 * 429-ing one (OPENAI_BASE_URL, as today), which retries and then hands the 429 to its caller.
 * The stand-ins give every call the same delay by its number on every side, so the difference
 * between two sides is what the proxy did, not what the stand-in did.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { concurrentCalls, summarize, type Summary } from './load.ts'
import { measured, stop, type Child } from './processes.ts'
import { startService, startUpstream, type Target } from './targets.ts'

export interface DeploymentsPlan {
  /** Calls per side, opened evenly over `rampMs`. */
  calls: number
  rampMs: number
  /** The 429-ing stand-in answers every `rateLimitEvery`-th chat call 429 with `Retry-After: retryAfterS`. */
  rateLimitEvery: number
  retryAfterS: number
  /** The stand-ins' JSON delay range (BENCH_UPSTREAM_JSON_MIN_MS, _MAX_MS). */
  jsonMs: [number, number]
}

export type SideName = 'direct' | 'one healthy deployment' | 'two deployments, one 429-ing' | 'one 429-ing deployment'

/** What a stand-in received during one side: chat calls, and those it answered 429. */
export interface StandInCount {
  calls: number
  rateLimited: number
}

export interface DeploymentsSide {
  name: SideName
  summary: Summary
  /** The service's CPU seconds during the side (none for direct). */
  cpuS?: number
  healthy: StandInCount
  limited: StandInCount
}

export interface DeploymentsResults {
  date: string
  command: string
  machine: string
  /** 1-minute load average before and after the run (the other sides share the two cores). */
  loadBefore: number
  loadAfter: number
  node: string
  plan: DeploymentsPlan
  sides: DeploymentsSide[]
  durationS: number
}

/** The goal of issue 21: every call 200 and the p99 within 50 ms of one healthy deployment's. */
export const ADDED_P99_LIMIT_MS = 50
const DEADLINE_MS = 60_000

async function standInCount(target: Target): Promise<StandInCount> {
  const res = await request(`${target.origin}/_bench/chat`)
  return (await res.body.json()) as StandInCount
}

const minus = (a: StandInCount, b: StandInCount): StandInCount => ({
  calls: a.calls - b.calls,
  rateLimited: a.rateLimited - b.rateLimited,
})

/** The configuration file of the two-deployment service: keys by `${VAR}`, as a Secret would give them. */
function configFile(dir: string, healthy: Target, limited: Target): string {
  const file = join(dir, 'config.yaml')
  writeFileSync(
    file,
    [
      'deployments:',
      '  - name: healthy',
      `    base-url: ${healthy.origin}/v1`,
      `    api-key: \${BENCH_KEY_HEALTHY}`,
      '  - name: rate-limited',
      `    base-url: ${limited.origin}/v1`,
      `    api-key: \${BENCH_KEY_RATE_LIMITED}`,
      '',
    ].join('\n'),
  )
  return file
}

export async function deploymentsFailover(
  healthy: Target,
  plan: DeploymentsPlan,
  command: string,
  log: (line: string) => void,
): Promise<DeploymentsResults> {
  const started = performance.now()
  const loadBefore = loadavg()[0]!
  const { direct: limited, child: limitedChild } = await startUpstream(
    {
      BENCH_UPSTREAM_RATE_LIMIT_EVERY: String(plan.rateLimitEvery),
      BENCH_UPSTREAM_RATE_LIMIT_RETRY_AFTER_S: String(plan.retryAfterS),
    },
    'stand-in, 429-ing',
  )
  const dir = mkdtempSync(join(tmpdir(), 'openai-tasks-bench-deployments-'))
  const services: Child[] = [limitedChild]
  const sides: DeploymentsSide[] = []
  try {
    const one = await startService(healthy, {}, 'service, one healthy deployment')
    services.push(one.child)
    const two = await startService(
      healthy,
      {
        CONFIG_FILE: configFile(dir, healthy, limited),
        BENCH_KEY_HEALTHY: 'sk-bench-healthy',
        BENCH_KEY_RATE_LIMITED: 'sk-bench-rate-limited',
      },
      'service, two deployments',
    )
    services.push(two.child)
    const today = await startService(limited, {}, 'service, one 429-ing deployment')
    services.push(today.child)
    const order: Array<[SideName, Target]> = [
      ['direct', healthy],
      ['one healthy deployment', one],
      ['two deployments, one 429-ing', two],
      ['one 429-ing deployment', today],
    ]
    for (const [, target] of order) {
      if (target === healthy) continue
      // Warm: the first calls compile the routes; a 429 they meet has cooled down before the side starts.
      await concurrentCalls(target, {
        kind: 'json',
        instant: true,
        count: 50,
        rampMs: 100,
        deadlineMs: 10_000,
        expectTokens: 0,
      })
    }
    for (const [name, target] of order) {
      await sleep(plan.retryAfterS * 1000 + 500)
      const before = await Promise.all([standInCount(healthy), standInCount(limited)])
      const run = await measured(target.child?.pid, () =>
        concurrentCalls(target, {
          kind: 'json',
          instant: false,
          count: plan.calls,
          rampMs: plan.rampMs,
          deadlineMs: DEADLINE_MS,
          expectTokens: 0,
        }),
      )
      const after = await Promise.all([standInCount(healthy), standInCount(limited)])
      const side: DeploymentsSide = {
        name,
        summary: summarize(run.result),
        cpuS: run.cpuS,
        healthy: minus(after[0], before[0]),
        limited: minus(after[1], before[1]),
      }
      sides.push(side)
      const failed = Object.entries(side.summary.failures)
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ')
      log(
        `${name}: ${side.summary.completed}/${side.summary.sent} answered 200, p50 ${side.summary.duration?.p50.toFixed(0) ?? 'n/a'} / p99 ${side.summary.duration?.p99.toFixed(0) ?? 'n/a'} ms; the 429-ing stand-in got ${side.limited.calls} calls, answered ${side.limited.rateLimited} 429${failed && `; ${failed}`}`,
      )
    }
  } finally {
    for (const child of services) await stop(child)
    rmSync(dir, { recursive: true, force: true })
  }
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    command,
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}`,
    loadBefore,
    loadAfter: loadavg()[0]!,
    node: process.version,
    plan,
    sides,
    durationS: (performance.now() - started) / 1000,
  }
}

const ms = (n: number | undefined): string => (n === undefined ? 'n/a' : Math.round(n).toLocaleString('en-US'))
const signed = (n: number | undefined): string =>
  n === undefined ? 'n/a' : `${n < 0 ? '−' : '+'}${Math.round(Math.abs(n)).toLocaleString('en-US')}`

function side(r: DeploymentsResults, name: SideName): DeploymentsSide | undefined {
  return r.sides.find((s) => s.name === name)
}

/** Whether the goal holds, and what was measured. */
export function deploymentsTarget(r: DeploymentsResults): { met: boolean | undefined; line: string } {
  const goal = `through two deployments, one answering 429 to a third of its calls, every call answers 200 and the p99 stays within ${ADDED_P99_LIMIT_MS} ms of one healthy deployment's`
  const base = side(r, 'one healthy deployment')?.summary
  const two = side(r, 'two deployments, one 429-ing')?.summary
  if (!base?.duration || !two) return { met: undefined, line: `not measured: ${goal}` }
  const added = two.duration && two.duration.p99 - base.duration.p99
  const met = two.completed === two.sent && added !== undefined && added <= ADDED_P99_LIMIT_MS
  const got = `${two.completed} of ${two.sent} answered 200, p99 ${ms(two.duration?.p99)} ms against ${ms(base.duration.p99)} ms (${signed(added)} ms)`
  return { met, line: `${met ? '**met**' : '**not met**'}: ${goal} — ${got}` }
}

export function deploymentsMarkdown(r: DeploymentsResults): string {
  const base = side(r, 'one healthy deployment')?.summary.duration
  const direct = side(r, 'direct')?.summary.duration
  const rows = r.sides.map((s) => {
    const d = s.summary.duration
    const failures =
      Object.entries(s.summary.failures)
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ') || '–'
    const vs = (ref: typeof base): string =>
      d && ref ? `${signed(d.p50 - ref.p50)} / ${signed(d.p99 - ref.p99)}` : 'n/a'
    const limited =
      s.name === 'one healthy deployment' || s.name === 'direct'
        ? '–'
        : `${ms(s.limited.calls)} / ${ms(s.limited.rateLimited)}`
    return `| ${s.name} | ${s.summary.completed} / ${s.summary.sent} | ${failures} | ${ms(d?.p50)} / ${ms(d?.p99)} | ${s.name === 'direct' ? '–' : vs(direct)} | ${s.name === 'direct' || s.name === 'one healthy deployment' ? '–' : vs(base)} | ${limited} | ${s.cpuS === undefined ? '–' : s.cpuS.toFixed(2)} |`
  })
  const today = side(r, 'one 429-ing deployment')
  const two = side(r, 'two deployments, one 429-ing')
  const [min, max] = r.plan.jsonMs
  const open = Math.round(((r.plan.calls / r.plan.rampMs) * (min + max)) / 2 / 10) * 10
  return [
    '# Deployments: failover under rate limits',
    '',
    `\`${r.command}\`, ${r.date}, Node ${r.node}, ${r.machine}, load average ${r.loadBefore.toFixed(1)} before and ${r.loadAfter.toFixed(1)} after (${r.durationS.toFixed(0)} s).`,
    '',
    `Per side, ${r.plan.calls} text-generation JSON calls (the stand-in's ${min / 1000}–${max / 1000} s delay, the same for each call number on every side) opened evenly over ${r.plan.rampMs / 1000} s, about ${open} open at once, loopback only. The 429-ing stand-in answers ${every(r.plan.rateLimitEvery)} chat call it receives (a counter) with OpenAI's 429, \`Retry-After: ${r.plan.retryAfterS}\`, at once.`,
    '',
    `- ${deploymentsTarget(r).line}`,
    '',
    '| side | answered 200 | failures | duration p50 / p99 (ms) | added p50 / p99 vs direct | added p50 / p99 vs one healthy deployment | 429-ing stand-in: calls / 429s | service CPU (s) |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    '- *direct*: straight to the healthy stand-in. *one healthy deployment*: the service with `OPENAI_BASE_URL` at it.',
    `- *two deployments, one 429-ing*: the service with a \`CONFIG_FILE\` naming both (keys as \`\${VAR}\`)${two ? `: the healthy stand-in took ${two.healthy.calls} calls, the 429-ing one ${two.limited.calls}, of which ${two.limited.rateLimited} answered 429 and went to the healthy one at once` : ''}.`,
    `- *one 429-ing deployment*: today's setup, \`OPENAI_BASE_URL\` at the 429-ing stand-in: each 429 is retried after its \`Retry-After\` (up to \`UPSTREAM_MAX_RETRIES\`, 2), then handed to the caller${today ? `: ${today.summary.failures['429'] ?? 0} callers got a 429, of ${today.limited.rateLimited} the stand-in answered` : ''}.`,
    '',
  ].join('\n')
}

function every(n: number): string {
  return n === 1 ? 'every' : `every ${n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`}`
}
