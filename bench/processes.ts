/** The benchmark's two child processes (bench upstream, service) and their clean-up. */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

/** The repository root: where `src/server.ts` is run from unless told otherwise. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LOG_TAIL_LINES = 20

export interface Child {
  name: string
  proc: ChildProcess
  /** Last lines the child wrote on stdout/stderr. */
  logTail: string[]
  logLines: number
}

const children = new Set<Child>()
let stopping = false
let onUnexpectedExit: (message: string) => void = () => {}

/** Called when a child exits before stopAll() asked it to, with what it last wrote. */
export function whenAChildDies(handler: (message: string) => void): void {
  onUnexpectedExit = handler
}

function track(name: string, proc: ChildProcess): Child {
  const child: Child = { name, proc, logTail: [], logLines: 0 }
  const collect = (data: Buffer): void => {
    for (const line of data.toString().split('\n')) {
      if (!line.trim()) continue
      child.logLines++
      child.logTail.push(line.length > 400 ? `${line.slice(0, 400)}…` : line)
      if (child.logTail.length > LOG_TAIL_LINES) child.logTail.shift()
    }
  }
  proc.stdout?.on('data', collect)
  proc.stderr?.on('data', collect)
  children.add(child)
  proc.once('exit', () => {
    children.delete(child)
    // Let the last output arrive before reporting it.
    if (!stopping) setImmediate(() => onUnexpectedExit(describeExit(child)))
  })
  return child
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null
}

function describeExit(child: Child): string {
  const { exitCode, signalCode } = child.proc
  const tail = child.logTail.length ? `; last output:\n  ${child.logTail.join('\n  ')}` : ''
  return `${child.name} exited (${signalCode ?? `code ${exitCode}`})${tail}`
}

/** Starts bench/upstream.ts on a free port; resolves once it listens. */
export async function startUpstream(): Promise<{ child: Child; port: number }> {
  const proc = fork(fileURLToPath(new URL('upstream.ts', import.meta.url)), [], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  const child = track('bench upstream', proc)
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bench upstream did not start within 10 s')), 10_000)
    proc.once('message', (msg: { port: number }) => {
      clearTimeout(timer)
      resolve(msg.port)
    })
    proc.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(describeExit(child)))
    })
  })
  return { child, port }
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (!address || typeof address === 'string') throw new Error('could not pick a free port')
  return address.port
}

export interface ServiceOptions {
  upstreamPort: number
  /** Directory holding src/server.ts (another checkout, to compare versions). */
  dir: string
  /** Extra node flags, e.g. `--cpu-prof --cpu-prof-dir=bench/results/prof`. */
  nodeArgs: string[]
}

/** Starts `node src/server.ts` against the bench upstream; resolves once /healthz answers 200. */
export async function startService(options: ServiceOptions): Promise<{ child: Child; url: string; startupMs: number }> {
  const port = await freePort()
  const started = performance.now()
  const proc = spawn(process.execPath, [...options.nodeArgs, 'src/server.ts'], {
    cwd: options.dir,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      OPENAI_BASE_URL: `http://127.0.0.1:${options.upstreamPort}/v1`,
      OPENAI_API_KEY: 'sk-bench',
      LOG_LEVEL: 'warn',
      GRACE_PERIOD_MS: '2000',
      // A per-client rate limit (when the service has one) would turn the run into 429s; a
      // limit never reached keeps its per-request cost in the figures.
      RATE_LIMIT_MAX: '1000000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const child = track('service', proc)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (exited(proc)) throw new Error(describeExit(child))
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.ok) return { child, url, startupMs: performance.now() - started }
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`service did not answer /healthz within 30 s${child.logTail.length ? `: ${child.logTail.join('\n')}` : ''}`)
}

/** Resident memory of a process, from /proc (Linux only): current and peak, in MB. */
export async function memoryOf(child: Child): Promise<{ rssMb: number; peakRssMb: number } | undefined> {
  try {
    const status = await readFile(`/proc/${child.proc.pid}/status`, 'utf8')
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 }
  } catch {
    return undefined
  }
}

/** SIGTERM to every child still running, SIGKILL to those still there after `graceMs`. */
export async function stopAll(graceMs = 3000): Promise<void> {
  stopping = true
  const running = [...children].filter((c) => !exited(c.proc))
  await Promise.all(
    running.map(async ({ proc }) => {
      const gone = new Promise((resolve) => proc.once('exit', resolve))
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
      await gone
      clearTimeout(timer)
    }),
  )
}

/** Last resort when the bench process exits without having stopped its children. */
export function killAllNow(): void {
  for (const { proc } of children) if (!exited(proc)) proc.kill('SIGKILL')
}
