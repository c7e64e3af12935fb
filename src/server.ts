import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import openaiTasksApp from './app.ts'
import { loadConfig, type Config } from './config.ts'
import { keepAliveDrain } from './keep-alive-drain.ts'
import { serverOptions, stdoutDestination } from './server-options.ts'
import { startTracing } from './tracing/tracing.ts'
import { warmUp, type WarmUpResult } from './warm-up/warm-up.ts'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  console.error(`openai-tasks: invalid configuration: ${(err as Error).message}`)
  process.exit(1)
}

// First, on a copy of the app with no tracing, logger or shared state: nothing of it is seen.
const warmedUp: WarmUpResult | Error | undefined = config.warmUpCalls
  ? await warmUp(config.warmUpCalls).catch((err: Error) => err)
  : undefined

// Before the app exists: its plugins and its OpenAI client are traced from the first request.
const tracing = await startTracing(config)

// A request that reaches an open connection after close() began is served, not refused with 503.
const logDestination = stdoutDestination()
const app = Fastify({ ...serverOptions(config, { stream: logDestination }), return503OnClosing: false })
tracing?.logTo(app.log)
keepAliveDrain(app.server)
await app.register(fp(openaiTasksApp), { config, tracing })
// A warm-up that failed leaves a colder process, never a stopped one.
if (warmedUp instanceof Error) app.log.warn({ err: warmedUp }, 'warm-up failed; the process starts cold')
else if (warmedUp?.failed) app.log.warn(warmedUp, 'warm-up: some calls failed; the process starts colder')
else if (warmedUp) app.log.info(warmedUp, 'warmed up')

// On SIGTERM/SIGINT: /readyz turns 503 at once; after SHUTDOWN_DELAY_MS (time for load balancers
// to notice) the listener closes, refusing new connections, every response from then on says
// Connection: close, and requests and streams in flight finish; all within GRACE_PERIOD_MS,
// after which the process exits regardless.
// SIGHUP is not a shutdown here: it reloads the configuration file (below).
closeWithGrace({ delay: config.shutdownDelayMs + config.gracePeriodMs, skip: ['SIGHUP'] }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing because of an error')
  else app.log.info({ signal, gracePeriodMs: config.gracePeriodMs }, 'closing')
  app.startDraining()
  if (config.shutdownDelayMs) await sleep(config.shutdownDelayMs)
  await app.close()
  // The spans of the last requests, still in the batch processor's buffer.
  await tracing?.shutdown().catch((err: unknown) => app.log.warn({ err }, 'spans could not be exported'))
  app.log.info('closed')
  // Log lines are written asynchronously: let the last ones out before the process exits.
  await new Promise((resolve) => logDestination.once('close', resolve).end())
})

// SIGHUP re-reads the configuration file (keys rotated in a mounted Secret): new calls go to the
// deployments it describes, calls in flight finish where they started; a bad file changes nothing.
process.on('SIGHUP', () => {
  if (!config.configFile) {
    app.log.warn('SIGHUP: no CONFIG_FILE to read again')
    return
  }
  let reloaded: Config
  try {
    reloaded = loadConfig()
  } catch (err) {
    app.log.error({ problem: (err as Error).message }, 'SIGHUP: configuration refused, the running one stays')
    return
  }
  app.upstream.configure(reloaded.deployments)
  app.log.info({ deployments: reloaded.deployments.map((d) => d.name) }, 'SIGHUP: deployments reloaded')
})

try {
  await app.listen({ host: config.host, port: config.port, backlog: config.listenBacklog })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.exit(1)
}
