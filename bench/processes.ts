/** The bench's child processes: start them, wait until they answer, sample their CPU and RSS, stop them. */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import pidusage from 'pidusage'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Children write here, not through the bench's own event loop. */
export const LOG_DIR = join(tmpdir(), 'openai-tasks-bench')

export interface Child {
  name: string
  proc: ChildProcess
  pid: number
  port: number
  log: string
}

const running = new Set<ChildProcess>()
// However the bench ends, it leaves no process behind.
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL')
})

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

function logFile(name: string): { path: string; fd: number } {
  mkdirSync(LOG_DIR, { recursive: true })
  const path = join(LOG_DIR, `${name.replace(/\W+/g, '-')}.log`)
  return { path, fd: openSync(path, 'w') }
}

function tail(path: string): string {
  return readFileSync(path, 'utf8').trim().split('\n').slice(-8).join('\n  ')
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null
}

function adopt(name: string, proc: ChildProcess, port: number, log: string): Child {
  running.add(proc)
  proc.once('exit', () => running.delete(proc))
  return { name, proc, pid: proc.pid!, port, log }
}

/** A bench script forked with IPC; it reports `{ port }` once it listens. */
export async function forkScript(
  name: string,
  script: string,
  env: Record<string, string>,
  execArgv: string[] = [],
): Promise<Child> {
  const log = logFile(name)
  const proc = fork(join(ROOT, 'bench', script), {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', log.fd, log.fd, 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve(m.port))
    proc.once('exit', () => reject(new Error(`${name} exited before listening:\n  ${tail(log.path)}`)))
  })
  return adopt(name, proc, port, log.path)
}

/** A server started as a command; ready once `ready()` resolves true (polled every 20 ms for up to 60 s). */
export async function spawnServer(
  name: string,
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; port: number; cwd?: string; ready: () => Promise<boolean> },
): Promise<Child> {
  const log = logFile(name)
  const proc = spawn(command, args, { env: options.env, cwd: options.cwd ?? ROOT, stdio: ['ignore', log.fd, log.fd] })
  const child = adopt(name, proc, options.port, log.path)
  for (const until = Date.now() + 60_000; Date.now() < until; await sleep(20)) {
    if (exited(proc)) throw new Error(`${name} exited before answering:\n  ${tail(log.path)}`)
    if (await options.ready().catch(() => false)) return child
  }
  await stop(child)
  throw new Error(`${name} did not answer within 60 s:\n  ${tail(log.path)}`)
}

export function exitOf(child: Child): Promise<{ code: number | null; signal: string | null }> {
  const { proc } = child
  if (exited(proc)) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode })
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(child: Child | undefined, graceMs = 5_000): Promise<void> {
  if (!child || exited(child.proc)) return
  child.proc.kill('SIGTERM')
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs)
  await exitOf(child)
  clearTimeout(timer)
}

export interface Usage {
  /** CPU time (user + system) since the process started. */
  cpuMs: number
  rssBytes: number
}

export async function usage(pid: number): Promise<Usage> {
  const stat = await pidusage(pid)
  return { cpuMs: stat.ctime, rssBytes: stat.memory }
}

/** CPU used and peak RSS of a process while `work` runs, sampled every 200 ms. */
export async function measured<T>(
  pid: number | undefined,
  work: () => Promise<T>,
): Promise<{ result: T; cpuS?: number; peakRss?: number }> {
  if (pid === undefined) return { result: await work() }
  const before = await usage(pid)
  let peakRss = before.rssBytes
  const sampler = setInterval(() => {
    usage(pid).then(
      (u) => (peakRss = Math.max(peakRss, u.rssBytes)),
      () => {},
    )
  }, 200)
  try {
    const result = await work()
    const after = await usage(pid)
    return { result, cpuS: (after.cpuMs - before.cpuMs) / 1000, peakRss: Math.max(peakRss, after.rssBytes) }
  } finally {
    clearInterval(sampler)
  }
}
