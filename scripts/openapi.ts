import Fastify from 'fastify'
import fp from 'fastify-plugin'
import openaiTasksApp from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { serverOptions } from '../src/server-options.ts'

export const OPENAPI_PATH = 'openapi/openapi.yaml'

/** The OpenAPI document exactly as the service serves it at /openapi.json, as YAML. */
export async function renderOpenApi(): Promise<string> {
  const config = loadConfig({})
  const app = Fastify(serverOptions(config, { enabled: false }))
  await app.register(fp(openaiTasksApp), { config })
  await app.ready()
  try {
    return app.swagger({ yaml: true })
  } finally {
    await app.close()
  }
}
