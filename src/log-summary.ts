import type { FastifyBaseLogger } from 'fastify'

/** What a repeated warning is about; warnings with the same key are counted together. */
export interface SummaryKey {
  /** `shed` (503 at capacity), `upstream failure` (OpenAI down, slow or failing), `retry`, or `stalled client` (cut off). */
  kind: RepeatedKind | 'retry' | 'stalled client'
  /** The route (`/v1/tasks/<task>`) or OpenAI path (`/chat/completions`). */
  operation: string
  /** The error code the caller got. */
  code?: string
  /** OpenAI's status, or the transport code (`ECONNREFUSED`) when there was no answer. */
  cause?: string | number
}

export type RepeatedKind = 'shed' | 'upstream failure'

export interface LogSummaryOptions {
  /** Length of a counting interval; 0: each warning is logged on its own. */
  intervalMs: number
  /** Where summary lines go. */
  log?: FastifyBaseLogger
}

interface Entry {
  key: SummaryKey
  count: number
  /** Whether this interval's first one was logged on its own. */
  loggedAlone: boolean
}

// An unreadable answer too: a misbehaving OpenAI-compatible server sends one for every request.
const UPSTREAM_TROUBLE = new Set([
  'ERR_UPSTREAM_UNREACHABLE',
  'ERR_UPSTREAM_TIMEOUT',
  'ERR_UPSTREAM_SERVER_ERROR',
  'ERR_UPSTREAM_BAD_RESPONSE',
])

/**
 * The 5xx answers that are not the service's bugs but trouble it is having or passing on: they
 * come in floods, so they are warnings without a stack, counted. Anything else at 5xx is a bug.
 */
export function repeatedKind(code: string, status: number): RepeatedKind | undefined {
  if (code === 'ERR_OVERLOADED' && status === 503) return 'shed'
  if (UPSTREAM_TROUBLE.has(code) && (status === 502 || status === 504)) return 'upstream failure'
  return undefined
}

/**
 * Keeps warnings that come in floods (shed requests, OpenAI outages, retries) readable: the first
 * of a kind after a quiet interval is logged at once, with its request id, and then one line per
 * interval counts them all, by kind, operation, code and cause, while they go on. An interval
 * with nothing new to say writes nothing, and the timer stops until the next warning.
 */
export class LogSummary {
  readonly #intervalMs: number
  readonly #log: FastifyBaseLogger | undefined
  #current = new Map<string, Entry>()
  /** Keys seen in the last interval: theirs is an ongoing flood, not a start. */
  #previous = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: LogSummaryOptions) {
    this.#intervalMs = options.intervalMs
    this.#log = options.log
  }

  /** Logs `fields` and `msg` at warn on `log`, or counts them into the next summary line. */
  warn(log: FastifyBaseLogger | undefined, key: SummaryKey, fields: object, msg: string): void {
    if (this.#intervalMs === 0 || this.#closed) {
      log?.warn(fields, msg)
      return
    }
    const id = `${key.kind}\u0000${key.operation}\u0000${key.code ?? ''}\u0000${key.cause ?? ''}`
    let entry = this.#current.get(id)
    if (!entry) {
      const starting = !this.#previous.has(id)
      if (starting) log?.warn(fields, msg)
      entry = { key, count: 0, loggedAlone: starting }
      this.#current.set(id, entry)
      this.#timer ??= setInterval(() => this.flush(), this.#intervalMs).unref()
    }
    entry.count++
  }

  /** Writes the interval's counts, if any warning in it was not logged on its own. */
  flush(): void {
    const entries = [...this.#current.values()]
    this.#previous = new Set(this.#current.keys())
    this.#current = new Map()
    if (!entries.length) {
      clearInterval(this.#timer)
      this.#timer = undefined
      return
    }
    if (entries.every((e) => e.loggedAlone && e.count === 1)) return
    entries.sort((a, b) => b.count - a.count)
    const counts = entries.map((e) => ({ ...e.key, count: e.count }))
    const total = entries.reduce((n, e) => n + e.count, 0)
    this.#log?.warn({ intervalMs: this.#intervalMs, total, counts }, 'repeated warnings, counted')
  }

  /** Writes what is still counted and stops the timer; later warnings are logged on their own. */
  close(): void {
    this.flush()
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#closed = true
  }
}
