import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { FastifyBaseLogger } from 'fastify'

export interface IdleMemoryReleaseOptions {
  /** Quiet time after the last OpenAI call before memory is released. */
  idleMs: number
  /** A count that grows with every OpenAI call. */
  calls: () => number
  /** Whether an OpenAI call is waiting for its answer now. */
  busy: () => boolean
  log: FastifyBaseLogger
}

type FullCollection = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void

/**
 * Gives the memory a burst of traffic left behind back to the system once the service is idle:
 * V8 keeps freed pages until a memory-reducing collection, which an idle process never triggers
 * (bench/README.md). One last-resort collection per quiet period, never while a call awaits its
 * answer.
 */
export class IdleMemoryRelease {
  readonly #options: IdleMemoryReleaseOptions
  readonly #collect: FullCollection
  #timer: NodeJS.Timeout | undefined
  #callsSeen = 0
  #lastActivity = 0
  /** False at boot too: starting up leaves garbage of its own. */
  #releasedSinceLastCall = false

  constructor(options: IdleMemoryReleaseOptions) {
    this.#options = options
    this.#collect = fullCollection()
  }

  start(): void {
    this.#callsSeen = this.#options.calls()
    this.#lastActivity = performance.now()
    // Checked four times per quiet period: the release comes between 1 and 1.25 idleMs after the last call.
    this.#timer = setInterval(() => this.#tick(), Math.max(1, this.#options.idleMs / 4)).unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  #tick(): void {
    const calls = this.#options.calls()
    if (calls !== this.#callsSeen || this.#options.busy()) {
      this.#callsSeen = calls
      this.#lastActivity = performance.now()
      this.#releasedSinceLastCall = false
      return
    }
    if (this.#releasedSinceLastCall || performance.now() - this.#lastActivity < this.#options.idleMs) return
    this.#releasedSinceLastCall = true
    this.release()
  }

  /** One memory-reducing collection now; logs what it gave back. */
  release(): void {
    const rssBefore = process.memoryUsage.rss()
    const started = performance.now()
    this.#collect({ type: 'major', execution: 'sync', flavor: 'last-resort' })
    const durationMs = Math.round((performance.now() - started) * 10) / 10
    const rssAfter = process.memoryUsage.rss()
    this.#options.log.info(
      { rssBeforeMb: toMb(rssBefore), rssAfterMb: toMb(rssAfter), durationMs },
      'released memory while idle',
    )
  }
}

/**
 * V8's collector, from `--expose-gc` when the process was started with it, otherwise from a
 * fresh context created while the flag is briefly on (the global scope stays without `gc`).
 */
function fullCollection(): FullCollection {
  const exposed = (globalThis as { gc?: FullCollection }).gc
  if (exposed) return exposed
  setFlagsFromString('--expose-gc')
  try {
    return runInNewContext('gc') as FullCollection
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
}

function toMb(bytes: number): number {
  return Math.round(bytes / 104857.6) / 10
}
