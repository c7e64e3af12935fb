import type { FastifyBaseLogger } from 'fastify'

export interface OutageWording {
  /** What is out, as the log names it: `rate-limit store`, `cache store`. */
  store: string
  /** What callers get meanwhile: `requests pass unlimited`. */
  meanwhile: string
  /** The log field counting the operations that went without the store meanwhile. */
  counted: string
}

export interface OutageLog {
  /** A connection attempt or a command failed. */
  down(err: Error): void
  /** An operation went without the store, which failed it. */
  missed(err: Error): void
  /** A command answered, or the connection is ready again. */
  up(): void
  /** No outage is known now. */
  readonly available: boolean
}

/**
 * Says once when a Redis store stops answering and once when it answers again, with how long
 * that lasted and how many operations went without it meanwhile, however many commands and
 * reconnect attempts fail in between.
 */
export function outageLog(log: FastifyBaseLogger, wording: OutageWording): OutageLog {
  let outage: { since: number; missed: number } | undefined
  const down = (err: Error) => {
    if (!outage) {
      outage = { since: Date.now(), missed: 0 }
      log.warn({ err: { message: err.message } }, `${wording.store} unavailable: ${wording.meanwhile}`)
    }
    return outage
  }
  return {
    down,
    missed(err) {
      down(err).missed++
    },
    up() {
      if (!outage) return
      // At warn too, so that a log kept at warnings shows the end and the toll of the outage.
      log.warn(
        { outageMs: Date.now() - outage.since, [wording.counted]: outage.missed },
        `${wording.store} available again`,
      )
      outage = undefined
    },
    get available() {
      return outage === undefined
    },
  }
}
