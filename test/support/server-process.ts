import { spawn, type ChildProcess } from 'node:child_process'
import type { TestContext } from 'node:test'

export interface ServerProcess {
  child: ChildProcess
  /** `http://127.0.0.1:<port>` */
  base: string
  /** Everything the process wrote so far. */
  log: () => string
}

/** `src/server.ts` as its own process, as production runs it; killed when the test ends. */
export async function startServerProcess(t: TestContext, env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['src/server.ts'], {
    cwd: new URL('../..', import.meta.url),
    // No warm-up unless a test asks: test/warm-up.test.ts checks it, the rest start faster.
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', WARM_UP_CALLS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => {
    child.kill('SIGKILL')
  })
  let log = ''
  child.stderr.on('data', (chunk: Buffer) => (log += chunk))
  const base = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      log += chunk
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log)
      if (match) resolve(match[1]!)
    })
    child.once('exit', () => reject(new Error(`server exited early:\n${log}`)))
  })
  return { child, base, log: () => log }
}
