import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface RedisServer {
  url: string
  /** The redis-server process, for SIGSTOP/SIGCONT. */
  pid: number
  /** Resumes it if frozen, then ends it; safe to call again. */
  stop: () => Promise<void>
}

/** A throwaway real redis-server on 127.0.0.1, no persistence. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  )
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const url = `redis://127.0.0.1:${port}`
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  probe.on('error', () => {})
  for (let i = 0; ; i++) {
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch (err) {
      if (i > 50) {
        child.kill('SIGKILL')
        throw err
      }
      probe.disconnect()
      await sleep(50)
    }
  }
  probe.disconnect()
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // A stopped process would hold SIGTERM until resumed.
        child.kill('SIGCONT')
        child.kill('SIGTERM')
      }
      await exited
    },
  }
}
