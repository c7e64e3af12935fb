/** The benchmark's child processes (bench upstream, service builds and runs) and their clean-up. */
import { fork, spawn, type ChildProcess } from 'node:child_process'
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
/** Children stopped on purpose one by one: their exit is not a failure. */
const stoppedOnPurpose = new WeakSet<Child>()
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
    if (!stopping && !stoppedOnPurpose.has(child)) setImmediate(() => onUnexpectedExit(describeExit(child)))
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
export function startUpstream(): Promise<{ child: Child; port: number }> {
  return startBenchServer('upstream.ts', 'bench upstream')
}

/** Forks one of bench/'s servers (`script`), which listens on a free port and reports it over IPC. */
export async function startBenchServer(
  script: string,
  name: string,
  env: Record<string, string> = {},
  execArgv: string[] = [],
): Promise<{ child: Child; port: number }> {
  const proc = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
    execArgv: [...process.execArgv, ...execArgv],
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  const child = track(name, proc)
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s`)), 10_000)
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

/** How the service is run: the build, as production runs it, or its TypeScript source. */
export const ENTRIES = {
  server: { built: 'dist/server.js', source: 'src/server.ts' },
  cluster: { built: 'dist/cluster.js', source: 'src/cluster.ts' },
} as const

export interface ServiceOptions {
  upstreamPort: number
  /** Checkout to run (another one, to compare versions). */
  dir: string
  /** Path of the entry point in `dir`, e.g. `dist/server.js`. */
  entry: string
  /** Extra node flags, e.g. `--cpu-prof --cpu-prof-dir=bench/results/prof`. */
  nodeArgs: string[]
  /** Extra environment, e.g. `WORKERS` for the cluster. */
  env?: Record<string, string>
  name?: string
}

export interface Service {
  child: Child
  url: string
  startupMs: number
}

/** Starts the service against the bench upstream; resolves once /healthz answers 200. */
export async function startService(options: ServiceOptions): Promise<Service> {
  const port = await freePort()
  const started = performance.now()
  const proc = spawn(process.execPath, [...options.nodeArgs, options.entry], {
    cwd: options.dir,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      OPENAI_BASE_URL: `http://127.0.0.1:${options.upstreamPort}/v1`,
      OPENAI_API_KEY: 'sk-bench',
      LOG_LEVEL: 'warn',
      GRACE_PERIOD_MS: '2000',
      // A per-client rate limit (when the service has one) would turn the run into 429s; a
      // limit never reached keeps its per-request cost in the figures.
      RATE_LIMIT_MAX: '1000000000',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const child = track(options.name ?? 'service', proc)
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
  throw new Error(`${child.name} did not answer /healthz within 30 s${child.logTail.length ? `: ${child.logTail.join('\n')}` : ''}`)
}

/**
 * `npm run build` in `dir`, as a deployment does, bounded in time. Resolves to tsc's complaints
 * when it reports type errors (it still emits dist/, which is then what runs); throws when
 * nothing runnable came out.
 */
export async function buildService(dir: string, timeoutMs = 180_000): Promise<{ ms: number; errors: string[] }> {
  const started = performance.now()
  // Under `npm run`, npm_execpath is npm's own script: run it with this node.
  const npm = process.env.npm_execpath
  const [command, args] = npm?.endsWith('.js') ? [process.execPath, [npm, 'run', 'build']] : ['npm', ['run', 'build']]
  const proc = spawn(command, args as string[], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  proc.stdout.on('data', (d: Buffer) => (output += d))
  proc.stderr.on('data', (d: Buffer) => (output += d))
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve, reject) => proc.once('error', reject).once('exit', resolve))
  clearTimeout(timer)
  const errors = output.split('\n').filter((line) => /error TS\d+/.test(line))
  if (code !== 0 && !errors.length) throw new Error(`npm run build in ${dir} failed (${code ?? 'killed'}):\n${output.slice(-2000)}`)
  return { ms: performance.now() - started, errors }
}

/** SIGTERM to one child, SIGKILL if still there after `graceMs`; not reported as a death. */
export async function stopChild(child: Child, graceMs = 3000): Promise<void> {
  const { proc } = child
  stoppedOnPurpose.add(child)
  if (exited(proc)) return
  const gone = new Promise((resolve) => proc.once('exit', resolve))
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
  await gone
  clearTimeout(timer)
}

/** SIGTERM to every child still running, SIGKILL to those still there after `graceMs`. */
export async function stopAll(graceMs = 3000): Promise<void> {
  stopping = true
  await Promise.all([...children].map((child) => stopChild(child, graceMs)))
}

/** Last resort when the bench process exits without having stopped its children. */
export function killAllNow(): void {
  for (const { proc } of children) if (!exited(proc)) proc.kill('SIGKILL')
}

/**
 * What every bench entry point does around its run: Ctrl-C, SIGTERM or a child dying abort the
 * returned signal (the load stops, then `runToExit` stops the children); children still running
 * when the process exits anyway are killed; after `budgetMs` the run gives up (exit 2).
 */
export function guardBenchRun(name: string, log: (line: string) => void, budgetMs: number): AbortSignal {
  const interrupted = new AbortController()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`\n${signal}: stopping`)
      interrupted.abort(new Error(`interrupted by ${signal}`))
    })
  }
  whenAChildDies((message) => interrupted.abort(new Error(message)))
  process.once('exit', killAllNow)
  setTimeout(() => {
    log(`${name}: still running after ${budgetMs / 1000} s, giving up`)
    killAllNow()
    process.exit(2)
  }, budgetMs).unref()
  return interrupted.signal
}

/** Runs `main`, then stops every child (and `cleanup`); exits 0, 1 when it failed, 130 when interrupted. */
export async function runToExit(
  name: string,
  log: (line: string) => void,
  interrupted: AbortSignal,
  main: () => Promise<void>,
  cleanup: () => Promise<void> = async () => {},
): Promise<never> {
  let exitCode = 0
  try {
    await main()
  } catch (err) {
    const reason = interrupted.aborted ? (interrupted.reason as Error) : (err as Error)
    exitCode = reason.message.startsWith('interrupted by') ? 130 : 1
    log(`${name} failed: ${reason.message}`)
  } finally {
    await Promise.all([stopAll(), cleanup()])
  }
  process.exit(exitCode)
}
