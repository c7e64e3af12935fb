// One worker per CPU on one host: the primary forks WORKERS processes (default: the number of
// CPUs) that each run the server and share its port; a worker that dies is replaced. On
// SIGTERM/SIGINT the primary passes the signal on and exits once every worker has closed
// gracefully (each one drains as server.ts does). SIGHUP is passed on too: each worker re-reads
// CONFIG_FILE.
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'

const SIGNALS = ['SIGTERM', 'SIGINT'] as const

if (cluster.isPrimary) {
  const workers = Number(process.env.WORKERS ?? availableParallelism())
  if (!Number.isInteger(workers) || workers < 1) {
    console.error(`openai-tasks: WORKERS must be a positive integer, got ${JSON.stringify(process.env.WORKERS)}`)
    process.exit(1)
  }
  let stopping = false
  let failed = false
  for (let i = 0; i < workers; i++) cluster.fork()
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (code !== 0) failed = true
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(failed ? 1 : 0)
      return
    }
    console.error(`openai-tasks: worker ${worker.process.pid} exited (${signal ?? code}); starting another`)
    if (code === 1 && worker.exitedAfterDisconnect === false && process.uptime() < 5) {
      console.error('openai-tasks: workers fail at start-up; giving up')
      process.exit(1)
    }
    cluster.fork()
  })
  for (const name of SIGNALS) {
    process.on(name, () => {
      if (stopping) return
      stopping = true
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(name)
    })
  }
  // Each worker reads the configuration file again (server.ts); the primary has none to read.
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP')
  })
} else {
  await import('./server.ts')
}
