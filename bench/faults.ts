/**
 * The fault runs, each against a service of its own: readers that stop reading an audio stream,
 * a frozen Redis, SIGTERM under load. Written against the settings the service documents
 * (CLIENT_WRITE_TIMEOUT_MS, REDIS_URL, SHUTDOWN_DELAY_MS); where one is missing the target
 * simply shows as not met.
 */
import { execFile } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool, request } from 'undici'
import { percentiles, type Percentiles } from './load.ts'
import { exitOf, freePort, spawnServer, stop } from './processes.ts'
import { startService, type Target } from './targets.ts'

const now = (): number => performance.timeOrigin + performance.now()
const codeOf = (err: unknown): string => String((err as { code?: string }).code ?? (err as Error).message)
const tally = (counts: Record<string, number>, key: string): void => void (counts[key] = (counts[key] ?? 0) + 1)

interface Ordinary {
  sent: number
  ok: number
  latency?: Percentiles & { max: number }
  failures: Record<string, number>
}

/** `callers` sequential loops of instant JSON calls until `until` (epoch ms); every call gets 10 s at most. */
async function ordinaryCalls(target: Target, callers: number, until: number): Promise<Ordinary> {
  const pool = new Pool(target.origin, { connections: callers, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const call = target.call('json', true)
  const times: number[] = []
  const failures: Record<string, number> = {}
  const loop = async (): Promise<void> => {
    while (now() < until) {
      const start = performance.now()
      try {
        const res = await pool.request({ method: 'POST', ...call })
        await res.body.dump()
        if (res.statusCode === 200) times.push(performance.now() - start)
        else tally(failures, String(res.statusCode))
      } catch (err) {
        tally(failures, codeOf(err))
      }
    }
  }
  await Promise.all(Array.from({ length: callers }, loop))
  await pool.destroy()
  const sent = times.length + Object.values(failures).reduce((a, b) => a + b, 0)
  const latency = spread(times)
  return { sent, ok: times.length, failures, ...(latency && { latency }) }
}

export interface StalledReaders {
  stalled: number
  writeTimeoutMs: number
  /** Calls whose upstream connection closed before the clip ended. */
  aborted: number
  /** From the reader's stop to the upstream close: the socket buffers on the way filling, then the service's reaction. */
  stallToAbortMs?: Percentiles & { max: number }
  /** From the service's send buffer to that reader filling up (its writes stall) to the upstream close. */
  reactionMs?: Percentiles & { max: number }
  ordinary: Ordinary
}

/**
 * When the service's send buffer toward each reader last grew, by the reader's port: once it is
 * full the service's writes stall. Read from `ss` every 100 ms (Linux; without it, nothing).
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
      if (err) return
      const at = now()
      for (const line of out.split('\n')) {
        const [, sendQ, , peer] = line.trim().split(/\s+/)
        const port = Number(peer?.split(':').pop())
        if (Number(sendQ) > (queued.get(port) ?? 0)) {
          queued.set(port, Number(sendQ))
          fullAt.set(port, at)
        }
      }
    })
  }, 100)
  return { fullAt, stop: () => clearInterval(timer) }
}

const spread = (values: number[]): (Percentiles & { max: number }) | undefined => {
  const p = percentiles(values)
  return p && { ...p, max: Math.max(...values) }
}

/** Readers that take the headers and first bytes of an audio stream, then nothing. */
export async function stalledReaders(upstream: Target, count: number, windowMs: number): Promise<StalledReaders> {
  const writeTimeoutMs = 2000
  const service = await startService(upstream, { CLIENT_WRITE_TIMEOUT_MS: String(writeTimeoutMs) }, 'service-write-timeout')
  const port = Number(new URL(service.origin).port)
  const queues = watchSendQueues(port)
  const readers = new Map<string, { socket: Socket; stalledAt?: number }>()
  try {
    await Promise.all(
      Array.from({ length: count }, (_, i) => {
        const body = JSON.stringify({ model: 'tts-1', text: `bench-audio-${i} Hello there.`, voice: 'alloy' })
        const reader: { socket: Socket; stalledAt?: number } = { socket: connect(port, '127.0.0.1') }
        readers.set(String(i), reader)
        reader.socket.on('error', () => {})
        reader.socket.write(
          `POST /v1/tasks/text-to-speech HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\naccept: audio/mpeg\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        )
        return new Promise<void>((resolve) => {
          reader.socket.once('data', () => {
            reader.stalledAt = now()
            reader.socket.pause()
            resolve()
          })
          reader.socket.once('close', () => resolve())
          setTimeout(resolve, 10_000).unref()
        })
      }),
    )
    const ordinary = await ordinaryCalls(service, 10, now() + windowMs)
    const log = (await (await request(`${upstream.origin}/_bench/audio`)).body.json()) as Array<{ id: string; closedAt?: number; finished?: boolean }>
    const aborts = log.flatMap((a) => {
      const reader = readers.get(a.id)
      return a.closedAt && !a.finished && reader?.stalledAt ? [{ closedAt: a.closedAt, reader }] : []
    })
    const stallToAbort = aborts.map(({ closedAt, reader }) => closedAt - reader.stalledAt!)
    const reaction = aborts.flatMap(({ closedAt, reader }) => {
      const full = queues.fullAt.get(reader.socket.localPort ?? 0)
      return full === undefined ? [] : [closedAt - full]
    })
    const stallToAbortMs = spread(stallToAbort)
    const reactionMs = spread(reaction)
    return {
      stalled: [...readers.values()].filter((r) => r.stalledAt).length,
      writeTimeoutMs,
      aborted: aborts.length,
      ...(stallToAbortMs && { stallToAbortMs }),
      ...(reactionMs && { reactionMs }),
      ordinary,
    }
  } finally {
    queues.stop()
    for (const { socket } of readers.values()) socket.destroy()
    await stop(service.child)
  }
}

export interface FrozenRedis {
  requests: number
  latencyMs: number[]
  statuses: Record<string, number>
  error?: string
}

/** N sequential calls while the rate limiter's Redis is stopped with SIGSTOP. */
export async function frozenRedis(upstream: Target, count: number): Promise<FrozenRedis> {
  const port = await freePort()
  let redis
  try {
    redis = await spawnServer('redis', '/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      port,
      env: {},
      ready: () => canConnect(port),
    })
  } catch (err) {
    return { requests: 0, latencyMs: [], statuses: {}, error: `redis-server did not start: ${(err as Error).message.split('\n')[0]}` }
  }
  const service = await startService(upstream, { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_MAX: '1000000' }, 'service-redis')
  const { path, headers, body } = service.call('json', true)
  const post = { method: 'POST' as const, headers, body, headersTimeout: 3_000, bodyTimeout: 3_000 }
  const statuses: Record<string, number> = {}
  const latencyMs: number[] = []
  try {
    for (let i = 0; i < 5; i++) await (await request(`${service.origin}${path}`, post)).body.dump()
    redis.proc.kill('SIGSTOP')
    for (let i = 0; i < count; i++) {
      const start = performance.now()
      try {
        const res = await request(`${service.origin}${path}`, post)
        await res.body.dump()
        tally(statuses, String(res.statusCode))
      } catch (err) {
        tally(statuses, codeOf(err))
      }
      latencyMs.push(performance.now() - start)
    }
    return { requests: count, latencyMs, statuses }
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
  /** Requests attempted, refused ones included. */
  attempted: number
  ok: number
  /** New connections refused once the listener closed: not a loss. */
  refused: number
  /** Requests that got no answer after they were sent (reset, closed): the losses. */
  lost: Record<string, number>
  /** Answers other than 200, by status. */
  statuses: Record<string, number>
  exit: { code: number | null; signal: string | null; afterMs: number }
}

/**
 * Keep-alive clients calling in a loop (half instant, half with OpenAI's 1–4 s), SIGTERM to the
 * service after `loadMs`; each loop ends at its first refused connection or after 20 s.
 */
export async function sigtermUnderLoad(upstream: Target, clients: number, loadMs: number): Promise<Sigterm> {
  const service = await startService(upstream, { SHUTDOWN_DELAY_MS: '500' }, 'service-sigterm')
  const pool = new Pool(service.origin, { connections: clients, headersTimeout: 20_000, bodyTimeout: 20_000 })
  const result: Sigterm = { clients, attempted: 0, ok: 0, refused: 0, lost: {}, statuses: {}, exit: { code: null, signal: null, afterMs: 0 } }
  const until = now() + 20_000
  const loop = async (i: number): Promise<void> => {
    const call = service.call('json', i % 2 === 0)
    while (now() < until) {
      result.attempted++
      try {
        const res = await pool.request({ method: 'POST', ...call })
        await res.body.dump()
        if (res.statusCode === 200) result.ok++
        else tally(result.statuses, String(res.statusCode))
      } catch (err) {
        if (codeOf(err) === 'ECONNREFUSED') {
          result.refused++
          return
        }
        tally(result.lost, codeOf(err))
      }
    }
  }
  const loops = Promise.all(Array.from({ length: clients }, (_, i) => loop(i)))
  await sleep(loadMs)
  const signalled = performance.now()
  service.child.proc.kill('SIGTERM')
  const kill = setTimeout(() => service.child.proc.kill('SIGKILL'), 25_000)
  const exit = await exitOf(service.child)
  clearTimeout(kill)
  result.exit = { ...exit, afterMs: performance.now() - signalled }
  await loops
  await pool.destroy()
  return result
}
