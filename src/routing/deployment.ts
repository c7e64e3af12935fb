import type { DeploymentSettings } from './deployment-settings.ts'
import { anyPatternMatches } from './model-patterns.ts'

/** Why a deployment takes no calls for now, as metrics and warnings name it. */
export type Unavailability = 'cool-down' | 'circuit-open'

/** What a deployment's state changes are reported to (log-once warnings, metrics). */
export interface DeploymentEvents {
  unavailable(deployment: Deployment, why: Unavailability, forMs: number, cause: string): void
  available(deployment: Deployment, after: Unavailability): void
}

/** Whether rate limits cool a deployment down, and when consecutive failures open its circuit. */
export interface CircuitPolicy {
  /** Whether a rate limit keeps every call off the deployment until it is over. */
  coolDowns: boolean
  /** Failures in a row that open it; 0: never. */
  failures: number
  /** First time it stays open; each reopening doubles it, up to `maxOpenMs`. */
  openMs: number
  maxOpenMs: number
}

/** Five failures in a row open the circuit for 5 s, then 10, 20... up to a minute. */
export const CIRCUIT: CircuitPolicy = { coolDowns: true, failures: 5, openMs: 5_000, maxOpenMs: 60_000 }
/** One deployment has no alternative: each call waits out its own 429s and failures, as before. */
export const NO_CIRCUIT: CircuitPolicy = { coolDowns: false, failures: 0, openMs: 0, maxOpenMs: 0 }

/**
 * One deployment's live state: its open calls, a cool-down the rate-limit headers asked for,
 * and a circuit that consecutive failures open. Open, the circuit lets one probe call through
 * once its time is over; the probe's outcome closes or reopens it.
 */
export class Deployment {
  readonly settings: DeploymentSettings
  readonly name: string
  inFlight = 0
  #coolDownUntil = 0
  #failures = 0
  #circuitOpenUntil = 0
  #openings = 0
  #probing = false
  #returnTimer: NodeJS.Timeout | undefined
  readonly #circuit: CircuitPolicy
  readonly #events: DeploymentEvents | undefined
  /** Smooth weighted round-robin: its running score among the deployments it is chosen from. */
  current = 0

  constructor(settings: DeploymentSettings, circuit: CircuitPolicy, events?: DeploymentEvents) {
    this.settings = settings
    this.name = settings.name
    this.#circuit = circuit
    this.#events = events
  }

  serves(model: string): boolean {
    return anyPatternMatches(this.settings.models, model)
  }

  /** The model as this deployment names it. */
  modelFor(model: string): string {
    return this.settings.modelMap[model] ?? model
  }

  /** Whether a call may go here now. */
  available(now: number): boolean {
    if (this.settings.maxConcurrent !== undefined && this.inFlight >= this.settings.maxConcurrent) return false
    if (now < this.#coolDownUntil) return false
    if (this.#circuitOpenUntil === 0) return true
    return now >= this.#circuitOpenUntil && !this.#probing
  }

  /** When it may take a call again if it cannot now (0: it is only busy). */
  availableAt(now: number): number {
    const until = Math.max(this.#coolDownUntil, this.#probing ? 0 : this.#circuitOpenUntil)
    return until > now ? until : 0
  }

  /** Whether its circuit is open now (a probe may be on its way). */
  circuitOpen(): boolean {
    return this.#circuitOpenUntil !== 0
  }

  /** Whether it is out for a rate limit (rather than failures), for the status the caller gets. */
  coolingDown(now: number): boolean {
    return now < this.#coolDownUntil
  }

  /** A call starts here; a circuit past its open time lets this one through as its probe. */
  acquire(now: number): void {
    this.inFlight++
    if (this.#circuitOpenUntil !== 0 && now >= this.#circuitOpenUntil) this.#probing = true
  }

  release(): void {
    this.inFlight--
  }

  /** The call was dropped before an answer (its caller left): a probe it carried says nothing. */
  abandoned(): void {
    this.#probing = false
  }

  /** An answer came (any status but the failures below): the circuit closes. */
  succeeded(): void {
    this.#failures = 0
    this.#probing = false
    if (this.#circuitOpenUntil !== 0) {
      this.#circuitOpenUntil = 0
      this.#openings = 0
      this.#events?.available(this, 'circuit-open')
    }
  }

  /** Out of requests or tokens (a 429, or a success with nothing left) for `forMs`. */
  rateLimited(now: number, forMs: number, cause: string): void {
    if (!this.#circuit.coolDowns) return
    const until = now + forMs
    if (until <= this.#coolDownUntil) return
    const wasCooling = now < this.#coolDownUntil
    this.#coolDownUntil = until
    if (!wasCooling) this.#events?.unavailable(this, 'cool-down', forMs, cause)
    this.#announceReturn(until, 'cool-down')
  }

  /** A 5xx, a refused or reset connection, a timeout: counted towards opening the circuit. */
  failed(now: number, cause: string): void {
    this.#failures++
    const reopening = this.#probing
    this.#probing = false
    if (!reopening && (this.#circuit.failures === 0 || this.#failures < this.#circuit.failures)) return
    const openMs = Math.min(this.#circuit.maxOpenMs, this.#circuit.openMs * 2 ** this.#openings)
    this.#openings++
    const wasOpen = this.#circuitOpenUntil !== 0
    this.#circuitOpenUntil = now + openMs
    if (!wasOpen) this.#events?.unavailable(this, 'circuit-open', openMs, cause)
  }

  /** Says once that the cool-down is over, when it is: traffic returns by itself then. */
  #announceReturn(at: number, after: Unavailability): void {
    clearTimeout(this.#returnTimer)
    this.#returnTimer = setTimeout(() => this.#events?.available(this, after), Math.max(0, at - Date.now()))
    this.#returnTimer.unref()
  }

  close(): void {
    clearTimeout(this.#returnTimer)
  }
}
