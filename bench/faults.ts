/**
 * The fault runs, each against a service of its own: readers that stop reading an audio stream,
 * a frozen Redis, SIGTERM under load. Written against the settings the service documents
 * (CLIENT_WRITE_TIMEOUT_MS, REDIS_URL, SHUTDOWN_DELAY_MS); one it lacks shows as a target not met.
 */
import { execFile } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool, request } from 'undici'
import { percentiles, type Percentiles } from './load.ts'
import { exitOf, freePort, spawnServer, stop } from './processes.ts'
import { startService, type Target } from './targets.ts'

const now = (): number => performance.timeOrigin + performance.now()

/** Calls by outcome (HTTP status, or error code), and every call's latency. */
export interface Calls {
  outcomes: Record<string, number>
  latencyMs: Percentiles & { max: number }
}

const spread = (values: number[]): Percentiles & { max: number } => ({
  ...(percentiles(values) ?? { p50: NaN, p99: NaN }),
  max: values.length ? Math.max(...values) : NaN,
})

/**
 * `callers` keep-alive loops of text-generation JSON calls (instant, or with OpenAI's delay for
 * odd loops when `mixed`) until `until`, `count` calls in all, or the loop's first refused connection.
 */
async function callLoops(
  target: Target,
  callers: number,
  until: number,
  options: { count?: number; mixed?: boolean; timeoutMs?: number } = {},
): Promise<Calls> {
  const timeout = options.timeoutMs ?? 20_000
  const pool = new Pool(target.origin, { connections: callers, headersTimeout: timeout, bodyTimeout: timeout })
  const outcomes: Record<string, number> = {}
  const latencies: number[] = []
  const loop = async (i: number): Promise<void> => {
    const call = target.call('json', !options.mixed || i % 2 === 0)
    while (now() < until && latencies.length < (options.count ?? Infinity)) {
      const start = performance.now()
      let outcome: string
      try {
        const res = await pool.request({ method: 'POST', ...call })
        await res.body.dump()
        outcome = String(res.statusCode)
      } catch (err) {
        outcome = String((err as { code?: string }).code ?? (err as Error).message)
      }
      latencies.push(performance.now() - start)
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
      if (outcome === 'ECONNREFUSED') return
    }
  }
  await Promise.all(Array.from({ length: callers }, (_, i) => loop(i)))
  await pool.destroy()
  return { outcomes, latencyMs: spread(latencies) }
}

export interface StalledReaders {
  stalled: number
  /** From the first request until every stalled reader's send queue was full. */
  stallSetInMs: number
  /** CLIENT_WRITE_TIMEOUT_MS the service ran with; undefined: its default. */
  writeTimeoutMs?: number
  /** Calls whose upstream connection closed before the clip ended. */
  aborted: number
  /** From the service's send buffer toward the reader filling up (its writes stall) to the upstream close. */
  reactionMs: Percentiles & { max: number }
  /** From the reader's stop to the upstream close: the buffers on the way filling, then the reaction. */
  stallToAbortMs: Percentiles & { max: number }
  /** Ordinary calls beside the stalled readers (runs with the default timeout only). */
  ordinary?: Calls
}

/**
 * When the service's send queue toward each reader last grew, by the reader's port: once the
 * kernel buffer is full, the service's writes stall. From `ss` every 100 ms (Linux).
 */
function watchSendQueues(servicePort: number): { fullAt: Map<number, number>; stop: () => void } {
  const queued = new Map<number, number>()
  const fullAt = new Map<number, number>()
  let reading = false
  const timer = setInterval(() => {
    if (reading) return
    reading = true
    execFile('ss', ['-tnH', 'state', 'established', `( sport = :${servicePort} )`], (err, out) => {
      reading = false
      for (const line of err ? [] : out.split('\n')) {
        const [, sendQ, , peer] = line.trim().split(/\s+/)
        const port = Number(peer?.split(':').pop())
        if (Number(sendQ) > (queued.get(port) ?? 0)) {
          queued.set(port, Number(sendQ))
          fullAt.set(port, now())
        }
      }
    })
  }, 100)
  return { fullAt, stop: () => clearInterval(timer) }
}

/** A raw connection asking for audio that reads the headers and first bytes, then nothing more. */
function stallingReader(port: number, id: number): Promise<{ socket: Socket; stalledAt?: number }> {
  const body = JSON.stringify({ model: 'tts-1', text: `bench-audio-${id} Hello there.`, voice: 'alloy' })
  const reader: { socket: Socket; stalledAt?: number } = { socket: connect(port, '127.0.0.1') }
  reader.socket.on('error', () => {})
  reader.socket.write(
    `POST /v1/tasks/text-to-speech HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\naccept: audio/mpeg\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  return new Promise((resolve) => {
    reader.socket.once('data', () => {
      reader.stalledAt = now()
      reader.socket.pause()
      resolve(reader)
    })
    reader.socket.once('close', () => resolve(reader))
    setTimeout(() => resolve(reader), 10_000).unref()
  })
}

/** Resolves once every stalled reader's send queue has stopped growing for a second (or after `maxMs`). */
async function stallEstablished(
  queues: { fullAt: Map<number, number> },
  readers: Array<{ socket: Socket; stalledAt?: number }>,
  maxMs: number,
): Promise<void> {
  const ports = readers.filter((r) => r.stalledAt).map((r) => r.socket.localPort ?? 0)
  const deadline = now() + maxMs
  while (now() < deadline) {
    const full = ports.every((port) => queues.fullAt.has(port))
    const lastGrowth = Math.max(0, ...queues.fullAt.values())
    if (full && now() - lastGrowth >= 1000) return
    await sleep(200)
  }
}

/**
 * `count` readers stall on audio streams. With the default CLIENT_WRITE_TIMEOUT_MS, ordinary calls
 * run for `windowMs` once the stall has set in (every stalled reader's send queue full): calls
 * beside stalled readers, not beside the megabytes it takes on loopback to fill their buffers.
 * With `writeTimeoutMs`, no ordinary calls: how soon the stalled readers' OpenAI calls end.
 */
export async function stalledReaders(
  upstream: Target,
  count: number,
  windowMs: number,
  writeTimeoutMs?: number,
): Promise<StalledReaders> {
  const env: Record<string, string> =
    writeTimeoutMs === undefined ? {} : { CLIENT_WRITE_TIMEOUT_MS: String(writeTimeoutMs) }
  const service = await startService(upstream, env, 'service-stalled-readers')
  const port = Number(new URL(service.origin).port)
  const queues = watchSendQueues(port)
  const started = now()
  const readers = await Promise.all(Array.from({ length: count }, (_, i) => stallingReader(port, i)))
  try {
    await stallEstablished(queues, readers, 30_000)
    const stallSetInMs = now() - started
    const ordinary =
      writeTimeoutMs === undefined ? await callLoops(service, 10, now() + windowMs) : (await sleep(windowMs), undefined)
    const log = (await (await request(`${upstream.origin}/_bench/audio`)).body.json()) as Array<{
      id: string
      closedAt?: number
      finished?: boolean
    }>
    const aborts = log.flatMap((a) => {
      const reader = readers[Number(a.id)]
      return a.closedAt && a.closedAt >= started && !a.finished && reader?.stalledAt
        ? [{ closedAt: a.closedAt, reader }]
        : []
    })
    return {
      stalled: readers.filter((r) => r.stalledAt).length,
      stallSetInMs,
      writeTimeoutMs,
      aborted: aborts.length,
      reactionMs: spread(
        aborts
          .map((a) => a.closedAt - (queues.fullAt.get(a.reader.socket.localPort ?? 0) ?? NaN))
          .filter((ms) => !Number.isNaN(ms)),
      ),
      stallToAbortMs: spread(aborts.map((a) => a.closedAt - a.reader.stalledAt!)),
      ordinary,
    }
  } finally {
    queues.stop()
    for (const { socket } of readers) socket.destroy()
    await stop(service.child)
  }
}

/** N sequential calls (3 s each at most) while the rate limiter's Redis is stopped with SIGSTOP. */
export async function frozenRedis(upstream: Target, count: number): Promise<Calls> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const redis = await spawnServer('redis', '/usr/bin/redis-server', args, {
    port,
    env: {},
    ready: () => canConnect(port),
  })
  const service = await startService(
    upstream,
    { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_MAX: '1000000' },
    'service-redis',
  )
  try {
    await callLoops(service, 1, Infinity, { count: 5 })
    redis.proc.kill('SIGSTOP')
    return await callLoops(service, 1, Infinity, { count, timeoutMs: 3_000 })
  } finally {
    redis.proc.kill('SIGCONT')
    await stop(service.child)
    await stop(redis)
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

export interface Sigterm {
  clients: number
  /** By outcome: 200, other statuses, ECONNREFUSED (a new connection once the listener closed:
   * not a loss), other errors (a request sent, then reset or closed: the losses). */
  calls: Calls
  exit: { code: number | null; signal: string | null; afterMs: number }
}

/** Keep-alive clients calling in a loop, half instant and half with OpenAI's delay; SIGTERM after `loadMs`. */
export async function sigtermUnderLoad(upstream: Target, clients: number, loadMs: number): Promise<Sigterm> {
  const service = await startService(upstream, { SHUTDOWN_DELAY_MS: '500' }, 'service-sigterm')
  const calls = callLoops(service, clients, now() + 20_000, { mixed: true })
  await sleep(loadMs)
  const signalled = performance.now()
  service.child.proc.kill('SIGTERM')
  const kill = setTimeout(() => service.child.proc.kill('SIGKILL'), 25_000)
  const exit = await exitOf(service.child)
  clearTimeout(kill)
  return { clients, calls: await calls, exit: { ...exit, afterMs: performance.now() - signalled } }
}
