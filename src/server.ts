import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import openaiTasksApp from './app.ts'
import { loadConfig, type Config } from './config.ts'
import { serverOptions } from './server-options.ts'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  console.error(`openai-tasks: invalid configuration: ${(err as Error).message}`)
  process.exit(1)
}

const app = Fastify(serverOptions(config))
await app.register(fp(openaiTasksApp), { config })

closeWithGrace({ delay: config.gracePeriodMs }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing because of an error')
  else app.log.info({ signal }, 'closing')
  await app.close()
})

try {
  await app.listen({ host: config.host, port: config.port })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.exit(1)
}
