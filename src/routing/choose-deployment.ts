import type { Deployment } from './deployment.ts'

/**
 * The deployment a call goes to, among those that serve it and it has not tried: of the lowest
 * priority number with one available, by weight (smooth weighted round-robin, so shares hold
 * exactly over a few calls), unless the one it names holds more than twice the calls per weight
 * of the least loaded: a slow deployment then gets less.
 */
export function chooseDeployment(
  candidates: readonly Deployment[],
  tried: readonly Deployment[],
  now: number,
): Deployment | undefined {
  // The environment's single upstream: the round-robin below would leave its score as it was.
  if (candidates.length === 1) {
    const only = candidates[0]!
    return !tried.includes(only) && only.available(now) ? only : undefined
  }
  let priority = Infinity
  for (const d of candidates) {
    if (d.settings.priority < priority && !tried.includes(d) && d.available(now)) priority = d.settings.priority
  }
  if (priority === Infinity) return undefined
  let chosen: Deployment | undefined
  let least: Deployment | undefined
  let total = 0
  for (const d of candidates) {
    if (d.settings.priority !== priority || tried.includes(d) || !d.available(now)) continue
    d.current += d.settings.weight
    total += d.settings.weight
    if (!chosen || d.current > chosen.current) chosen = d
    if (!least || load(d) < load(least)) least = d
  }
  chosen!.current -= total
  return least && load(chosen!) > 2 * ((least.inFlight + 1) / least.settings.weight) ? least : chosen
}

function load(d: Deployment): number {
  return d.inFlight / d.settings.weight
}

/**
 * When the first of the candidates (not tried by this call, or all of them once each was) can
 * take a call again, and whether they are all out for rate limits; undefined when none will.
 */
export function earliestReturn(
  candidates: readonly Deployment[],
  now: number,
): { at: number; rateLimited: boolean } | undefined {
  let at = Infinity
  let rateLimited = true
  for (const d of candidates) {
    const when = d.availableAt(now)
    if (when === 0) continue
    if (when < at) at = when
    if (!d.coolingDown(now)) rateLimited = false
  }
  return at === Infinity ? undefined : { at, rateLimited }
}
