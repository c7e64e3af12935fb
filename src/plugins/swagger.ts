import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { ComponentDefinition } from '../schemas/load-tasks.ts'

export interface SwaggerOptions {
  component: ComponentDefinition
}

/** OpenAPI 3.1 document built from the route schemas, at /openapi.json, and Swagger UI at /docs. */
async function swaggerPlugin(fastify: FastifyInstance, { component }: SwaggerOptions): Promise<void> {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'openai-tasks',
        version: component.version,
        description:
          `${component.description}\n\n` +
          'Each task is `POST /v1/tasks/<task>` with the task input as the JSON body. Every non-2xx ' +
          'answer has the body `{"error":{"code","message","details","request-id"}}`. When the ' +
          'server holds no OpenAI key, send yours as `Authorization: Bearer <key>` (the Authorize button); ' +
          'when it requires service tokens, the token goes there and your own key, if allowed, in `X-OpenAI-Api-Key`.',
      },
      tags: [
        { name: 'tasks', description: 'The OpenAI component tasks' },
        { name: 'batch', description: 'Each task for many inputs at once, as pipelines run it' },
        { name: 'operations', description: 'Health and documentation' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description:
              'The service token when the server requires one (SERVICE_TOKENS); otherwise, when the ' +
              'server holds no OpenAI key, your OpenAI API key.',
          },
          openaiApiKey: {
            type: 'apiKey',
            in: 'header',
            name: 'X-OpenAI-Api-Key',
            description:
              'Your own OpenAI API key, used when the server holds none, or when it requires service ' +
              'tokens and allows callers to bring their own key (ALLOW_CALLER_API_KEYS).',
          },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`),
    },
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}

export default fp(swaggerPlugin, { name: 'swagger' })
